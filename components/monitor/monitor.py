"""Monitoring logic: served payloads against the model's training reference -> drift report -> retrain decision.

The reference travels with the published model (``profile.json``: per-sensor histograms of the training data;
``blessing.json``: a sample of test-split failure probabilities). The current window is read from the payload
logs of that model version: the newest reading of each logged window (consecutive requests overlap, so every
reading of every window would count the same reading many times), and the predictions the server returned.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from components.common.errors import DataValidationError
from components.common.model_artifact import BLESSING_FILE, MODEL_INFO, PROFILE_FILE
from components.common.storage import join_uri, read_json
from components.monitor.drift import DriftReport, DriftThresholds, FeatureDrift, detect_drift, prediction_drift

__all__ = [
    "MonitoringRun",
    "run_monitoring",
    "CurrentWindow",
    "MonitorResult",
    "Reference",
    "current_window",
    "load_reference",
    "monitor_window",
    "window_dates",
]


@dataclasses.dataclass(frozen=True)
class Reference:
    """What a published model version was trained and tested on."""

    model_version: str
    features: list[str]
    window: int
    profile_columns: dict
    reference_scores: np.ndarray


@dataclasses.dataclass(frozen=True)
class CurrentWindow:
    """The newest reading of each logged request, and the probabilities the server answered."""

    readings: np.ndarray
    scores: np.ndarray
    requests: int
    other_versions: dict[str, int]


@dataclasses.dataclass(frozen=True)
class MonitorResult:
    """Drift per sensor, drift of the predictions, and whether that amounts to drift of the model's world."""

    drift: DriftReport
    predictions: FeatureDrift | None
    drifted: bool
    summary: str


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
    return Reference(
        model_version=blessing["model_version"],
        features=list(info["features"]),
        window=info["window"],
        profile_columns=profile["sensors"]["columns"],
        reference_scores=np.asarray(blessing.get("reference_scores", []), dtype=float),
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
        windows = np.asarray(record.inputs, dtype=float)
        if windows.ndim != 3 or windows.shape[2] != len(reference.features):
            raise DataValidationError(
                source,
                f"record {record.id}: inputs of shape {list(windows.shape)}",
                field="inputs",
                expected=f"[n, window, {len(reference.features)}] readings of "
                f"{', '.join(reference.features)} (the reference profile's features)",
            )
        rows.append(windows[:, -1, :])
        scores.extend(record.outputs.get("failure_probability", []) if isinstance(record.outputs, dict) else [])
    readings = np.concatenate(rows) if rows else np.empty((0, len(reference.features)))
    return CurrentWindow(
        readings=readings, scores=np.asarray(scores, dtype=float), requests=len(mine), other_versions=others
    )


def monitor_window(
    current: CurrentWindow, reference: Reference, thresholds: DriftThresholds, min_share_drifted: float
) -> MonitorResult:
    """Drift of the sensors and of the predictions; drift overall once enough sensors drifted."""
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
    return MonitorResult(drift=report, predictions=predictions, drifted=drifted, summary=summary)


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
    decision: object
    report_html: str


def run_monitoring(
    model_store_uri: str,
    payload_log_uri: str,
    state_uri: str,
    model_name: str,
    settings,  # noqa: ANN001
    days: int | None = None,
) -> MonitoringRun:
    """The served version's recent payloads against its reference, then the retrain policy (CLI and pipeline)."""
    from components.monitor.policy import RetrainState, decide
    from components.monitor.report import render_monitor_report
    from serving.payload_log import read_payload_logs

    latest = read_json(join_uri(model_store_uri, model_name, "latest.json"))
    reference = load_reference(latest["uri"])
    start, end = window_dates(days or settings.window_days)
    current = current_window(read_payload_logs(payload_log_uri, model_name, start, end), reference, payload_log_uri)
    thresholds = DriftThresholds(
        psi_threshold=settings.psi_threshold,
        alpha=settings.alpha,
        min_effect=settings.min_effect,
        min_rows=settings.min_rows,
    )
    result = monitor_window(current, reference, thresholds, settings.min_share_drifted)
    decision = decide(
        result.drifted, result.drift.enough_data, result.summary, settings.retrain, RetrainState(state_uri, model_name)
    )
    html = render_monitor_report(result, reference, current, model_name, f"{decision.action}: {decision.reason}")
    return MonitoringRun(reference=reference, current=current, result=result, decision=decision, report_html=html)
