"""Plant data in the shapes real data sets come in, each with the config that runs it and nothing else.

Three shapes a plant engineer meets that the demo plant (timestamps, assets, an event log) does not show:

- ``write_cycle_fleet``: a fleet of machines run to failure, time counted in operating cycles (as in run-to-failure
  data sets of engines or bearings): no timestamps, one failure at each unit's last cycle, no event type column.
- ``write_labelled_readings``: independent readings of one machine, numbered, with a label column marking the
  anomalies: the same table is the sensors and the events.
- ``write_single_series``: one machine's hourly readings, no asset column and no events at all.

Each writer returns the paths of its files and of ``config.yaml``; ``shopfloor run SCENARIO --data DIR --config
DIR/config.yaml`` runs it as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["write_cycle_fleet", "write_labelled_readings", "write_single_series"]

CYCLE_FLEET_CONFIG = """scenario: predictive-maintenance
model_name: fleet-cycles
data:
  sensors: cycles.csv
  events: failures.csv
  sensor_columns: {timestamp: cycle, time_unit: index, asset_id: unit, site: null}
  event_columns: {timestamp: cycle, asset_id: unit, event_type: null}   # every row is a failure
labeling: {horizon_hours: 30, window: 20, stride: 4, rul_cap_hours: 120}  # in cycles: time_unit is index
model: {epochs: 8, hidden_units: [32], conv_filters: 16}
hpo: {enabled: false}
"""

LABELLED_READINGS_CONFIG = """scenario: anomaly-detection
model_name: labelled-readings
data:
  sensors: readings.csv
  events: readings.csv              # the same table: its label column marks the anomalies
  sensor_columns: {timestamp: reading, time_unit: index, asset_id: null, site: null, features: [x1, x2, x3, x4]}
  event_columns: {timestamp: reading, asset_id: null, event_type: label}
  failure_values: [anomaly]
labeling: {window: 2, stride: 1, before_hours: 0, after_hours: 0}
model: {epochs: 15, kernel_size: 2, latent_units: 4, batch_size: 64}
hpo: {enabled: false}
"""

SINGLE_SERIES_CONFIG = """scenario: anomaly-detection
model_name: one-pump
data:
  sensors: pump.csv
  events: null                      # the plant records no events: the alarm threshold is a percentile
  sensor_columns: {timestamp: time, asset_id: null, site: null}
model: {epochs: 10}
"""


def _write(folder: Path, tables: dict[str, pd.DataFrame], config: str) -> dict[str, Path]:
    """Write the tables as CSV and the config; return every path by name (``config`` included)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.csv" for name in tables}
    for name, table in tables.items():
        table.to_csv(paths[name], index=False, float_format="%.4f")
    paths["config"] = folder / "config.yaml"
    paths["config"].write_text(config)
    return paths


def write_cycle_fleet(folder: Path, units: int = 40, seed: int = 7) -> dict[str, Path]:
    """Units run to failure, four sensors drifting faster as wear grows; one failure row per unit's last cycle."""
    rng = np.random.default_rng(seed)
    rows, failures = [], []
    for unit in range(1, units + 1):
        life = int(rng.integers(120, 220))
        cycle = np.arange(1, life + 1)
        wear = np.exp((cycle - life) / 25.0)  # near 0 for most of the life, 1 at failure
        base = rng.normal(0, 0.3, size=4)
        for index, sensor in enumerate(("s1", "s2", "s3", "s4")):
            drift = (1.5 + index * 0.5) * wear * (1 if index % 2 == 0 else -1)
            values = 10.0 * (index + 1) + base[index] + drift + rng.normal(0, 0.15, life)
            if index == 0:
                frame = pd.DataFrame({"unit": unit, "cycle": cycle})
            frame[sensor] = values
        rows.append(frame)
        failures.append({"unit": unit, "cycle": life})
    return _write(folder, {"cycles": pd.concat(rows), "failures": pd.DataFrame(failures)}, CYCLE_FLEET_CONFIG)


def write_labelled_readings(folder: Path, readings: int = 6000, seed: int = 7) -> dict[str, Path]:
    """Numbered readings of four correlated sensors; about 2 % break the correlation and are labelled ``anomaly``."""
    rng = np.random.default_rng(seed)
    load = rng.normal(0, 1, readings)
    table = pd.DataFrame({"reading": np.arange(readings)})
    for index in range(4):
        table[f"x{index + 1}"] = (index + 1) * load + rng.normal(0, 0.1, readings)
    anomalous = rng.random(readings) < 0.02
    table.loc[anomalous, "x3"] = -table.loc[anomalous, "x3"] + rng.normal(0, 0.5, int(anomalous.sum()))
    table["label"] = np.where(anomalous, "anomaly", "normal")
    return _write(folder, {"readings": table}, LABELLED_READINGS_CONFIG)


def write_single_series(folder: Path, days: int = 60, seed: int = 7) -> dict[str, Path]:
    """One pump's hourly temperature and pressure, a daily cycle and noise; no asset column, no events."""
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 24)
    daily = np.sin(2 * np.pi * hours / 24)
    table = pd.DataFrame(
        {
            "time": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(hours, unit="h"),
            "temperature_c": 60 + 5 * daily + rng.normal(0, 0.5, hours.size),
            "pressure_bar": 4 + 0.3 * daily + rng.normal(0, 0.05, hours.size),
        }
    )
    table["time"] = table["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return _write(folder, {"pump": table}, SINGLE_SERIES_CONFIG)
