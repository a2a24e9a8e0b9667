"""KFP wrappers for the label steps: typed inputs and outputs only; the labelling is each model family's."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from shopfloor.components._image import IMAGE

__all__ = ["label", "label_images"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def label(
    sensors: Input[Dataset],
    events: Input[Dataset],
    family: str,
    data_schema: dict,
    labeling: dict,
    windows: Output[Dataset],
    class_balance: Output[Metrics],
):
    """Cut readings into windows labelled for the model family: failure within a horizon and RUL, or abnormal.

    Args:
        sensors: validated readings from ingest.
        events: validated events from ingest.
        family: the model family's registry key (one that reads windows).
        data_schema: the data schema; its failure_values name the event types that count (failure, anomaly).
        labeling: the family's labelling section (``LabelingConfig`` for predictive maintenance: horizon_hours,
            window, stride, rul_cap_hours, split fractions, seed; ``AnomalyLabelingConfig`` for anomaly detection:
            window, stride, before_hours, after_hours, validation_fraction, test_fraction).
        windows: folder with windows.npz and labels.json (``contracts.windows``).
        class_balance: windows and positive (or abnormal) rate per split.
    """
    from shopfloor.components.label.label import run_label_sensors

    labelled = run_label_sensors(
        family, sensors.path, events.path, sensors.metadata.get("features"), data_schema, labeling, windows.path
    )
    windows.metadata.update({"windows": int(labelled.windows.failure.size), "features": labelled.windows.features})
    for split, counts in labelled.windows.info["class_balance"].items():
        class_balance.log_metric(f"{split}_windows", counts["windows"])
        class_balance.log_metric(f"{split}_{labelled.rate_name}", counts["positive_rate"])


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def label_images(
    manifest: Input[Dataset],
    image_schema: dict,
    annotations: list,
    labeling: dict,
    model_store_uri: str,
    model_name: str,
    labelled: Output[Dataset],
    conflicts: Output[Artifact],
    label_metrics: Output[Metrics],
):
    """Merge plant labels, expert exports and operator feedback into the label history; resolve each image's label.

    Args:
        manifest: the ingested image manifest.
        image_schema: the image data config (its classes).
        annotations: Label Studio JSON or CSV exports (paths or s3:// URIs) to merge in.
        labeling: conflict_window_hours, on_conflict, on_invalid, ... (``AnnotationConfig``).
        model_store_uri: the model store: ``<model_name>/labels/history.parquet`` is the append-only label history,
            ``<model_name>/feedback/`` holds operators' corrections.
        model_name: the model whose history and feedback are used.
        labelled: the manifest with resolved labels and a label_status column (Parquet).
        conflicts: images whose annotators disagree (Parquet).
        label_metrics: labelled, excluded and corrected image counts; operators' corrections accepted and pending.
    """
    import io

    import pandas as pd

    from shopfloor.common.config import validated
    from shopfloor.common.progress import report_progress
    from shopfloor.common.storage import atomic_write_bytes
    from shopfloor.common.vision_config import AnnotationConfig, ImageDataConfig
    from shopfloor.contracts.feedback import read_feedback
    from shopfloor.contracts.images import load_image_manifest
    from shopfloor.contracts.model_store import ModelStore
    from shopfloor.families.visual_inspection.labelling import feedback_events, label_manifest

    data = validated(ImageDataConfig, image_schema, "pipeline parameter image_schema")
    config = validated(AnnotationConfig, labeling, "pipeline parameter labeling")
    table = load_image_manifest(manifest.path)
    feedback = feedback_events(read_feedback(model_store_uri, model_name))
    history_uri = ModelStore(model_store_uri).label_history_uri(model_name)
    result, resolution, skipped = label_manifest(
        table, list(annotations), feedback, history_uri, data.classes, config, pd.Timestamp.now(tz="UTC")
    )
    for frame, path in ((result, labelled.path), (resolution.conflicts, conflicts.path)):
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        atomic_write_bytes(path, buffer.getvalue())
    status = result["label_status"].value_counts().to_dict()
    proposals = resolution.proposals["status"].value_counts()
    accepted, pending = int(proposals.get("accepted", 0)), int(proposals.get("pending", 0))
    report_progress(
        f"{int(result['label'].notna().sum()):,} labelled images; {len(resolution.conflicts)} conflicts; "
        f"operator corrections: {accepted} accepted, {pending} pending (quorum {config.operator_quorum}); "
        f"{len(skipped)} export entries skipped"
    )
    label_metrics.log_metric("labelled_images", int(result["label"].notna().sum()))
    label_metrics.log_metric("conflicts", len(resolution.conflicts))
    label_metrics.log_metric("operator_corrections_accepted", accepted)
    label_metrics.log_metric("operator_corrections_pending", pending)
    for name, count in sorted(status.items()):
        label_metrics.log_metric(f"status_{name}", int(count))
