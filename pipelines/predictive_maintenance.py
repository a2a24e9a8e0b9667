"""The predictive-maintenance pipeline: ingest, label, train, evaluate + explain, then if blessed publish + deploy.

Every parameter has the default of ``PredictiveMaintenanceConfig``, so the dashboard, a notebook and
``shopfloor run`` start from the same values; ``pipeline_arguments`` turns a config file into arguments.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Markdown, Model

from shopfloor.common.config import PredictiveMaintenanceConfig
from shopfloor.components.evaluate.component import evaluate
from shopfloor.components.explain.component import explain
from shopfloor.components.ingest.component import ingest
from shopfloor.components.label.component import label
from shopfloor.components.train.component import train
from shopfloor.pipelines.cluster import with_s3_access
from shopfloor.pipelines.release import release_if_blessed
from shopfloor.pipelines.search import search_stage

__all__ = ["DEFAULT_MODEL_STORE", "PIPELINE_NAME", "pipeline_arguments", "predictive_maintenance"]

PIPELINE_NAME = "predictive-maintenance"
DEFAULT_MODEL_STORE = "s3://mlpipeline/shopfloor/models"


def _data_schema(config: PredictiveMaintenanceConfig) -> dict:
    """The data section without its locations, which are pipeline parameters of their own."""
    return config.data.schema_parameter()


_DEFAULTS = PredictiveMaintenanceConfig()
_DEFAULT_DATA_SCHEMA = _data_schema(_DEFAULTS)
_DEFAULT_LABELING = _DEFAULTS.labeling.model_dump()
_DEFAULT_HYPERPARAMETERS = _DEFAULTS.model.model_dump()
_DEFAULT_GATE = _DEFAULTS.gate.model_dump()
_DEFAULT_HPO = _DEFAULTS.hpo.model_dump(exclude={"workers"})
_DEFAULT_HPO_WORKERS = list(range(_DEFAULTS.hpo.workers))
_DEFAULT_DEPLOYMENT = _DEFAULTS.deploy.model_dump()


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
    ingested = ingest(sensors_uri=sensors_uri, events_uri=events_uri, data_schema=data_schema)
    ingested.set_display_name("ingest")
    labelled = label(
        sensors=ingested.outputs["sensors"],
        events=ingested.outputs["events"],
        data_schema=data_schema,
        labeling=labeling,
    ).set_display_name("label")
    setup, searching, selected = search_stage(
        labelled.outputs["windows"], hpo, hyperparameters, data_schema, {}, hpo_workers, model_name
    )
    trained = train(windows=labelled.outputs["windows"], hyperparameters=selected.outputs["best_hyperparameters"])
    trained.set_display_name("train")
    trained.set_cpu_limit("4").set_memory_limit("8G")
    evaluated = evaluate(
        windows=labelled.outputs["windows"],
        model=trained.outputs["model"],
        history=trained.outputs["history"],
        profile=ingested.outputs["profile"],
        model_name=model_name,
        gate=gate,
        model_store_uri=model_store_uri,
    ).set_display_name("evaluate")
    explained = explain(
        windows=labelled.outputs["windows"], model=trained.outputs["model"], model_name=model_name, gate=gate
    ).set_display_name("explain")
    published, served = release_if_blessed(
        evaluated, trained.outputs["model"], ingested.outputs["profile"], model_store_uri, model_name, deployment
    )
    for task in (ingested, labelled, setup, searching, selected, trained, evaluated, explained, published, served):
        with_s3_access(task)  # data, model store and payload logs on MinIO; the Secret never enters the YAML
    return PipelineOutputs(
        model=trained.outputs["model"],
        report=evaluated.outputs["report"],
        model_card=evaluated.outputs["model_card"],
        explanation=explained.outputs["report"],
        search_report=selected.outputs["report"],
    )


def pipeline_arguments(config: PredictiveMaintenanceConfig, model_store_uri: str | None = None) -> dict:
    """Pipeline arguments for a validated config whose data paths are already resolved."""
    arguments = {
        "sensors_uri": config.data.sensors,
        "events_uri": config.data.events,
        "data_schema": _data_schema(config),
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
