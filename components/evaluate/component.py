"""KFP wrapper for evaluate: typed inputs and outputs only; the logic is ``shopfloor.components.evaluate.evaluate``."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from shopfloor.components._image import IMAGE

__all__ = ["evaluate"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    data: Input[Dataset],
    model: Input[Model],
    history: Input[Artifact],
    profile: Input[Artifact],
    family: str,
    model_name: str,
    data_schema: dict,
    split: dict,
    gate: dict,
    model_store_uri: str,
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[HTML],
    summary: Output[Markdown],
    model_card: Output[Markdown],
    blessing: Output[Artifact],
    alerts: dict = {},  # noqa: B006 - a KFP parameter default, never mutated
) -> bool:
    """Score the held-out data, apply the quality gate (and beat production), write the report and model card.

    Args:
        data: the labelled data artifact the model was trained on (its test split is evaluated).
        model: the trained model folder.
        history: training history, plotted in the report.
        profile: the ingest data profile, quoted in the model card.
        family: the model family's registry key, as given to train.
        model_name: name of the model in reports and the model store.
        data_schema: the data section without locations (the image schema for images; {} where unused).
        split: how images are split, the same as training's ({} for windows).
        gate: the family's quality gate (``GateConfig``, ``AnomalyGateConfig`` or ``VisionGateConfig``).
        model_store_uri: the model store; the model in production must not beat this one on this data.
        metrics: scalar metrics of the test split.
        classification_metrics: ROC curve (where both classes are present) and confusion matrix for the dashboard.
        report: HTML report with plots.
        summary: Markdown summary of the gate.
        model_card: Markdown model card (data, code, hyperparameters, metrics, gate).
        blessing: the gate's verdict (metadata ``blessed``), which gates publishing and deploy.
        alerts: the channel a failed gate is published to as a ``gate-failed`` event (``AlertsConfig``, the
            config's ``monitor.alerts``); {} or kind none: no event.

    Returns:
        Whether the model passed the quality gate (deployable). A single output, named ``Output``, because the
        KFP local runner resolves ``dsl.If`` conditions only on that (kfp 2.17).
    """
    from shopfloor.components.evaluate.evaluate import EvaluationPaths, run_evaluate
    from shopfloor.families.base import StepInputs

    verdict = run_evaluate(
        family,
        data.path,
        model.path,
        history.path,
        profile.path,
        model_name,
        StepInputs(data_schema=data_schema, split=split, gate=gate),
        model_store_uri,
        EvaluationPaths(report=report.path, summary=summary.path, model_card=model_card.path, blessing=blessing.path),
    )
    blessing.metadata.update({"blessed": verdict.passed, "model_version": verdict.model_version})
    for name, value in sorted(verdict.metrics.items()):
        metrics.log_metric(name, round(value, 6))
    if verdict.roc is not None:
        classification_metrics.log_roc_curve(verdict.roc["fpr"], verdict.roc["tpr"], verdict.roc["thresholds"])
    classification_metrics.log_confusion_matrix(verdict.confusion_labels, verdict.confusion_matrix)
    if not verdict.passed and alerts:
        from shopfloor.common.config import AlertsConfig, validated
        from shopfloor.common.storage import read_json
        from shopfloor.contracts.events import gate_failed_event, publish_event

        channel = validated(AlertsConfig, alerts, "pipeline parameter alerts")
        publish_event(channel, gate_failed_event(model_name, verdict.model_version, read_json(blessing.path)["gate"]))
    return verdict.passed
