"""A monitoring run's results as metrics: flat values for the KFP Metrics artifact, and gauges for a Pushgateway.

Both carry the same facts: per-sensor drift statistics (PSI, KS statistic, normalized Wasserstein distance, drifted
or not), the share of sensors drifted, prediction drift, the anomaly model's alarm rate (plant health), performance
on labels that arrived, each site's drift and performance (a fleet), and the decision. The gauges are named
``shopfloor_monitor_*`` and labelled ``model_name`` (plus ``sensor``, ``site``, ``metric`` or ``decision`` where
there is one per sensor, site, metric or decision), so the Grafana dashboard
(``infra/grafana/shopfloor-dashboard.json``) plots them next to the model server's own metrics.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, get_args, get_type_hints

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from shopfloor.components.monitor.policy import Decision
from shopfloor.components.monitor.sites import site_metrics

if TYPE_CHECKING:
    from shopfloor.components.monitor.monitor import MonitoringRun

__all__ = [
    "DECISIONS",
    "MONITOR_METRICS",
    "PUSH_JOB",
    "PUSHGATEWAY_ENV",
    "monitor_metrics",
    "monitor_registry",
    "publish_monitor_metrics",
    "push_monitor_metrics",
    "pushgateway_url",
]

PUSH_JOB = "shopfloor-monitor"
"""The Pushgateway job monitoring runs push under (grouped by ``model_name``)."""
PUSHGATEWAY_ENV = "SHOPFLOOR_PUSHGATEWAY_URL"
"""The environment variable naming the Pushgateway when the config names none."""
DECISIONS: tuple[str, ...] = get_args(get_type_hints(Decision)["action"])
"""Every decision a monitoring run can take (one ``shopfloor_monitor_decision`` series each)."""

MONITOR_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "shopfloor_monitor_sensor_psi": ("Population stability index of a sensor against its training data", ("sensor",)),
    "shopfloor_monitor_sensor_ks_statistic": ("KS statistic of a sensor against its training profile", ("sensor",)),
    "shopfloor_monitor_sensor_wasserstein_normalized": (
        "Wasserstein distance of a sensor to its training profile, in training standard deviations",
        ("sensor",),
    ),
    "shopfloor_monitor_sensor_drifted": ("1 when the sensor drifted in the last monitoring run, 0 else", ("sensor",)),
    "shopfloor_monitor_share_drifted": ("Share of the model's sensors that drifted", ()),
    "shopfloor_monitor_drifted": ("1 when enough sensors drifted to call it drift (with enough data), 0 else", ()),
    "shopfloor_monitor_enough_data": ("1 when the window had enough readings to judge drift, 0 else", ()),
    "shopfloor_monitor_readings": ("Readings compared with the training profile", ()),
    "shopfloor_monitor_prediction_psi": ("Population stability index of the served scores against the test scores", ()),
    "shopfloor_monitor_alarm_rate": ("Anomaly models: share of monitored windows in alarm (plant health)", ()),
    "shopfloor_monitor_alarm_rate_limit": ("Anomaly models: the alarm rate above which the plant is abnormal", ()),
    "shopfloor_monitor_labelled_windows": ("Served windows whose labels arrived and were joined", ()),
    "shopfloor_monitor_performance": ("A test metric (roc_auc, pr_auc, f1, recall) on the arrived labels", ("metric",)),
    "shopfloor_monitor_performance_degraded": ("1 when a metric on the labels fell by more than allowed, 0 else", ()),
    "shopfloor_monitor_site_share_drifted": ("Share of a site's own sensors that drifted", ("site",)),
    "shopfloor_monitor_site_drifted": ("1 when the site drifted against its own training readings, 0 else", ("site",)),
    "shopfloor_monitor_site_readings": ("Readings of a site compared with its own training profile", ("site",)),
    "shopfloor_monitor_site_performance": (
        "A test metric (roc_auc, pr_auc, f1, recall) on the labels of a site endpoint's windows",
        ("site", "metric"),
    ),
    "shopfloor_monitor_site_performance_degraded": (
        "1 when a site's metric on its labels fell by more than allowed against its own test metric, 0 else",
        ("site",),
    ),
    "shopfloor_monitor_decision": ("1 for the decision the last monitoring run took, 0 for the others", ("decision",)),
    "shopfloor_monitor_last_run_timestamp_seconds": ("When the last monitoring run finished", ()),
}
"""Every gauge a monitoring run pushes: its help text and its labels besides ``model_name``."""

_LOGGER = logging.getLogger("shopfloor")


def _finite(values: dict[str, float]) -> dict[str, float]:
    """The values that are numbers (NaN and infinities dropped: undefined statistics are left out)."""
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}


def monitor_metrics(checked: MonitoringRun) -> dict[str, float]:
    """A run's results as flat metric names and values, for the KFP Metrics artifact; undefined values left out."""
    result, drift = checked.result, checked.result.drift
    values: dict[str, float] = {
        "readings": drift.rows,
        "requests": checked.current.requests,
        "enough_data": float(drift.enough_data),
        "share_drifted": round(drift.share_drifted, 4),
        "sensors_drifted": len(drift.drifted),
        "drifted": float(result.drifted),
    }
    for name, feature in drift.features.items():
        values[f"psi_{name}"] = round(feature.psi, 6)
        values[f"ks_{name}"] = round(feature.ks_statistic, 6)
        values[f"wasserstein_{name}"] = round(feature.wasserstein_normalized, 6)
        values[f"drifted_{name}"] = float(feature.drifted)
    if result.predictions is not None:
        values["prediction_psi"] = round(result.predictions.psi, 6)
    if result.health is not None:
        values["alarm_rate"] = round(result.health.alarm_rate, 6)
        values["alarm_rate_limit"] = result.health.max_alarm_rate
        values["plant_abnormal"] = float(result.health.abnormal)
    if result.performance is not None:
        values["labelled_windows"] = result.performance.labelled
        values["performance_degraded"] = float(result.performance.degraded)
        for metric, value in sorted(result.performance.metrics.items()):
            values[f"{metric}_on_labels"] = round(value, 6)
    values.update(site_metrics(result.sites, result.site_performance))  # site/<site>/...: a batch or site endpoints
    for action in DECISIONS:
        values[f"decision_{action.replace('-', '_')}"] = float(checked.decision.action == action)
    return _finite(values)


def monitor_registry(checked: MonitoringRun, model_name: str) -> CollectorRegistry:
    """A registry of its own holding the run's ``shopfloor_monitor_*`` gauges (nothing registered globally)."""
    registry = CollectorRegistry(auto_describe=False)
    gauges = {
        name: Gauge(name, text, ["model_name", *labels], registry=registry)
        for name, (text, labels) in MONITOR_METRICS.items()
    }

    def put(name: str, value: float, *labels: str) -> None:
        if math.isfinite(value):
            gauges[name].labels(model_name, *labels).set(value)

    result, drift = checked.result, checked.result.drift
    for sensor, feature in drift.features.items():
        put("shopfloor_monitor_sensor_psi", feature.psi, sensor)
        put("shopfloor_monitor_sensor_ks_statistic", feature.ks_statistic, sensor)
        put("shopfloor_monitor_sensor_wasserstein_normalized", feature.wasserstein_normalized, sensor)
        put("shopfloor_monitor_sensor_drifted", float(feature.drifted), sensor)
    put("shopfloor_monitor_share_drifted", drift.share_drifted)
    put("shopfloor_monitor_drifted", float(result.drifted))
    put("shopfloor_monitor_enough_data", float(drift.enough_data))
    put("shopfloor_monitor_readings", float(drift.rows))
    if result.predictions is not None:
        put("shopfloor_monitor_prediction_psi", result.predictions.psi)
    if result.health is not None:
        put("shopfloor_monitor_alarm_rate", result.health.alarm_rate)
        put("shopfloor_monitor_alarm_rate_limit", result.health.max_alarm_rate)
    if result.performance is not None:
        put("shopfloor_monitor_labelled_windows", float(result.performance.labelled))
        put("shopfloor_monitor_performance_degraded", float(result.performance.degraded))
        for metric, value in sorted(result.performance.metrics.items()):
            put("shopfloor_monitor_performance", value, metric)
    _put_sites(put, checked)
    for action in DECISIONS:
        put("shopfloor_monitor_decision", float(checked.decision.action == action), action)
    put("shopfloor_monitor_last_run_timestamp_seconds", time.time())
    return registry


def _put_sites(put: Callable[..., None], checked: MonitoringRun) -> None:
    """The per-site gauges: each site's drift against its own training readings and performance on its labels."""
    for site, found in sorted(checked.result.sites.items()):
        put("shopfloor_monitor_site_share_drifted", found.report.share_drifted, site)
        put("shopfloor_monitor_site_drifted", float(found.drifted), site)
        put("shopfloor_monitor_site_readings", float(found.report.rows), site)
    for site, measured in sorted(checked.result.site_performance.items()):
        put("shopfloor_monitor_site_performance_degraded", float(measured.degraded), site)
        for metric, value in sorted(measured.metrics.items()):
            put("shopfloor_monitor_site_performance", value, site, metric)


def push_monitor_metrics(checked: MonitoringRun, model_name: str, url: str) -> None:
    """Push the run's gauges to the Pushgateway at ``url`` (job ``shopfloor-monitor``, grouped by model name)."""
    push_to_gateway(
        url,
        job=PUSH_JOB,
        grouping_key={"model_name": model_name},
        registry=monitor_registry(checked, model_name),
        timeout=10,
    )


def pushgateway_url(configured: str = "") -> str:
    """The Pushgateway to push to: the configured URL, else ``$SHOPFLOOR_PUSHGATEWAY_URL``, else '' (none)."""
    return configured or os.environ.get(PUSHGATEWAY_ENV, "")


def publish_monitor_metrics(checked: MonitoringRun, model_name: str, configured: str = "") -> bool:
    """Push the run's gauges when a Pushgateway is configured; a failure is one warning line, never an error.

    Returns:
        Whether the metrics were pushed.
    """
    url = pushgateway_url(configured)
    if not url:
        return False
    try:
        push_monitor_metrics(checked, model_name, url)
    except Exception as error:  # the monitoring run stands; the dashboard misses one point
        _LOGGER.warning("monitoring metrics not pushed to %s: %s", url, f"{type(error).__name__}: {error}")
        return False
    return True
