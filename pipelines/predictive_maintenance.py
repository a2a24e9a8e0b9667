"""The predictive-maintenance pipeline: ingest, label, train, evaluate + explain, then if blessed publish + deploy.

Every parameter has the default of ``PredictiveMaintenanceConfig``, so the dashboard, a notebook and
``shopfloor run`` start from the same values; ``pipeline_arguments`` turns a config file into arguments.
"""

from kfp import dsl
from kfp.dsl.graph_component import GraphComponent

from shopfloor.families.predictive_maintenance.config import PredictiveMaintenanceConfig
from shopfloor.families.registry import ModelKind
from shopfloor.pipelines import parameters
from shopfloor.pipelines.training import outputs_type, sensor_training, stage_outputs

__all__ = ["DEFAULT_MODEL_STORE", "PIPELINE_NAME", "build_pipeline", "pipeline_arguments", "predictive_maintenance"]

PIPELINE_NAME = "predictive-maintenance"
DEFAULT_MODEL_STORE = "s3://mlpipeline/shopfloor/models"


_DEFAULTS = PredictiveMaintenanceConfig()
_DEFAULT = {**parameters.sensor_data_parameters(_DEFAULTS), **parameters.config_parameters(_DEFAULTS)}


def build_pipeline(search: bool = True) -> GraphComponent:
    """The pipeline, with its search stage or (``search=False``, for runs whose search is off) without it."""

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Predict asset failures within a horizon and remaining useful life "
        "from process sensors; publish the model only if it passes the quality gate.",
    )
    def predictive_maintenance(
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
        """Train and gate a failure-within-horizon + remaining-useful-life model on plant sensor data.

        Each dict parameter is one section of the scenario config (``pipelines/configs/predictive_maintenance.yaml``
        documents every key); unknown keys are rejected, so a typo fails the run instead of being ignored.

        Args:
            sensors_uri: sensor readings (CSV/Parquet), a path or s3:// URI.
            events_uri: maintenance events (CSV/Parquet), a path or s3:// URI.
            data_schema: what the columns mean: sensor_columns (timestamp, asset_id, site, features), event_columns
                (timestamp, asset_id, event_type) and failure_values.
            labeling: horizon_hours, window, stride, rul_cap_hours, test_fraction, validation_fraction, seed.
            hyperparameters: hidden_units, conv_filters, kernel_size, dropout, learning_rate, epochs, patience,
                batch_size, seed; the search's best values override them.
            hpo: the hyperparameter search: enabled (false for quick runs), builder, trials, timeout_s, workers,
                max_epochs, storage ('' = the study URL from the Secret shopfloor-optuna), seed.
            hpo_workers: one entry per parallel search worker, e.g. [0, 1, 2, 3] for four (a list, because KFP's
                ParallelFor iterates a list; `hpo.workers` in a config file becomes this).
            gate: decision_threshold and the quality gate: min_roc_auc, min_pr_auc, max_rul_mae_hours.
            model_name: model name in the store and reports.
            model_store_uri: where blessed models are published (s3:// on a cluster).
            deployment: where a blessed model is served: target (kserve|local), namespace, service_account,
                canary_traffic_percent, ready_timeout_s, explainer, runtime, payload_log_uri, local_state_dir.
            alerts: the plant's channel (`monitor.alerts`) a failed gate or a rolled-back deploy is published to.
        """
        run = sensor_training(
            ModelKind.PREDICTIVE_MAINTENANCE.value,
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
            search=search,
        )
        return stage_outputs(run.stage)

    return predictive_maintenance


predictive_maintenance = build_pipeline()


def pipeline_arguments(config: PredictiveMaintenanceConfig, model_store_uri: str | None = None) -> dict:
    """Pipeline arguments for a validated config whose data paths are already resolved."""
    return parameters.pipeline_arguments(parameters.sensor_data_parameters(config), config, model_store_uri)
