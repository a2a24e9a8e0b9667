"""The predictive-maintenance pipeline: ingest, label, train, evaluate + explain, then if blessed publish + deploy.

Every parameter has the default of ``PredictiveMaintenanceConfig``, so the dashboard, a notebook and
``shopfloor run`` start from the same values; ``pipeline_arguments`` turns a config file into arguments.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Markdown, Model

from shopfloor.families.predictive_maintenance.config import PredictiveMaintenanceConfig
from shopfloor.families.registry import ModelKind
from shopfloor.pipelines import parameters
from shopfloor.pipelines.training import sensor_training

__all__ = ["DEFAULT_MODEL_STORE", "PIPELINE_NAME", "pipeline_arguments", "predictive_maintenance"]

PIPELINE_NAME = "predictive-maintenance"
DEFAULT_MODEL_STORE = "s3://mlpipeline/shopfloor/models"


_DEFAULTS = PredictiveMaintenanceConfig()
_DEFAULT = {**parameters.sensor_data_parameters(_DEFAULTS), **parameters.config_parameters(_DEFAULTS)}


class PipelineOutputs(NamedTuple):
    """What a run returns: the model, evaluation report, model card, explanations and search report."""

    model: Model
    report: HTML
    model_card: Markdown
    explanation: HTML
    search_report: HTML


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
) -> PipelineOutputs:
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
    )
    return PipelineOutputs(
        model=run.stage.trained.outputs["model"],
        report=run.stage.evaluated.outputs["report"],
        model_card=run.stage.evaluated.outputs["model_card"],
        explanation=run.stage.explained.outputs["report"],
        search_report=run.stage.selected.outputs["report"],
    )


def pipeline_arguments(config: PredictiveMaintenanceConfig, model_store_uri: str | None = None) -> dict:
    """Pipeline arguments for a validated config whose data paths are already resolved."""
    return parameters.pipeline_arguments(parameters.sensor_data_parameters(config), config, model_store_uri)
