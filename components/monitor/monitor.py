"""Monitoring logic: served payloads against the model's training reference -> drift report -> retrain decision.

The reference travels with the published model (``profile.json``: per-sensor histograms of the training data;
``blessing.json``: a sample of test-split scores). The current window is read from the payload logs of that model
version: the newest reading of each logged window (consecutive requests overlap, so every reading of every window
would count the same reading many times), and the scores the server returned (failure probabilities, or anomaly
scores). For an anomaly model those scores are also a plant-health signal: when more windows are in alarm than
``max_alarm_rate``, the plant itself looks abnormal, which calls for an inspection, not a retrain.

A fleet model's server also answers each site on its own endpoint, ``<model>-<site>``, logging under that name:
those logs are read too, each site judged on its own (``sites``), and the fleet on all its traffic.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from shopfloor.common.errors import DataValidationError
from shopfloor.common.images import IMAGE_STATISTICS
from shopfloor.common.storage import join_uri, read_json
from shopfloor.components.monitor.drift import (
    DriftThresholds,
    detect_drift,
    prediction_drift,
)
from shopfloor.components.monitor.performance import labelled_scores, measure_performance, read_labels
from shopfloor.components.monitor.records import CurrentWindow, MonitorResult, PlantHealth, Reference
from shopfloor.components.monitor.report import render_monitor_report
from shopfloor.components.monitor.sites import (
    SiteEndpoint,
    drift_thresholds,
    site_endpoints,
    site_performance,
    with_site_drift,
    with_site_performance,
)
from shopfloor.contracts.model_artifact import BLESSING_FILE, MODEL_INFO, PROFILE_FILE
from shopfloor.families.registry import ModelKind, family

if TYPE_CHECKING:
    from shopfloor.components.monitor.policy import Decision

__all__ = [
    "IMAGE_FEATURES",
    "MonitoringRun",
    "batch_window",
    "current_window",
    "load_reference",
    "monitor_window",
    "plant_health",
    "run_monitoring",
    "site_windows",
    "window_dates",
    "with_performance",
    "with_site_readings",
]


IMAGE_FEATURES = list(IMAGE_STATISTICS)  # what an image model's payload log keeps of each photo


def load_reference(version_uri: str) -> Reference:
    """The reference of a published version (``<store>/<model>/<version>``)."""
    blessing = read_json(join_uri(version_uri, BLESSING_FILE))
    info = read_json(join_uri(version_uri, "model", MODEL_INFO))
    try:
        profile = read_json(join_uri(version_uri, PROFILE_FILE))
    except Exception:
        raise DataValidationError(
            version_uri,
            "no training profile next to the model",
            field=PROFILE_FILE,
            expected="a version published with its profile (shopfloor >= 0.1 publish)",
        ) from None
    model_type = info.get("model_type", ModelKind.PREDICTIVE_MAINTENANCE.value)
    chosen = family(model_type)
    threshold = chosen.alarm_threshold(info, blessing)
    images = chosen.data_kind == "images"  # photos drift in lighting, contrast, focus; sensors in readings
    # a profile written before sharpness was profiled is compared on what it has
    image_features = [f for f in IMAGE_FEATURES if f in profile]
    return Reference(
        model_version=blessing["model_version"],
        features=image_features if images else list(info["features"]),
        window=1 if images else info["window"],
        profile_columns={f: profile[f] for f in image_features} if images else profile["sensors"]["columns"],
        reference_scores=np.asarray(blessing.get("reference_scores", []), dtype=float),
        model_type=model_type,
        alarm_threshold=float(threshold),
        test_metrics=blessing.get("metrics") or {c["metric"]: c["value"] for c in blessing["gate"].get("checks", [])},
    )


def current_window(records: list, reference: Reference, source: str = "payload logs") -> CurrentWindow:
    """The current window from payload records of the reference's model version; others are counted, not used."""
    mine = [r for r in records if r.model_version == reference.model_version]
    others: dict[str, int] = {}
    for record in records:
        if record.model_version != reference.model_version:
            others[record.model_version] = others.get(record.model_version, 0) + 1
    if records and not mine:
        found = ", ".join(f"{v} ({n})" for v, n in sorted(others.items()))
        raise DataValidationError(
            source,
            f"no records of model version {reference.model_version}; found {found}",
            field="model_version",
            expected="logs written by the version being monitored",
        )
    rows, scores = [], []
    for record in mine:
        if record.inputs and isinstance(record.inputs[0], dict):  # an image model logs a summary per photo
            record_inputs = [[[photo.get(f, np.nan) for f in reference.features]] for photo in record.inputs]
        else:
            record_inputs = record.inputs
        windows = np.asarray(record_inputs, dtype=float)
        if windows.ndim != 3 or windows.shape[2] != len(reference.features):
            raise DataValidationError(
                source,
                f"record {record.id}: inputs of shape {list(windows.shape)}",
                field="inputs",
                expected=f"[n, window, {len(reference.features)}] readings of "
                f"{', '.join(reference.features)} (the reference profile's features)",
            )
        rows.append(windows[:, -1, :])
        outputs = record.outputs if isinstance(record.outputs, dict) else {}
        scores.extend(outputs.get(family(reference.model_type).score_output, []))
    readings = np.concatenate(rows) if rows else np.empty((0, len(reference.features)))
    return CurrentWindow(
        readings=readings, scores=np.asarray(scores, dtype=float), requests=len(mine), other_versions=others
    )


def plant_health(current: CurrentWindow, reference: Reference, max_alarm_rate: float) -> PlantHealth | None:
    """The anomaly model's alarms over the window as a plant-health signal; ``None`` for other model types."""
    if reference.model_type != ModelKind.ANOMALY_DETECTION or current.scores.size == 0:
        return None
    reference_mean = float(reference.reference_scores.mean()) if reference.reference_scores.size else float("nan")
    return PlantHealth(
        windows=int(current.scores.size),
        alarms=int((current.scores >= reference.alarm_threshold).sum()),
        max_alarm_rate=max_alarm_rate,
        mean_score=float(current.scores.mean()),
        reference_mean_score=reference_mean,
    )


def batch_window(uri: str, reference: Reference) -> CurrentWindow:
    """The current window from a new data batch (a sensor table, CSV/Parquet) instead of payload logs."""
    from shopfloor.common.tables import read_table

    table = read_table(uri)
    missing = [f for f in reference.features if f not in table.columns]
    if missing:
        raise DataValidationError(
            uri,
            f"no column '{missing[0]}'" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""),
            field=missing[0],
            expected=f"the model's sensors: {', '.join(reference.features)}",
        )
    readings = table[reference.features].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    return CurrentWindow(readings=readings, scores=np.empty(0), requests=0, other_versions={})


def monitor_window(
    current: CurrentWindow,
    reference: Reference,
    thresholds: DriftThresholds,
    min_share_drifted: float,
    max_alarm_rate: float = 1.0,
) -> MonitorResult:
    """Drift of the sensors and of the predictions, drift overall once enough sensors drifted, plant health."""
    report = detect_drift(current.readings, reference.features, reference.profile_columns, thresholds)
    predictions = None
    if reference.reference_scores.size and current.scores.size:
        predictions = prediction_drift(reference.reference_scores, current.scores, thresholds)
    drifted = report.enough_data and report.share_drifted >= min_share_drifted
    if not report.enough_data:
        summary = f"{report.rows} readings, fewer than the {thresholds.min_rows} needed to judge drift"
    elif report.drifted:
        summary = (
            f"drift in {len(report.drifted)} of {len(reference.features)} sensors "
            f"({', '.join(report.drifted)}) over {report.rows} readings"
        )
    else:
        summary = f"no drift in {len(reference.features)} sensors over {report.rows} readings"
    if predictions is not None and predictions.drifted:
        summary += f"; predictions drifted (PSI {predictions.psi:.2f})"
    health = plant_health(current, reference, max_alarm_rate)
    if health is not None:
        summary += f"; {health.summary}"
    return MonitorResult(drift=report, predictions=predictions, drifted=drifted, summary=summary, health=health)


def window_dates(days: int, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The inclusive date range of the last ``days`` days of payload logs."""
    end = today or dt.datetime.now(dt.UTC).date()
    return end - dt.timedelta(days=days - 1), end


@dataclasses.dataclass(frozen=True)
class MonitoringRun:
    """One monitoring run: what was compared, what was found, what the policy decided, and the HTML report."""

    reference: Reference
    current: CurrentWindow
    result: MonitorResult
    decision: Decision
    report_html: str


def site_windows(
    served: dict[str, list], endpoints: list[SiteEndpoint], reference: Reference, source: str
) -> dict[str, CurrentWindow]:
    """Each site endpoint's current window from its payload records (``served``: site -> records)."""
    return {e.site: current_window(served.get(e.site, []), reference, f"{source} ({e.model_name})") for e in endpoints}


def with_site_readings(current: CurrentWindow, windows: dict[str, CurrentWindow]) -> CurrentWindow:
    """The fleet's window with every site endpoint's readings and requests added (their scores are not).

    The fleet is all its traffic: a plant that calls only its site's endpoint is still part of the fleet whose
    mixture the fleet model was trained on, and without its readings a fleet served by site endpoints alone would
    never have enough data to judge. The scores stay the fleet endpoint's: a site's own model answers on another
    scale than the fleet model whose test scores are the reference.
    """
    if not windows:
        return current
    readings = np.concatenate([current.readings, *(w.readings for w in windows.values())])
    others = dict(current.other_versions)
    for window in windows.values():
        for version, count in window.other_versions.items():
            others[version] = others.get(version, 0) + count
    requests = current.requests + sum(w.requests for w in windows.values())
    return dataclasses.replace(current, readings=readings, requests=requests, other_versions=others)


def with_performance(
    result: MonitorResult,
    records: list,
    served: dict[str, list],
    endpoints: list[SiteEndpoint],
    labels_uri: str,
    reference: Reference,
    settings,
    config: object | None,
) -> MonitorResult:
    """The result with performance on the labels: the fleet endpoint's windows, and each site endpoint's on its own.

    A label of a site endpoint's request counts for that site only (request ids are unique across endpoints); the
    fleet's unmatched labels are those no endpoint served.
    """
    labels = read_labels(labels_uri)
    score_output = family(reference.model_type).score_output
    by_site = site_performance(served, endpoints, labels, reference, score_output, settings, config)
    site_ids = {r.id for records_ in served.values() for r in records_}
    fleet_labels = labels[~labels["request_id"].isin(site_ids)]
    mine = [r for r in records if r.model_version == reference.model_version]
    y, scores, unmatched = labelled_scores(mine, fleet_labels, score_output)
    found = measure_performance(
        y,
        scores,
        reference.alarm_threshold,
        reference.test_metrics,
        settings.max_performance_drop,
        settings.min_labels,
        unmatched,
    )
    result = dataclasses.replace(result, performance=found, summary=f"{result.summary}; {found.summary}")
    return with_site_performance(result, by_site) if by_site else result


def run_monitoring(
    model_store_uri: str,
    payload_log_uri: str,
    state_uri: str,
    model_name: str,
    settings,
    days: int | None = None,
    labels_uri: str = "",
    batch_uri: str = "",
    config: object | None = None,
) -> MonitoringRun:
    """The served version's recent payloads (and labels) against its reference, then the retrain policy.

    Used by the CLI and the pipeline. Drift or degraded performance once labels arrived is what a retrain answers.
    With ``batch_uri``, a new data batch (a sensor table) is compared instead of the payload logs; with a site
    column, each site is also judged against its own training readings (``config``'s ``sites:`` thresholds).
    Without one, a fleet model's site endpoints (``<model_name>-<site>``, the model's ``fleet.sites``) are read over
    the same days: each site's served readings against its own training readings, and with labels each site's
    performance against its own test metrics; the fleet is judged on all its traffic (``with_site_readings``).
    The decision names the sites that drifted or degraded (none: the fleet as a whole).
    """
    from shopfloor.components.monitor.policy import RetrainState, decide
    from shopfloor.contracts.model_store import ModelStore
    from shopfloor.contracts.payload_log import read_payload_logs

    latest = ModelStore(model_store_uri).require_latest(model_name)
    reference = load_reference(latest.uri)
    start, end = window_dates(days or settings.window_days)
    records = [] if batch_uri else read_payload_logs(payload_log_uri, model_name, start, end)
    current = batch_window(batch_uri, reference) if batch_uri else current_window(records, reference, payload_log_uri)
    endpoints = [] if batch_uri else site_endpoints(latest.uri, model_name, reference.alarm_threshold)
    served = {e.site: read_payload_logs(payload_log_uri, e.model_name, start, end) for e in endpoints}
    by_site = site_windows(served, endpoints, reference, payload_log_uri)
    current = with_site_readings(current, by_site)
    thresholds = drift_thresholds(settings)
    result = monitor_window(current, reference, thresholds, settings.min_share_drifted, settings.max_alarm_rate)
    result = with_site_drift(result, batch_uri, latest.uri, reference, settings, config, by_site)
    if labels_uri:
        result = with_performance(result, records, served, endpoints, labels_uri, reference, settings, config)
    alert = "the anomaly model sees the plant abnormal" if result.health and result.health.abnormal else ""
    degraded = result.performance is not None and result.performance.degraded
    sites = result.flagged_sites
    decision = decide(
        result.drifted or degraded or bool(sites),
        result.drift.enough_data or degraded or bool(sites),  # enough to see the model (or a site) fail is enough
        result.summary,
        settings.retrain,
        RetrainState(state_uri, model_name),
        plant_alert=alert,
        sites=sites,
    )
    html = render_monitor_report(
        result, reference, current, model_name, f"{decision.action}: {decision.reason}", settings.dashboard_url
    )
    return MonitoringRun(reference=reference, current=current, result=result, decision=decision, report_html=html)
