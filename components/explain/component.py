"""KFP wrapper for explain: typed inputs and outputs only; the logic is ``shopfloor.components.explain``."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Model, Output

from shopfloor.components._image import IMAGE

__all__ = ["explain", "explain_inspector"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def explain(
    windows: Input[Dataset],
    model: Input[Model],
    model_name: str,
    gate: dict,
    report: Output[HTML],
    summary: Output[Markdown],
    importance: Output[Metrics],
    sample_size: int = 256,
):
    """Explain the model's failure risk on held-out windows: sensor importance and per-window heatmaps.

    Args:
        windows: labelled windows (a sample of the test split is explained).
        model: the trained model folder.
        model_name: name shown in the report.
        gate: the quality gate section; its decision_threshold separates alarms from quiet windows.
        report: HTML with the importance chart and time x sensor heatmaps of showcase windows.
        summary: Markdown table of sensors ranked by importance.
        importance: mean absolute attribution per sensor.
        sample_size: how many test windows to explain.
    """
    from shopfloor.common.config import GateConfig, validated
    from shopfloor.common.progress import report_progress
    from shopfloor.common.storage import atomic_write_bytes
    from shopfloor.contracts.model_artifact import load_keras_model, load_model_info
    from shopfloor.contracts.windows import load_windows
    from shopfloor.families.predictive_maintenance.explanation import (
        explain_windows,
        render_explain_report,
        render_explain_summary,
    )

    threshold = validated(GateConfig, gate, "pipeline parameter gate").decision_threshold
    found = explain_windows(
        load_keras_model(model.path),
        load_windows(windows.path),
        load_model_info(model.path),
        sample_size=int(sample_size),
        threshold=threshold,
    )
    atomic_write_bytes(report.path, render_explain_report(found, model_name).encode())
    atomic_write_bytes(summary.path, render_explain_summary(found, model_name).encode())
    for feature, value in found.importance.items():
        importance.log_metric(feature, value)
    top = sorted(found.importance, key=lambda name: found.importance[name], reverse=True)[:3]
    report_progress(f"explained {found.attributions.values.shape[0]} windows; top sensors: {', '.join(top)}")


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def explain_inspector(
    labelled: Input[Dataset],
    model: Input[Model],
    model_name: str,
    image_schema: dict,
    split: dict,
    model_store_uri: str,
    report: Output[HTML],
):
    """Show where the inspection model looks (Grad-CAM) and what operators said about earlier explanations.

    The report grids the most confidently wrong and most confident test images with heatmap overlays.

    Args:
        labelled: the image manifest with resolved labels (the test split is explained).
        model: the trained CNN folder.
        model_name: name of the model in the report and the model store.
        image_schema: the image data config (``ImageDataConfig``).
        split: the split config (``ImageSplitConfig``).
        model_store_uri: the model store, whose ``<model_name>/feedback/`` holds operators' verdicts.
        report: HTML grid of images with heatmap overlays, and the feedback table.
    """
    from shopfloor.common.config import validated
    from shopfloor.common.storage import atomic_write_bytes
    from shopfloor.common.vision_config import ImageDataConfig, ImageSplitConfig
    from shopfloor.contracts.feedback import read_feedback
    from shopfloor.contracts.images import load_image_set
    from shopfloor.contracts.model_artifact import load_keras_model
    from shopfloor.families.visual_inspection.explanation import render_gradcam_report

    data = validated(ImageDataConfig, image_schema, "pipeline parameter image_schema")
    images = load_image_set(labelled.path, data, validated(ImageSplitConfig, split, "pipeline parameter split"))
    test = images.part("test")
    feedback = read_feedback(model_store_uri, model_name)
    page = render_gradcam_report(load_keras_model(model.path), test, model_name, feedback=feedback)
    atomic_write_bytes(report.path, page.encode())
