"""The anomaly-detection pipeline: ingest, label normal/abnormal, search, train an autoencoder, evaluate, explain.

Every parameter has the default of ``AnomalyDetectionConfig``, so the dashboard, a notebook and ``shopfloor run
anomaly-detection`` start from the same values; ``pipeline_arguments`` turns a config file into arguments. The
served model answers each window with its anomaly score and whether it crosses the alarm threshold; the monitor
reads those answers as a plant-health signal.
"""

from kfp import dsl
from kfp.dsl.graph_component import GraphComponent

from shopfloor.families.anomaly_detection.config import AnomalyDetectionConfig
from shopfloor.families.registry import ModelKind
from shopfloor.pipelines import parameters
from shopfloor.pipelines.predictive_maintenance import DEFAULT_MODEL_STORE
from shopfloor.pipelines.training import outputs_type, sensor_training, stage_outputs

__all__ = ["PIPELINE_NAME", "anomaly_detection", "build_pipeline", "pipeline_arguments"]

PIPELINE_NAME = "anomaly-detection"

_DEFAULTS = AnomalyDetectionConfig()
_DEFAULT = {**parameters.sensor_data_parameters(_DEFAULTS), **parameters.config_parameters(_DEFAULTS)}


def build_pipeline(search: bool = True) -> GraphComponent:
    """The pipeline, with its search stage or (``search=False``, for runs whose search is off) without it."""

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
        alerts: dict = _DEFAULT["alerts"],
    ) -> outputs_type(search):  # type: ignore[valid-type]
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
            alerts: the plant's channel (`monitor.alerts`) a failed gate or a rolled-back deploy is published to.
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
            alerts=alerts,
            label_display_name="label-anomalies",
            train_display_name="train-autoencoder",
            search=search,
        )
        return stage_outputs(run.stage)

    return anomaly_detection


anomaly_detection = build_pipeline()


def pipeline_arguments(config: AnomalyDetectionConfig, model_store_uri: str | None = None) -> dict:
    """Pipeline arguments for a validated config whose data paths are already resolved."""
    return parameters.pipeline_arguments(parameters.sensor_data_parameters(config), config, model_store_uri)
