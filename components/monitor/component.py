"""KFP wrappers for the monitoring loop: the drift check with its decision, and the retraining trigger."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Metrics, Output

from shopfloor.components._image import IMAGE

__all__ = ["check_drift", "trigger_retraining"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def check_drift(
    model_name: str,
    model_store_uri: str,
    payload_log_uri: str,
    state_uri: str,
    monitor: dict,
    report: Output[HTML],
    drift_metrics: Output[Metrics],
    labels_uri: str = "",
    batch_uri: str = "",
) -> NamedTuple("DriftDecision", [("action", str), ("sites", list)]):  # type: ignore[valid-type]  # KFP outputs
    """Compare the served model's recent payload logs with its training data and apply the retrain policy.

    A fleet model's site endpoints (``<model_name>-<site>``, the published model's ``fleet.sites``) are judged by
    site too, with this monitor section's settings; the decision names the sites that drifted or degraded.

    Args:
        model_name: the served model (its folder in the model store and the payload logs).
        model_store_uri: the model store; latest.json names the version in production.
        payload_log_uri: where the model server writes payload logs.
        state_uri: where retrain runs and approval requests are kept.
        monitor: window_days, min_rows, psi_threshold, alpha, min_effect, min_share_drifted, max_alarm_rate,
            push_gateway, dashboard_url, alerts (the channel plant alerts and approval requests are published
            to), retrain policy (``MonitorConfig``).
        report: HTML drift report (per-sensor table, histograms of the drifted sensors).
        drift_metrics: per-sensor drift statistics, share of sensors drifted, readings compared, plant-health
            alarm rate, performance on arrived labels and the decision (``monitor_metrics``); the same values are
            pushed to the Pushgateway ``monitor.push_gateway`` (or ``$SHOPFLOOR_PUSHGATEWAY_URL``) names, if any.
        labels_uri: what really happened to served windows (request_id, index, label), CSV/Parquet; '' = none.
        batch_uri: a new data batch (sensor table) to compare instead of the payload logs; '' = the logs.

    Returns:
        action: the decision: none, retrain, request-approval, not-enough-data, suppressed or plant-alert.
        sites: the fleet's sites the decision is for (drifted or degraded); [] for the whole model.
    """
    from shopfloor.common.config import MonitorConfig, validated
    from shopfloor.common.progress import report_progress
    from shopfloor.common.storage import atomic_write_bytes
    from shopfloor.components.monitor.alerts import publish_monitor_events
    from shopfloor.components.monitor.metrics import monitor_metrics, publish_monitor_metrics
    from shopfloor.components.monitor.monitor import run_monitoring

    settings = validated(MonitorConfig, monitor, "pipeline parameter monitor")
    run = run_monitoring(
        model_store_uri, payload_log_uri, state_uri, model_name, settings, labels_uri=labels_uri, batch_uri=batch_uri
    )
    atomic_write_bytes(report.path, run.report_html.encode())
    for name, value in monitor_metrics(run).items():
        drift_metrics.log_metric(name, value)
    publish_monitor_metrics(run, model_name, settings.push_gateway)  # when one is configured; never fails the run
    publish_monitor_events(run, model_name, settings.alerts)  # plant alert, approval request; never fails the run
    sites = f" for sites {', '.join(run.decision.sites)}" if run.decision.sites else ""  # a fleet's drifted sites
    report_progress(f"{run.result.summary}; decision: {run.decision.action}{sites} ({run.decision.reason})")

    class DriftDecision(NamedTuple):  # the annotated outputs, by name
        action: str
        sites: list

    return DriftDecision(run.decision.action, list(run.decision.sites))


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def trigger_retraining(
    model_name: str,
    state_uri: str,
    pipeline_name: str,
    experiment: str,
    namespace: str,
    arguments: dict,
    kfp_host: str = "",
    sites: list = [],  # noqa: B006  # KFP parameter defaults are literals, never mutated
    model_store_uri: str = "",
) -> str:
    """Start a run of the registered training pipeline and record it against the cooldown and storm limits.

    A decision for some of a fleet's sites retrains only their site models: the others are kept from the
    published version (``retrain_arguments``).

    Args:
        model_name: the model being retrained.
        state_uri: where retrain runs are recorded.
        pipeline_name: the registered training pipeline (e.g. predictive-maintenance).
        experiment: the KFP experiment the run goes to.
        namespace: the Kubeflow profile namespace the run goes to.
        arguments: the training pipeline's arguments (data location, config sections).
        sites: the sites the decision is for (the drift check's ``sites``); [] retrains the whole model.
        model_store_uri: the model store whose published version keeps the other sites' models.
        kfp_host: the Pipelines API ('' = ``$KF_PIPELINES_ENDPOINT``, else the in-cluster service); the token is
            the one the ``access-ml-pipeline`` PodDefault projects into this step's pod.

    Returns:
        The id of the started run.
    """
    from shopfloor.common.progress import report_progress
    from shopfloor.components.monitor.policy import RetrainState
    from shopfloor.components.monitor.trigger import retrain_arguments, start_retraining_run

    state = RetrainState(state_uri, model_name)
    approved = state.approved_pending_start()  # an operator's approval is what this run carries out, if any
    arguments = retrain_arguments(arguments, sites, model_store_uri, model_name) if model_store_uri else arguments
    run_id = start_retraining_run(
        pipeline_name, experiment, arguments, f"{model_name}-retrain", namespace=namespace, host=kfp_host
    )
    state.record_run(approved[0].id if approved else None)
    report_progress(
        f"started retraining run {run_id}"
        + (f" for approved request {approved[0].id}" if approved else "")
        + (f" (sites {', '.join(sites)})" if sites else "")
    )
    return run_id
