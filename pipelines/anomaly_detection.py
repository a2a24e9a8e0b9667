"""The anomaly-detection pipeline: ingest, label normal/abnormal, search, train an autoencoder, evaluate, explain.

Every parameter has the default of ``AnomalyDetectionConfig``, so the dashboard, a notebook and ``shopfloor run
anomaly-detection`` start from the same values; ``pipeline_arguments`` turns a config file into arguments. The
served model answers each window with its anomaly score and whether it crosses the alarm threshold; the monitor
reads those answers as a plant-health signal.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Markdown, Model

from shopfloor.families.anomaly_detection.config import AnomalyDetectionConfig
from shopfloor.families.registry import ModelKind
from shopfloor.pipelines import parameters
from shopfloor.pipelines.predictive_maintenance import DEFAULT_MODEL_STORE
from shopfloor.pipelines.training import sensor_training

__all__ = ["PIPELINE_NAME", "anomaly_detection", "pipeline_arguments"]

PIPELINE_NAME = "anomaly-detection"

_DEFAULTS = AnomalyDetectionConfig()
_DEFAULT = {**parameters.sensor_data_parameters(_DEFAULTS), **parameters.config_parameters(_DEFAULTS)}


class PipelineOutputs(NamedTuple):
    """What a run returns: the detector, its evaluation report, its model card, explanations and search report."""

    model: Model
    report: HTML
    model_card: Markdown
    explanation: HTML
    search_report: HTML


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Learn normal operation from process sensors with an autoencoder; alarm on windows it cannot "
    "reconstruct; publish the detector only if it passes the quality gate.",
)
def anomaly_detection(
    sensors_uri: str,
    events_uri: str,
    data_schema: dict = _DEFAULT["data_schema"],
    labeling: dict = _DEFAULT["labeling"],
    hyperparameters: dict = _DEFAULT["hyperparameters"],
    hpo: dict = _DEFAULT["hpo"],
    hpo_workers: list = _DEFAULT["hpo_workers"],
    gate: dict = _DEFAULT["gate"],
    model_name: str = _DEFAULT["model_name"],
    model_store_uri: str = DEFAULT_MODEL_STORE,
    deployment: dict = _DEFAULT["deployment"],
) -> PipelineOutputs:
    """Train and gate an anomaly detector (window autoencoder) on plant sensor data.

    Each dict parameter is one section of the scenario config (``pipelines/configs/anomaly_detection.yaml``
    documents every key); unknown keys are rejected, so a typo fails the run instead of being ignored.

    Args:
        sensors_uri: sensor readings (CSV/Parquet), a path or s3:// URI.
        events_uri: events (CSV/Parquet) whose types in failure_values mark abnormal operation.
        data_schema: what the columns mean: sensor_columns, event_columns and failure_values.
        labeling: window, stride, before_hours, after_hours, validation_fraction, test_fraction.
        hyperparameters: conv_filters, kernel_size, latent_units, learning_rate, epochs, patience, batch_size,
            threshold (auto|best-f1|percentile), threshold_percentile, seed; the search's best values override them.
        hpo: the search over the autoencoder's space (scored by the validation PR-AUC of the anomaly score, so the
            validation period needs anomalies): enabled, builder, trials, timeout_s, max_epochs, storage, seed.
        hpo_workers: one entry per parallel search worker (`hpo.workers` in a config file becomes this).
        gate: min_f1, min_recall, max_false_alarm_rate.
        model_name: model name in the store and reports.
        model_store_uri: where blessed models are published (s3:// on a cluster).
        deployment: where a blessed model is served: target (kserve|local), namespace, service_account,
            canary_traffic_percent, ready_timeout_s, explainer, runtime, payload_log_uri, local_state_dir.
    """
    run = sensor_training(
        ModelKind.ANOMALY_DETECTION.value,
        sensors_uri,
        events_uri,
        data_schema=data_schema,
        labeling=labeling,
        hpo=hpo,
        hyperparameters=hyperparameters,
        hpo_workers=hpo_workers,
        gate=gate,
        model_name=model_name,
        model_store_uri=model_store_uri,
        deployment=deployment,
        label_display_name="label-anomalies",
        train_display_name="train-autoencoder",
    )
    return PipelineOutputs(
        model=run.stage.trained.outputs["model"],
        report=run.stage.evaluated.outputs["report"],
        model_card=run.stage.evaluated.outputs["model_card"],
        explanation=run.stage.explained.outputs["report"],
        search_report=run.stage.selected.outputs["report"],
    )


def pipeline_arguments(config: AnomalyDetectionConfig, model_store_uri: str | None = None) -> dict:
    """Pipeline arguments for a validated config whose data paths are already resolved."""
    return parameters.pipeline_arguments(parameters.sensor_data_parameters(config), config, model_store_uri)
