"""KFP wrapper for evaluate: typed inputs and outputs only; the logic is ``components.evaluate``."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from components._image import IMAGE

__all__ = ["evaluate"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    windows: Input[Dataset],
    model: Input[Model],
    history: Input[Artifact],
    profile: Input[Artifact],
    model_name: str,
    gate: dict,
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
    summary: Output[Markdown],
    model_card: Output[Markdown],
    blessing: Output[Artifact],
) -> bool:
    """Score the held-out assets, apply the quality gate, write the report and the model card.

    Args:
        windows: labelled windows (the test split is evaluated).
        model: the trained model folder.
        history: training history, plotted in the report.
        profile: the ingest data profile, quoted in the model card.
        model_name: name of the model in reports and the model store.
        gate: decision_threshold and the quality gate's thresholds: min_roc_auc, min_pr_auc, max_rul_mae_hours
            (``GateConfig``).
        metrics: scalar metrics of the test split.
        classification_metrics: ROC curve and confusion matrix for the dashboard.
        report: HTML report with plots.
        summary: Markdown summary of the gate.
        model_card: Markdown model card (data, code, hyperparameters, metrics, gate).
        blessing: the gate's verdict (metadata ``blessed``), which gates publishing and deploy.

    Returns:
        Whether the model passed the quality gate (deployable). A single output, named ``Output``, because the
        KFP local runner resolves ``dsl.If`` conditions only on that (kfp 2.17).
    """
    import hashlib
    import json
    from pathlib import Path

    import numpy as np

    from components.common.config import GateConfig, validated
    from components.common.model_artifact import MODEL_FILE, MODEL_INFO, load_keras_model
    from components.common.progress import report_progress
    from components.common.storage import atomic_write_bytes, write_json
    from components.evaluate.evaluator import evaluate_model
    from components.evaluate.report import render_model_card, render_report, render_summary
    from components.label.labeling import load_windows

    thresholds = validated(GateConfig, gate, "pipeline parameter gate")
    labelled = load_windows(windows.path)
    result = evaluate_model(load_keras_model(model.path), labelled, thresholds)
    model_info = json.loads(Path(model.path, MODEL_INFO).read_text())
    version = "v-" + hashlib.sha256(Path(model.path, MODEL_FILE).read_bytes()).hexdigest()[:12]
    train_history = json.loads(Path(history.path).read_text())
    atomic_write_bytes(report.path, render_report(result, train_history, model_name).encode())
    atomic_write_bytes(summary.path, render_summary(result, model_name).encode())
    card = render_model_card(
        model_name, version, model_info, json.loads(Path(profile.path).read_text()), labelled.info, result
    )
    atomic_write_bytes(model_card.path, card.encode())
    scores = np.sort(result.failure_score)
    reference_scores = scores[np.linspace(0, len(scores) - 1, min(2000, len(scores))).astype(int)]
    write_json(
        blessing.path,
        {
            "blessed": result.gate["passed"],
            "model_version": version,
            "gate": result.gate,
            "reference_scores": reference_scores.round(6).tolist(),
        },
    )
    blessing.metadata.update({"blessed": result.gate["passed"], "model_version": version})
    for name, value in sorted(result.metrics.items()):
        metrics.log_metric(name, round(value, 6))
    classification_metrics.log_roc_curve(result.roc["fpr"], result.roc["tpr"], result.roc["thresholds"])
    classification_metrics.log_confusion_matrix(["ok", "fails"], result.confusion_matrix)
    report_progress(
        f"ROC-AUC {result.metrics['roc_auc']:.3f}, PR-AUC {result.metrics['pr_auc']:.3f}, "
        f"F1 {result.metrics['f1']:.3f}, RUL MAE {result.metrics['rul_mae_hours']:.1f} h; quality gate "
        + ("passed" if result.gate["passed"] else "FAILED")
    )
    return bool(result.gate["passed"])
