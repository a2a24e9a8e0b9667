"""The visual-inspection pipeline: photos -> labels -> search -> CNN (+ edge) -> evaluate, Grad-CAM -> publish, deploy.

Labels merge the plant's manifest, expert exports and operator feedback; the model is published and deployed only
if it passes the quality gate.

Every parameter has the default of ``VisualInspectionConfig``, so the dashboard, a notebook and ``shopfloor run
visual-inspection`` start from the same values; ``pipeline_arguments`` turns a config file into arguments.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Markdown, Model

from shopfloor.common.config import as_parameter
from shopfloor.common.vision_config import VisualInspectionConfig
from shopfloor.components.evaluate.component import evaluate_inspector
from shopfloor.components.explain.component import explain_inspector
from shopfloor.components.ingest.component import ingest_images
from shopfloor.components.label.component import label_images
from shopfloor.components.train.component import train_inspector
from shopfloor.pipelines.cluster import with_s3_access
from shopfloor.pipelines.predictive_maintenance import DEFAULT_MODEL_STORE
from shopfloor.pipelines.release import release_if_blessed
from shopfloor.pipelines.search import search_stage

__all__ = ["PIPELINE_NAME", "pipeline_arguments", "visual_inspection"]

PIPELINE_NAME = "visual-inspection"

_DEFAULTS = VisualInspectionConfig()
_DEFAULT_IMAGE_SCHEMA = as_parameter(_DEFAULTS.data)
_DEFAULT_LABELING = as_parameter(_DEFAULTS.labeling)
_DEFAULT_SPLIT = as_parameter(_DEFAULTS.split)
_DEFAULT_HYPERPARAMETERS = as_parameter(_DEFAULTS.model)
_DEFAULT_HPO = as_parameter(_DEFAULTS.hpo, exclude={"workers"})
_DEFAULT_HPO_WORKERS = list(range(_DEFAULTS.hpo.workers))
_DEFAULT_GATE = as_parameter(_DEFAULTS.gate)
_DEFAULT_EDGE = as_parameter(_DEFAULTS.edge)
_DEFAULT_DEPLOYMENT = as_parameter(_DEFAULTS.deploy)


class PipelineOutputs(NamedTuple):
    """What a run returns: the model (with its edge variants), evaluation report, model card, Grad-CAM and search."""

    model: Model
    report: HTML
    model_card: Markdown
    explanation: HTML
    search_report: HTML


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Find defects on photographed parts with a CNN that shows where it looked (Grad-CAM); "
    "export it for edge PCs (TFLite) and publish it only if it passes the quality gate.",
)
def visual_inspection(
    data_root: str,
    image_schema: dict = _DEFAULT_IMAGE_SCHEMA,
    annotations: list = _DEFAULTS.annotations,
    labeling: dict = _DEFAULT_LABELING,
    split: dict = _DEFAULT_SPLIT,
    hyperparameters: dict = _DEFAULT_HYPERPARAMETERS,
    hpo: dict = _DEFAULT_HPO,
    hpo_workers: list = _DEFAULT_HPO_WORKERS,
    gate: dict = _DEFAULT_GATE,
    edge: dict = _DEFAULT_EDGE,
    model_name: str = _DEFAULTS.model_name,
    model_store_uri: str = DEFAULT_MODEL_STORE,
    deployment: dict = _DEFAULT_DEPLOYMENT,
) -> PipelineOutputs:
    """Train and gate a part-inspection CNN on labelled photos; corrected labels and feedback count each run.

    Each dict parameter is one section of the scenario config (``pipelines/configs/visual_inspection.yaml``
    documents every key); unknown keys are rejected, so a typo fails the run instead of being ignored.

    Args:
        data_root: the folder or s3:// prefix holding images/ and labels.csv (or one folder per class).
        image_schema: images, manifest, classes, ok_class, image_size, color_mode, on_invalid, extensions.
        annotations: Label Studio JSON or CSV exports (paths or s3:// URIs) merged into the label history.
        labeling: image_field, choices_from_name, conflict_window_hours, on_conflict, on_invalid.
        split: test_fraction, validation_fraction, seed (stratified by content hash).
        hyperparameters: the CNN: filters, convs_per_block, kernel_size, pooling, dropout, augmentation, epochs, ...;
            the search's best values override them.
        hpo: the hyperparameter search over the CNN's space: enabled (false for quick runs), builder, trials,
            timeout_s, max_epochs, storage ('' = the study URL from the Secret shopfloor-optuna), seed.
        hpo_workers: one entry per parallel search worker (`hpo.workers` in a config file becomes this).
        gate: target_defect_recall (sets the threshold), min_accuracy, min_defect_recall, max_false_reject_rate,
            min_roc_auc.
        edge: quantize, representative_images, max_accuracy_drop (TFLite export).
        model_name: model name in the store and reports.
        model_store_uri: where blessed models are published (s3:// on a cluster); the model's label history and
            operator feedback live there too (``<model_name>/labels/``, ``<model_name>/feedback/``).
        deployment: where a blessed model is served: target (kserve|local), namespace, service_account,
            canary_traffic_percent, ready_timeout_s, explainer, runtime (keras | tflite-float32 | tflite-int8),
            payload_log_uri, local_state_dir.
    """
    ingested = ingest_images(data_root=data_root, image_schema=image_schema).set_display_name("ingest-images")
    labelled = label_images(
        manifest=ingested.outputs["manifest"],
        image_schema=image_schema,
        annotations=annotations,
        labeling=labeling,
        model_store_uri=model_store_uri,
        model_name=model_name,
    ).set_display_name("label-images")
    setup, searching, selected = search_stage(
        labelled.outputs["labelled"], hpo, hyperparameters, image_schema, split, hpo_workers, model_name
    )
    trained = train_inspector(
        labelled=labelled.outputs["labelled"],
        image_schema=image_schema,
        split=split,
        hyperparameters=selected.outputs["best_hyperparameters"],
        gate=gate,
        edge=edge,
    ).set_display_name("train-inspector")
    trained.set_cpu_limit("4").set_memory_limit("8G")
    evaluated = evaluate_inspector(
        labelled=labelled.outputs["labelled"],
        model=trained.outputs["model"],
        history=trained.outputs["history"],
        profile=ingested.outputs["profile"],
        model_name=model_name,
        image_schema=image_schema,
        split=split,
        gate=gate,
        model_store_uri=model_store_uri,
    ).set_display_name("evaluate")
    explained = explain_inspector(
        labelled=labelled.outputs["labelled"],
        model=trained.outputs["model"],
        model_name=model_name,
        image_schema=image_schema,
        split=split,
        model_store_uri=model_store_uri,
    ).set_display_name("explain-gradcam")
    published, served = release_if_blessed(
        evaluated, trained.outputs["model"], ingested.outputs["profile"], model_store_uri, model_name, deployment
    )
    for task in (ingested, labelled, setup, searching, selected, trained, evaluated, explained, published, served):
        with_s3_access(task)
    return PipelineOutputs(
        model=trained.outputs["model"],
        report=evaluated.outputs["report"],
        model_card=evaluated.outputs["model_card"],
        explanation=explained.outputs["report"],
        search_report=selected.outputs["report"],
    )


def pipeline_arguments(config: VisualInspectionConfig, model_store_uri: str | None = None) -> dict:
    """Pipeline arguments for a validated config whose data root is already resolved."""
    arguments = {
        "data_root": config.data_root,
        "image_schema": as_parameter(config.data),
        "annotations": list(config.annotations),
        "labeling": as_parameter(config.labeling),
        "split": as_parameter(config.split),
        "hyperparameters": as_parameter(config.model),
        "hpo": as_parameter(config.hpo, exclude={"workers"}),
        "hpo_workers": list(range(config.hpo.workers)),
        "gate": as_parameter(config.gate),
        "edge": as_parameter(config.edge),
        "model_name": config.model_name,
        "deployment": as_parameter(config.deploy),
    }
    if model_store_uri is not None:
        arguments["model_store_uri"] = model_store_uri
    return arguments
