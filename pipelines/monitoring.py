"""The monitoring pipeline: check drift of the served model; if the policy says retrain, start the training run.

Scheduled as a KFP recurring run (``infra/kfp/monitoring-recurring-run.yaml``); on one machine
``shopfloor monitor`` does the same through the local runner's pipeline.
"""

from kfp import dsl, kubernetes

from shopfloor.common.config import MonitorConfig
from shopfloor.common.kfp_api import ACCESS_LABEL
from shopfloor.components.monitor.component import check_drift, trigger_retraining
from shopfloor.pipelines.caching import apply_caching_policy
from shopfloor.pipelines.cluster import with_step_secrets
from shopfloor.pipelines.predictive_maintenance import DEFAULT_MODEL_STORE

__all__ = ["PIPELINE_NAME", "monitoring"]

PIPELINE_NAME = "shopfloor-monitoring"
_DEFAULT_MONITOR = MonitorConfig().model_dump()


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Drift of a served model's payloads against its training data; "
    "starts the training pipeline when the retrain policy allows.",
)
def monitoring(
    training_arguments: dict,
    model_name: str = "predictive-maintenance",
    model_store_uri: str = DEFAULT_MODEL_STORE,
    payload_log_uri: str = "s3://mlpipeline/shopfloor/payload-logs",
    state_uri: str = "s3://mlpipeline/shopfloor/monitor",
    monitor: dict = _DEFAULT_MONITOR,
    training_pipeline: str = "predictive-maintenance",
    experiment: str = "shopfloor-retraining",
    namespace: str = "kubeflow-user-example-com",
    labels_uri: str = "",
    batch_uri: str = "",
    kfp_host: str = "",
):
    """Check drift and retrain under the policy.

    Args:
        training_arguments: arguments of the training run a retrain starts (data URIs, config sections).
        model_name: the served model.
        model_store_uri: the model store (latest.json names the version in production).
        payload_log_uri: where the model server writes payload logs.
        state_uri: where retrain runs and approval requests are kept.
        monitor: drift thresholds and the retrain policy (auto, approval, off; cooldown; runs per day).
        training_pipeline: the registered training pipeline to run.
        experiment: the KFP experiment for retraining runs.
        namespace: the Kubeflow profile namespace.
        labels_uri: what really happened to served windows (request_id, index, label), CSV/Parquet; '' = none
            yet. Degraded performance on them starts a retrain like drift does.
        batch_uri: a new data batch (sensor table, CSV/Parquet) to compare instead of the payload logs; '' = logs.
        kfp_host: the Pipelines API the trigger calls ('' = Kubeflow's in-cluster ml-pipeline service).
    """
    checked = check_drift(
        model_name=model_name,
        model_store_uri=model_store_uri,
        payload_log_uri=payload_log_uri,
        state_uri=state_uri,
        monitor=monitor,
        labels_uri=labels_uri,
        batch_uri=batch_uri,
    ).set_display_name("check-drift")
    with dsl.If(checked.outputs["action"] == "retrain", name="policy-says-retrain"):
        started = trigger_retraining(
            model_name=model_name,
            state_uri=state_uri,
            pipeline_name=training_pipeline,
            experiment=experiment,
            namespace=namespace,
            arguments=training_arguments,
            kfp_host=kfp_host,
            sites=checked.outputs["sites"],  # a fleet's drifted sites: only their site models retrain
            model_store_uri=model_store_uri,
        )
        started.set_display_name("trigger-retraining")
        # the PodDefault infra/kfp/access-ml-pipeline.yaml projects the Pipelines API token into labelled pods
        kubernetes.add_pod_label(started, *ACCESS_LABEL)
    apply_caching_policy(checked, started)  # neither is ever cached: both read and change state outside KFP
    for task in (checked, started):
        with_step_secrets(task)
