"""Ingest keeps each asset's type (pump, valve, compressor...) when the plant's table has one; optional otherwise."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from shopfloor.common.config import DataConfig, validated
from shopfloor.common.errors import ConfigError, DataValidationError
from shopfloor.common.sources import SqlSource
from shopfloor.components.ingest.ingest import ingest
from shopfloor.components.label.label import sensor_features
from shopfloor.demo.plant import SENSOR_COLUMNS

SENSORS = """timestamp,asset_id,kind,temp
2026-01-01T00:00:00Z,A,pump,1.0
2026-01-01T01:00:00Z,A,,1.1
2026-01-01T00:00:00Z,B,,2.0
2026-01-01T01:00:00Z,B,,2.1
2026-01-01T00:00:00Z,C,valve,3.0
"""


def _ingest(tmp_path: Path, sensors: str, columns: dict) -> pd.DataFrame:
    """Ingest a sensor table (no events) with this ``sensor_columns`` mapping; the canonical sensor table."""
    (tmp_path / "sensors.csv").write_text(sensors)
    config = validated(DataConfig, {"sensor_columns": columns, "events": None}, "plant.yaml")
    return ingest(str(tmp_path / "sensors.csv"), None, config).sensors


def test_the_demo_plant_keeps_each_assets_type_as_the_plant_wrote_it(small_demo_data: Path, small_ingested) -> None:
    raw = pd.read_csv(small_demo_data / "sensors.csv").groupby("asset_id")["asset_type"].first()
    sensors = small_ingested.sensors
    assert (sensors.groupby("asset_id")["asset_type"].nunique() == 1).all()
    assert sensors.groupby("asset_id")["asset_type"].first().to_dict() == raw.to_dict()
    assert small_ingested.profile["asset_types"] == {"compressor": 2, "pump": 2, "valve": 2}
    assert small_ingested.features == list(SENSOR_COLUMNS)  # the type is an id, never a sensor
    assert "asset_type" not in sensor_features(list(sensors.columns), None)  # nor for the label step's fallback


def test_a_table_without_the_default_type_column_ingests_as_before(small_demo_data: Path, tmp_path: Path) -> None:
    pd.read_csv(small_demo_data / "sensors.csv").drop(columns=["asset_type"]).to_csv(tmp_path / "s.csv", index=False)
    result = ingest(str(tmp_path / "s.csv"), str(small_demo_data / "events.csv"), DataConfig())
    assert "asset_type" not in result.sensors.columns and "asset_types" not in result.profile
    off = DataConfig(sensor_columns={"asset_type": ""})  # '' (a pipeline parameter's null): not read even if there
    plain = ingest(str(small_demo_data / "sensors.csv"), str(small_demo_data / "events.csv"), off)
    assert "asset_type" not in plain.sensors.columns and plain.features == list(SENSOR_COLUMNS)


def test_empty_cells_are_unknown_and_an_asset_takes_its_one_named_type(tmp_path: Path) -> None:
    sensors = _ingest(tmp_path, SENSORS, {"asset_type": "kind", "site": None})
    assert sensors.groupby("asset_id")["asset_type"].first().to_dict() == {"A": "pump", "B": "", "C": "valve"}
    assert "kind" not in sensors.columns


def test_a_named_type_column_the_table_lacks_is_one_line_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError) as info:
        _ingest(tmp_path, SENSORS, {"asset_type": "machine_kind", "site": None})
    message = str(info.value)
    assert "\n" not in message and "sensor_columns.asset_type" in message and "machine_kind" in message


def test_an_asset_with_two_types_is_refused_naming_it(tmp_path: Path) -> None:
    mixed = SENSORS.replace("2026-01-01T01:00:00Z,A,,1.1", "2026-01-01T01:00:00Z,A,valve,1.1")
    with pytest.raises(DataValidationError, match=r"asset 'A' has 2 types \(pump, valve\)") as info:
        _ingest(tmp_path, mixed, {"asset_type": "kind", "site": None})
    assert "sensor_columns.asset_type (kind)" in str(info.value)


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        ({"asset_type": "asset_id"}, "already the asset_id column"),
        ({"asset_type": "site"}, "already the site column"),
        ({"features": ["temp"], "asset_type": "temp"}, "listed among the features"),
    ],
)
def test_a_type_column_that_is_another_column_is_a_config_error(columns: dict, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        validated(DataConfig, {"sensor_columns": columns}, "plant.yaml")
    message = str(info.value)
    assert "\n" not in message and "sensor_columns.asset_type" in message and problem in message


def test_resampling_keeps_each_assets_type(tmp_path: Path) -> None:
    (tmp_path / "sensors.csv").write_text(SENSORS)
    config = validated(
        DataConfig,
        {"sensor_columns": {"asset_type": "kind", "site": None}, "events": None, "resample": {"every": "30min"}},
        "plant.yaml",
    )
    sensors = ingest(str(tmp_path / "sensors.csv"), None, config).sensors
    assert len(sensors[sensors["asset_id"] == "A"]) == 3  # 00:00, 00:30 (no reading), 01:00
    assert sensors.groupby("asset_id")["asset_type"].unique().map(list).to_dict() == {
        "A": ["pump"],
        "B": [""],
        "C": ["valve"],
    }


def test_a_sql_table_passes_the_type_through(small_demo_data: Path, tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'plant.db'}"
    engine = sa.create_engine(url)
    pd.read_csv(small_demo_data / "sensors.csv").to_sql("readings", engine, index=False)
    engine.dispose()
    monkeypatch.setenv("PLANT_DB_URL", url)
    config = DataConfig(sensors=SqlSource(url_env="PLANT_DB_URL", table="readings"), events=None)
    sensors = ingest(config.sensors, None, config).sensors
    assert sorted(sensors.groupby("asset_id")["asset_type"].first().unique()) == ["compressor", "pump", "valve"]
