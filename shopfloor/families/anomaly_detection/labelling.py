"""Anomaly labeling: sensor readings + anomaly events -> windows marked normal or abnormal, split in time order.

An autoencoder learns normal operation only, so labels are needed just to keep abnormal windows out of its
training data, to pick the alarm threshold by F1 and to measure precision/recall. A reading is abnormal from
``before_hours`` before an event of an anomaly type (a failure: the degradation leading to it) until
``after_hours`` after it; a window is abnormal if any of its readings is. Each asset's readings are cut in time
order into train, validation and test, so a single machine's history is enough and no future leaks into
training.

The output is the same ``windows`` Dataset as predictive maintenance's (``shopfloor.contracts.windows``), with
``failure`` meaning "abnormal window" (1) and ``rul`` unknown (-1) everywhere; ``labels.json`` says
``"target": "anomaly"``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopfloor.common.errors import DataValidationError
from shopfloor.contracts.windows import SPLITS, LabelledWindows
from shopfloor.families.anomaly_detection.config import AnomalyLabelingConfig
from shopfloor.families.shared import class_balance, window_stack

__all__ = ["abnormal_readings", "label_anomaly_windows", "time_split"]

_HOUR_NS = 3_600_000_000_000


def abnormal_readings(times: np.ndarray, events: np.ndarray, config: AnomalyLabelingConfig) -> np.ndarray:
    """Per reading (ns times, sorted): True if it lies in [event - before_hours, event + after_hours] of any event."""
    if events.size == 0:
        return np.zeros(times.size, dtype=bool)
    events = np.sort(events)
    next_event = events[np.minimum(np.searchsorted(events, times, side="left"), events.size - 1)]
    previous_event = events[np.maximum(np.searchsorted(events, times, side="right") - 1, 0)]
    before = (next_event >= times) & (next_event - times <= config.before_hours * _HOUR_NS)
    after = (previous_event <= times) & (times - previous_event <= config.after_hours * _HOUR_NS)
    return before | after


def time_split(n_windows: int, config: AnomalyLabelingConfig) -> np.ndarray:
    """Split codes (0 train, 1 validation, 2 test) for one asset's windows in time order."""
    n_test = int(round(config.test_fraction * n_windows))
    n_validation = int(round(config.validation_fraction * n_windows))
    split = np.zeros(n_windows, dtype=np.int8)
    split[n_windows - n_test - n_validation : n_windows - n_test] = 1
    split[n_windows - n_test :] = 2
    return split


def label_anomaly_windows(
    sensors: pd.DataFrame,
    events: pd.DataFrame,
    features: list[str],
    anomaly_values: list[str],
    config: AnomalyLabelingConfig,
) -> LabelledWindows:
    """Build windows labelled normal/abnormal from canonical sensor and event tables (as written by ingest)."""
    if config.validation_fraction + config.test_fraction >= 0.8:
        raise DataValidationError(
            "labeling",
            f"validation_fraction + test_fraction = {config.validation_fraction + config.test_fraction:g}",
            field="labeling.test_fraction",
            expected="a sum below 0.8, so the autoencoder has normal operation to learn from",
        )
    marked = events[events["event_type"].isin(anomaly_values)]
    event_times = {
        a: g["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64) for a, g in marked.groupby("asset_id")
    }
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("x", "failure", "split", "asset", "end_time")}
    for asset, group in sensors.groupby("asset_id", sort=True):
        times = group["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        if times.size < config.window:
            continue
        abnormal = abnormal_readings(times, event_times.get(asset, np.array([], dtype=np.int64)), config)
        ends = np.arange(config.window - 1, times.size, config.stride)
        starts = ends - (config.window - 1)
        abnormal_so_far = np.concatenate([[0], np.cumsum(abnormal)])
        window_abnormal = (abnormal_so_far[ends + 1] - abnormal_so_far[starts]) > 0
        values = group[features].to_numpy(dtype=np.float32)
        parts["x"].append(window_stack(values, starts, config.window))
        parts["failure"].append(window_abnormal.astype(np.int8))
        parts["split"].append(time_split(ends.size, config))
        parts["asset"].append(np.full(ends.size, asset, dtype=object))
        parts["end_time"].append(times[ends])
    if not parts["x"]:
        raise DataValidationError(
            "sensors",
            "no asset has enough readings for one window",
            field="labeling.window",
            expected=f"at least {config.window} readings per asset",
        )
    stacked = {k: np.concatenate(v) for k, v in parts.items()}
    normal_train = int(((stacked["split"] == 0) & (stacked["failure"] == 0)).sum())
    if normal_train < 2:
        raise DataValidationError(
            "sensors",
            f"only {normal_train} normal window(s) in the training part",
            field="labeling",
            expected="normal operation to learn from: more readings, a shorter window or a smaller before_hours",
        )
    info = {
        "target": "anomaly",
        "features": features,
        "window": config.window,
        "stride": config.stride,
        "anomaly_values": anomaly_values,
        "before_hours": config.before_hours,
        "after_hours": config.after_hours,
        "split": "time order per asset",
        "assets": {name: sorted(set(stacked["asset"][stacked["split"] == i])) for i, name in enumerate(SPLITS)},
        "class_balance": class_balance(stacked["failure"], stacked["split"]),
    }
    return LabelledWindows(
        x=stacked["x"],
        failure=stacked["failure"],
        rul=np.full(stacked["failure"].size, -1.0, dtype=np.float32),
        split=stacked["split"],
        asset=stacked["asset"].astype(str),
        end_time=stacked["end_time"],
        features=features,
        info=info,
    )
