"""Real sensor data that a PyPI package ships, laid out as a plant delivers it, for runs on data we never saw.

sktime (test extra) ships ``datasets/data/mitdb/mitdb.csv``: 7,500 samples of an electrocardiogram (the
MIT-BIH Arrhythmia Database, 360 Hz, millivolts) with one labelled abnormal segment. An ECG is a process
sensor like any other to an autoencoder: a periodic signal whose normal shape can be learned. This module
writes it as ``sensors.csv`` + ``events.csv`` (one event per abnormal sample) + ``config.yaml``, so it runs
through ``shopfloor run anomaly-detection --data DIR --config DIR/config.yaml`` alone, like a plant's data.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from shopfloor.common.errors import DataValidationError

__all__ = ["ECG_CONFIG", "ecg_record", "write_ecg_plant_layout"]

_SAMPLE_NS = round(1e9 / 360)  # 360 Hz
ECG_CONFIG = """scenario: anomaly-detection
model_name: ecg-anomaly
data:
  sensor_columns: {site: null}
  failure_values: [abnormal]
labeling: {window: 360, stride: 6, before_hours: 0.0, after_hours: 0.0}
model: {epochs: 40, kernel_size: 9, latent_units: 16, batch_size: 32}
hpo: {enabled: false}   # the abnormal segment lies in the held-out part: no anomaly to score a search on
"""


def ecg_record() -> pd.DataFrame:
    """The ECG as shipped by sktime: columns ``data`` (mV) and ``label`` (1 = abnormal sample)."""
    spec = importlib.util.find_spec("sktime")
    folders = spec.submodule_search_locations if spec else None
    path = Path(folders[0]) / "datasets" / "data" / "mitdb" / "mitdb.csv" if folders else None
    if path is None or not path.is_file():
        raise DataValidationError(
            "sktime", "the ECG record is not installed", expected="pip install 'shopfloor[test]' (sktime ships it)"
        )
    return pd.read_csv(path)


def write_ecg_plant_layout(folder: Path, start: str = "2026-01-01T00:00:00Z") -> dict[str, Path]:
    """Write the ECG as a one-asset plant: sensors.csv, events.csv and config.yaml; return their paths."""
    record = ecg_record()
    times = pd.Timestamp(start) + pd.to_timedelta(record.index * _SAMPLE_NS, unit="ns")
    stamps = times.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    sensors = pd.DataFrame({"timestamp": stamps, "asset_id": "mitdb-ecg", "ecg_mv": record["data"]})
    abnormal = record["label"].to_numpy() == 1
    events = pd.DataFrame({"timestamp": stamps[abnormal], "asset_id": "mitdb-ecg", "event_type": "abnormal"})
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"sensors": folder / "sensors.csv", "events": folder / "events.csv", "config": folder / "config.yaml"}
    sensors.to_csv(paths["sensors"], index=False)
    events.to_csv(paths["events"], index=False)
    paths["config"].write_text(ECG_CONFIG)
    return paths
