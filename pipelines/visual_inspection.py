"""The visual-inspection pipeline: photos -> labels -> search -> CNN (+ edge) -> evaluate, Grad-CAM -> publish, deploy.

Labels merge the plant's manifest, expert exports and operator feedback; the model is published and deployed only
if it passes the quality gate.

Every parameter has the default of ``VisualInspectionConfig``, so the dashboard, a notebook and ``shopfloor run
visual-inspection`` start from the same values; ``pipeline_arguments`` turns a config file into arguments.
"""

from kfp import dsl
from kfp.dsl.graph_component import GraphComponent

from shopfloor.components.ingest.component import fingerprint_sources, ingest_images
from shopfloor.components.label.component import label_images
from shopfloor.families.registry import ModelKind
from shopfloor.families.visual_inspection.config import VisualInspectionConfig
from shopfloor.pipelines import parameters
from shopfloor.pipelines.caching import apply_caching_policy
from shopfloor.pipelines.cluster import with_step_secrets
from shopfloor.pipelines.predictive_maintenance import DEFAULT_MODEL_STORE
from shopfloor.pipelines.training import outputs_type, search_train_release, stage_outputs

__all__ = ["PIPELINE_NAME", "build_pipeline", "pipeline_arguments", "visual_inspection"]

PIPELINE_NAME = "visual-inspection"

_DEFAULTS = VisualInspectionConfig()
_DEFAULT = {**parameters.image_data_parameters(_DEFAULTS), **parameters.config_parameters(_DEFAULTS)}


def build_pipeline(search: bool = True) -> GraphComponent:
    """The pipeline, with its search stage or (``search=False``, for runs whose search is off) without it."""

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Find defects on photographed parts with a CNN that shows where it looked (Grad-CAM); "
        "export it for edge PCs (TFLite) and publish it only if it passes the quality gate.",
    )
    def visual_inspection(
        data_root: str,
        image_schema: dict = _DEFAULT["image_schema"],
        annotations: list = _DEFAULT["annotations"],
        labeling: dict = _DEFAULT["labeling"],
        split: dict = _DEFAULT["split"],
        hyperparameters: dict = _DEFAULT["hyperparameters"],
        hpo: dict = _DEFAULT["hpo"],
        hpo_workers: list = _DEFAULT["hpo_workers"],
        gate: dict = _DEFAULT["gate"],
        edge: dict = _DEFAULT["edge"],
        model_name: str = _DEFAULT["model_name"],
        model_store_uri: str = DEFAULT_MODEL_STORE,
        deployment: dict = _DEFAULT["deployment"],
        alerts: dict = _DEFAULT["alerts"],
    ) -> outputs_type(search):  # type: ignore[valid-type]
        """Train and gate a part-inspection CNN on labelled photos; corrected labels and feedback count each run.

        Each dict parameter is one section of the scenario config (``pipelines/configs/visual_inspection.yaml``
        documents every key); unknown keys are rejected, so a typo fails the run instead of being ignored.

        Args:
            data_root: the folder or s3:// prefix holding images/ and labels.csv (or one folder per class).
            image_schema: images, manifest, classes, ok_class, image_size, color_mode, on_invalid, extensions.
            annotations: Label Studio JSON or CSV exports (paths or s3:// URIs) merged into the label history.
            labeling: image_field, choices_from_name, conflict_window_hours, on_conflict, on_invalid.
            split: test_fraction, validation_fraction, seed (stratified by content hash).
            hyperparameters: the CNN: filters, convs_per_block, kernel_size, pooling, dropout, augmentation,
                epochs, ...; the search's best values override them.
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
            alerts: the plant's channel (`monitor.alerts`) a failed gate or a rolled-back deploy is published to.
        """
        fingerprinted = fingerprint_sources(data_uri=data_root, other_uri="", more_uris=annotations)
        fingerprinted.set_display_name("fingerprint-sources")
        ingested = ingest_images(
            data_root=data_root, image_schema=image_schema, sources_fingerprint=fingerprinted.output
        ).set_display_name("ingest-images")
        labelled = label_images(
            manifest=ingested.outputs["manifest"],
            image_schema=image_schema,
            annotations=annotations,
            labeling=labeling,
            model_store_uri=model_store_uri,
            model_name=model_name,
        ).set_display_name("label-images")
        stage = search_train_release(
            ModelKind.VISUAL_INSPECTION.value,
            labelled.outputs["labelled"],
            ingested.outputs["profile"],
            hpo=hpo,
            hyperparameters=hyperparameters,
            hpo_workers=hpo_workers,
            data_schema=image_schema,
            split=split,
            gate=gate,
            edge=edge,
            model_name=model_name,
            model_store_uri=model_store_uri,
            deployment=deployment,
            alerts=alerts,
            train_display_name="train-inspector",
            search=search,
        )
        tasks = (fingerprinted, ingested, labelled, *stage.all())
        apply_caching_policy(*tasks)
        for task in tasks:
            with_step_secrets(task)
        return stage_outputs(stage)

    return visual_inspection


visual_inspection = build_pipeline()


def pipeline_arguments(config: VisualInspectionConfig, model_store_uri: str | None = None) -> dict:
    """Pipeline arguments for a validated config whose data root is already resolved."""
    return parameters.pipeline_arguments(parameters.image_data_parameters(config), config, model_store_uri)
