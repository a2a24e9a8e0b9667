"""The anomaly-detection pipeline: ingest, label normal/abnormal, search, train an autoencoder, evaluate, release.

Every parameter has the default of ``AnomalyDetectionConfig``, so the dashboard, a notebook and ``shopfloor run
anomaly-detection`` start from the same values; ``pipeline_arguments`` turns a config file into arguments. The
served model answers each window with its anomaly score and whether it crosses the alarm threshold; the monitor
reads those answers as a plant-health signal.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Markdown, Model

from shopfloor.common.config import AnomalyDetectionConfig
from shopfloor.components.evaluate.component import evaluate_anomaly_detector
from shopfloor.components.ingest.component import ingest
from shopfloor.components.label.component import label_anomalies
from shopfloor.components.train.component import train_anomaly_detector
from shopfloor.pipelines.cluster import with_s3_access
from shopfloor.pipelines.predictive_maintenance import DEFAULT_MODEL_STORE
from shopfloor.pipelines.release import release_if_blessed
from shopfloor.pipelines.search import search_stage

__all__ = ["PIPELINE_NAME", "anomaly_detection", "pipeline_arguments"]

PIPELINE_NAME = "anomaly-detection"

_DEFAULTS = AnomalyDetectionConfig()
_DEFAULT_DATA_SCHEMA = _DEFAULTS.data.schema_parameter()
_DEFAULT_LABELING = _DEFAULTS.labeling.model_dump()
_DEFAULT_HYPERPARAMETERS = _DEFAULTS.model.model_dump()
_DEFAULT_HPO = _DEFAULTS.hpo.model_dump(exclude={"workers"})
_DEFAULT_HPO_WORKERS = list(range(_DEFAULTS.hpo.workers))
_DEFAULT_GATE = _DEFAULTS.gate.model_dump()
_DEFAULT_DEPLOYMENT = _DEFAULTS.deploy.model_dump()


class PipelineOutputs(NamedTuple):
    """What a run returns: the detector, its evaluation report, its model card and the search report."""

    model: Model
    report: HTML
    model_card: Markdown
    search_report: HTML


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Learn normal operation from process sensors with an autoencoder; alarm on windows it cannot "
    "reconstruct; publish the detector only if it passes the quality gate.",
)
def anomaly_detection(
    sensors_uri: str,
    events_uri: str,
    data_schema: dict = _DEFAULT_DATA_SCHEMA,
    labeling: dict = _DEFAULT_LABELING,
    hyperparameters: dict = _DEFAULT_HYPERPARAMETERS,
    hpo: dict = _DEFAULT_HPO,
    hpo_workers: list = _DEFAULT_HPO_WORKERS,
    gate: dict = _DEFAULT_GATE,
    model_name: str = _DEFAULTS.model_name,
    model_store_uri: str = DEFAULT_MODEL_STORE,
    deployment: dict = _DEFAULT_DEPLOYMENT,
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
    ingested = ingest(sensors_uri=sensors_uri, events_uri=events_uri, data_schema=data_schema)
    ingested.set_display_name("ingest")
    labelled = label_anomalies(
        sensors=ingested.outputs["sensors"],
        events=ingested.outputs["events"],
        data_schema=data_schema,
        labeling=labeling,
    ).set_display_name("label-anomalies")
    setup, searching, selected = search_stage(
        labelled.outputs["windows"], hpo, hyperparameters, data_schema, {}, hpo_workers, model_name
    )
    trained = train_anomaly_detector(
        windows=labelled.outputs["windows"], hyperparameters=selected.outputs["best_hyperparameters"]
    )
    trained.set_display_name("train-autoencoder")
    trained.set_cpu_limit("4").set_memory_limit("8G")
    evaluated = evaluate_anomaly_detector(
        windows=labelled.outputs["windows"],
        model=trained.outputs["model"],
        history=trained.outputs["history"],
        profile=ingested.outputs["profile"],
        model_name=model_name,
        gate=gate,
        model_store_uri=model_store_uri,
    ).set_display_name("evaluate")
    published, served = release_if_blessed(
        evaluated, trained.outputs["model"], ingested.outputs["profile"], model_store_uri, model_name, deployment
    )
    for task in (ingested, labelled, setup, searching, selected, trained, evaluated, published, served):
        with_s3_access(task)
    return PipelineOutputs(
        model=trained.outputs["model"],
        report=evaluated.outputs["report"],
        model_card=evaluated.outputs["model_card"],
        search_report=selected.outputs["report"],
    )


def pipeline_arguments(config: AnomalyDetectionConfig, model_store_uri: str | None = None) -> dict:
    """Pipeline arguments for a validated config whose data paths are already resolved."""
    arguments = {
        "sensors_uri": config.data.sensors,
        "events_uri": config.data.events,
        "data_schema": config.data.schema_parameter(),
        "labeling": config.labeling.model_dump(),
        "hyperparameters": config.model.model_dump(),
        "hpo": config.hpo.model_dump(exclude={"workers"}),
        "hpo_workers": list(range(config.hpo.workers)),
        "gate": config.gate.model_dump(),
        "model_name": config.model_name,
        "deployment": config.deploy.model_dump(),
    }
    if model_store_uri is not None:
        arguments["model_store_uri"] = model_store_uri
    return arguments
