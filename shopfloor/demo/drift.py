"""The drift demo: an ageing plant replayed against the served model, detected, approved, retrained.

Later months of the same plant are generated with wear injected (bearings vibrate more, machines run hotter,
heat exchangers foul), sent window by window to the served model over HTTP (which logs every payload), and
the monitor then compares those logs with the training data.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from shopfloor.common.storage import atomic_write_bytes
from shopfloor.demo.plant import PlantDataSpec, generate_plant_data

__all__ = ["AGEING", "replay_windows", "sensor_windows", "write_aged_plant"]

AGEING = {"vibration_mm_s": 1.6, "temperature_c": 1.15, "differential_pressure_bar": 1.8}


def write_aged_plant(folder: Path, days: int = 60, seed: int = 7) -> dict[str, Path]:
    """Write the same plant's next months (same assets: same seed), with wear multiplied into three sensors."""
    data = generate_plant_data(PlantDataSpec(seed=seed, days=days, start="2026-04-01T00:00:00Z"))
    sensors = data.sensors.copy()
    for column, factor in AGEING.items():
        sensors[column] = sensors[column] * factor
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"sensors": folder / "sensors.csv", "events": folder / "events.csv"}
    atomic_write_bytes(paths["sensors"], sensors.to_csv(index=False, float_format="%.3f").encode())
    atomic_write_bytes(paths["events"], data.events.to_csv(index=False).encode())
    return paths


def sensor_windows(sensors: pd.DataFrame, features: list[str], window: int, every: int = 6) -> np.ndarray:
    """Windows of ``window`` readings in the model's feature order, one every ``every`` readings per asset."""
    windows = []
    for _, readings in sensors.sort_values(["asset_id", "timestamp"]).groupby("asset_id"):
        values = readings[features].to_numpy(dtype=np.float32)
        for end in range(window, len(values) + 1, every):
            windows.append(values[end - window : end])
    return np.asarray(windows, dtype=np.float32)


def replay_windows(url: str, model_name: str, windows: np.ndarray, batch: int = 16) -> int:
    """POST the windows to the served model's V1 predict route in batches; returns how many requests succeeded."""
    answered = 0
    for start in range(0, len(windows), batch):
        chunk = windows[start : start + batch]
        body = {"instances": np.where(np.isnan(chunk), np.array(None), chunk).tolist()}
        request = urllib.request.Request(
            f"{url}/v1/models/{model_name}:predict",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answered += response.status == 200
    return answered
