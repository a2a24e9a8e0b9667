"""Sensor labelling: an ingested sensor table -> windows labelled the way the model family learns from them.

The step is the same for every family that reads windows: it reads the ingest step's tables, asks the family to
cut and label the windows (failure within a horizon, abnormal operation, or what a plugin family needs) and
writes them in the ``contracts.windows`` layout. Image labelling (manifests, expert exports, operator feedback)
is the label-images step.
"""

from __future__ import annotations

from shopfloor.common.config import DataConfig, validated
from shopfloor.common.fleet import apply_site_readings, fleet_schema
from shopfloor.common.progress import report_progress
from shopfloor.contracts.windows import write_windows
from shopfloor.families.base import SensorLabels
from shopfloor.families.registry import family

__all__ = ["run_label_sensors", "sensor_features"]

_ID_COLUMNS = ("timestamp", "asset_id", "site", "asset_type")


def sensor_features(columns: list[str], declared: list[str] | None) -> list[str]:
    """The feature columns of an ingested sensor table: as ingest declared them, else all but the id columns."""
    return list(declared) if declared else [c for c in columns if c not in _ID_COLUMNS]


def run_label_sensors(
    family_key: str,
    sensors_path: str,
    events_path: str,
    declared_features: list[str] | None,
    data_schema: dict,
    labeling: dict,
    windows_path: str,
) -> SensorLabels:
    """Label the ingested readings for the family and write the windows folder; returns them with their summary.

    A fleet's overlays (``data_schema["sites"]``) apply first: each site's readings in the fleet's units, the
    sensors it lacks blanked; an overlay for a site the data lacks is an error. The family labels per site.
    """
    import pandas as pd

    schema, sites = fleet_schema(data_schema)
    failure_values = validated(DataConfig, schema, "pipeline parameter data_schema").failure_values
    sensors = pd.read_parquet(sensors_path)
    features = sensor_features(list(sensors.columns), declared_features)
    sensors = apply_site_readings(sensors, sites, features, "pipeline parameter data_schema")
    fleet = {"sites": sites} if sites else {}  # a family without per-site labelling never sees the keyword
    labelled = family(family_key).label_sensors(
        sensors, pd.read_parquet(events_path), features, failure_values, labeling, **fleet
    )
    write_windows(labelled.windows, windows_path)
    report_progress(labelled.summary)
    return labelled
