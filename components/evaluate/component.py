"""KFP wrapper for evaluate: typed inputs and outputs only; the logic is ``shopfloor.components.evaluate``."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from shopfloor.components._image import IMAGE

__all__ = ["evaluate", "evaluate_anomaly_detector", "evaluate_inspector"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    windows: Input[Dataset],
    model: Input[Model],
    history: Input[Artifact],
    profile: Input[Artifact],
    model_name: str,
    gate: dict,
    model_store_uri: str,
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
    summary: Output[Markdown],
    model_card: Output[Markdown],
    blessing: Output[Artifact],
) -> bool:
    """Score the held-out assets, apply the quality gate (and beat production), write the report and model card.

    Args:
        windows: labelled windows (the test split is evaluated).
        model: the trained model folder.
        history: training history, plotted in the report.
        profile: the ingest data profile, quoted in the model card.
        model_name: name of the model in reports and the model store.
        gate: decision_threshold and the quality gate's thresholds: min_roc_auc, min_pr_auc, max_rul_mae_hours
            (``GateConfig``).
        model_store_uri: the model store; the model in production must not beat this one's PR-AUC on this data.
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
    import json
    from pathlib import Path

    from shopfloor.common.config import GateConfig, validated
    from shopfloor.common.progress import report_progress
    from shopfloor.common.storage import atomic_write_bytes, write_json
    from shopfloor.components.evaluate.champion import versus_production
    from shopfloor.contracts.model_artifact import MODEL_INFO, load_keras_model
    from shopfloor.contracts.windows import load_windows
    from shopfloor.families.predictive_maintenance.evaluation import blessing_record, evaluate_model, model_version
    from shopfloor.families.predictive_maintenance.report import render_report, render_summary
    from shopfloor.families.reporting import render_model_card

    thresholds = validated(GateConfig, gate, "pipeline parameter gate")
    labelled = load_windows(windows.path)
    result = evaluate_model(load_keras_model(model.path), labelled, thresholds)
    result, compared = versus_production(
        result,
        "pr_auc",
        ">=",
        model_store_uri,
        model_name,
        {"features": labelled.features, "window": int(labelled.info["window"])},
        lambda champion: evaluate_model(champion.model, labelled, thresholds).metrics,
    )
    report_progress(compared)
    model_info = json.loads(Path(model.path, MODEL_INFO).read_text())
    version = model_version(model.path)
    train_history = json.loads(Path(history.path).read_text())
    atomic_write_bytes(report.path, render_report(result, train_history, model_name).encode())
    atomic_write_bytes(summary.path, render_summary(result, model_name).encode())
    card = render_model_card(
        model_name, version, model_info, json.loads(Path(profile.path).read_text()), labelled.info, result
    )
    atomic_write_bytes(model_card.path, card.encode())
    write_json(blessing.path, blessing_record(result.gate, version, result.failure_score, result.metrics))
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


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate_anomaly_detector(
    windows: Input[Dataset],
    model: Input[Model],
    history: Input[Artifact],
    profile: Input[Artifact],
    model_name: str,
    gate: dict,
    model_store_uri: str,
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
    summary: Output[Markdown],
    model_card: Output[Markdown],
    blessing: Output[Artifact],
) -> bool:
    """Raise alarms on the held-out period at the trained threshold, apply the gate (and beat production).

    Args:
        windows: windows labelled normal/abnormal (the test part is evaluated).
        model: the trained autoencoder folder (its threshold is in shopfloor_model.json).
        history: training history, plotted in the report.
        profile: the ingest data profile, quoted in the model card.
        model_name: name of the model in reports and the model store.
        gate: min_f1, min_recall, max_false_alarm_rate (``AnomalyGateConfig``).
        model_store_uri: the model store; the detector in production must not beat this one on this data (F1, or
            the false-alarm rate where the held-out period has no anomalies).
        metrics: scalar metrics of the test part.
        classification_metrics: ROC curve (where abnormal windows exist) and confusion matrix.
        report: HTML report with the reconstruction error over time and the threshold.
        summary: Markdown summary of the gate.
        model_card: Markdown model card.
        blessing: the gate's verdict and reference scores, which gate publishing and feed monitoring.

    Returns:
        Whether the detector passed the quality gate (a single output named ``Output``, for ``dsl.If``).
    """
    import json
    from pathlib import Path

    from shopfloor.common.config import AnomalyGateConfig, validated
    from shopfloor.common.progress import report_progress
    from shopfloor.common.storage import atomic_write_bytes, write_json
    from shopfloor.components.evaluate.champion import versus_production
    from shopfloor.contracts.model_artifact import MODEL_INFO, load_keras_model
    from shopfloor.contracts.windows import load_windows
    from shopfloor.families.anomaly_detection.evaluation import (
        evaluate_detector,
        render_anomaly_report,
        render_anomaly_summary,
    )
    from shopfloor.families.predictive_maintenance.evaluation import blessing_record, model_version
    from shopfloor.families.reporting import render_model_card

    thresholds = validated(AnomalyGateConfig, gate, "pipeline parameter gate")
    labelled = load_windows(windows.path)
    model_info = json.loads(Path(model.path, MODEL_INFO).read_text())
    result = evaluate_detector(load_keras_model(model.path), labelled, model_info["threshold"]["value"], thresholds)
    result, compared = versus_production(
        result,
        *(("f1", ">=") if "f1" in result.metrics else ("false_alarm_rate", "<=")),
        model_store_uri,
        model_name,
        {"features": labelled.features, "window": int(labelled.info["window"])},
        lambda champion: (
            evaluate_detector(champion.model, labelled, champion.info["threshold"]["value"], thresholds).metrics
        ),
    )
    report_progress(compared)
    version = model_version(model.path)
    train_history = json.loads(Path(history.path).read_text())
    atomic_write_bytes(report.path, render_anomaly_report(result, train_history, model_name).encode())
    atomic_write_bytes(summary.path, render_anomaly_summary(result, model_name).encode())
    card = render_model_card(
        model_name, version, model_info, json.loads(Path(profile.path).read_text()), labelled.info, result
    )
    atomic_write_bytes(model_card.path, card.encode())
    write_json(blessing.path, blessing_record(result.gate, version, result.scores, result.metrics))
    blessing.metadata.update({"blessed": result.gate["passed"], "model_version": version})
    for name, value in sorted(result.metrics.items()):
        metrics.log_metric(name, round(value, 6))
    if result.roc is not None:
        classification_metrics.log_roc_curve(result.roc["fpr"], result.roc["tpr"], result.roc["thresholds"])
    classification_metrics.log_confusion_matrix(["normal", "abnormal"], result.confusion_matrix)
    found = ", ".join(f"{k} {result.metrics[k]:.3f}" for k in ("precision", "recall", "f1") if k in result.metrics)
    report_progress(
        f"false alarms {result.metrics['false_alarm_rate']:.1%}{', ' + found if found else ''}; quality gate "
        + ("passed" if result.gate["passed"] else "FAILED")
    )
    return bool(result.gate["passed"])


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate_inspector(
    labelled: Input[Dataset],
    model: Input[Model],
    history: Input[Artifact],
    profile: Input[Artifact],
    model_name: str,
    image_schema: dict,
    split: dict,
    gate: dict,
    model_store_uri: str,
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
    summary: Output[Markdown],
    model_card: Output[Markdown],
    blessing: Output[Artifact],
) -> bool:
    """Inspect the test split at the trained threshold, apply the gate (and beat production), write report and card.

    Args:
        labelled: the image manifest with resolved labels (the test split is evaluated).
        model: the trained CNN folder (its threshold and edge variants in shopfloor_model.json).
        history: training history, plotted in the report.
        profile: the image ingest profile, quoted in the model card.
        model_name: name of the model in reports and the model store.
        image_schema: the image data config (``ImageDataConfig``).
        split: the split config (``ImageSplitConfig``), the same as training's.
        gate: min_accuracy, min_defect_recall, max_false_reject_rate, min_roc_auc (``VisionGateConfig``).
        model_store_uri: the model store; the model in production must not beat this one's ROC-AUC on this data.
        metrics: scalar metrics of the test split.
        classification_metrics: per-class confusion matrix and the defect-vs-OK ROC curve.
        report: HTML report with the per-class table, confusion matrix and ROC.
        summary: Markdown summary of the gate.
        model_card: Markdown model card, with the size and accuracy of each edge variant.
        blessing: the gate's verdict and reference scores, which gate publishing and feed monitoring.

    Returns:
        Whether the model passed the quality gate (a single output named ``Output``, for ``dsl.If``).
    """
    import json
    from pathlib import Path

    from shopfloor.common.config import validated
    from shopfloor.common.progress import report_progress
    from shopfloor.common.storage import atomic_write_bytes, write_json
    from shopfloor.common.vision_config import ImageDataConfig, ImageSplitConfig, VisionGateConfig
    from shopfloor.components.evaluate.champion import versus_production
    from shopfloor.contracts.images import load_image_set
    from shopfloor.contracts.model_artifact import load_keras_model, load_model_info
    from shopfloor.families.predictive_maintenance.evaluation import blessing_record, model_version
    from shopfloor.families.visual_inspection.evaluation import (
        evaluate_vision,
        render_vision_model_card,
        render_vision_report,
        render_vision_summary,
    )

    data = validated(ImageDataConfig, image_schema, "pipeline parameter image_schema")
    thresholds = validated(VisionGateConfig, gate, "pipeline parameter gate")
    images = load_image_set(labelled.path, data, validated(ImageSplitConfig, split, "pipeline parameter split"))
    info = load_model_info(model.path)
    result = evaluate_vision(load_keras_model(model.path), images, info["threshold"]["value"], thresholds)
    result, compared = versus_production(
        result,
        "roc_auc",
        ">=",
        model_store_uri,
        model_name,
        {"classes": info["classes"], "image_size": info["image_size"], "color_mode": info["color_mode"]},
        lambda champion: (
            evaluate_vision(champion.model, images, champion.info["threshold"]["value"], thresholds).metrics
        ),
    )
    report_progress(compared)
    version = model_version(model.path)
    train_history = json.loads(Path(history.path).read_text())
    atomic_write_bytes(report.path, render_vision_report(result, train_history, model_name).encode())
    atomic_write_bytes(summary.path, render_vision_summary(result, model_name).encode())
    card = render_vision_model_card(model_name, version, info, json.loads(Path(profile.path).read_text()), result)
    atomic_write_bytes(model_card.path, card.encode())
    write_json(blessing.path, blessing_record(result.gate, version, result.scores, result.metrics))
    blessing.metadata.update({"blessed": result.gate["passed"], "model_version": version})
    for name, value in sorted(result.metrics.items()):
        metrics.log_metric(name, round(value, 6))
    if result.roc is not None:
        classification_metrics.log_roc_curve(result.roc["fpr"], result.roc["tpr"], result.roc["thresholds"])
    classification_metrics.log_confusion_matrix(result.classes, result.confusion_matrix)
    report_progress(
        f"accuracy {result.metrics['accuracy']:.3f}, defect recall {result.metrics['defect_recall']:.3f}, "
        f"false rejects {result.metrics['false_reject_rate']:.3f}; quality gate "
        + ("passed" if result.gate["passed"] else "FAILED")
    )
    return bool(result.gate["passed"])
