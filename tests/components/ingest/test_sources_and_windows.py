"""Data locations beyond a file: a plant without events, a time window, and source blocks as pipeline parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopfloor.common.config import DataConfig
from shopfloor.common.errors import ConfigError, DataValidationError
from shopfloor.common.sources import SqlSource, TimeRange, is_live, location_parameter, parse_location
from shopfloor.components.ingest.ingest import ingest, write_outputs
from tests.components.ingest.test_ingest import GOOD_EVENTS, GOOD_SENSORS


@pytest.fixture
def tables(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "sensors.csv").write_text(GOOD_SENSORS)
    (tmp_path / "events.csv").write_text(GOOD_EVENTS)
    return str(tmp_path / "sensors.csv"), str(tmp_path / "events.csv")


@pytest.mark.parametrize("none", [None, ""])
def test_a_plant_without_events_says_so_in_the_config(tables, tmp_path: Path, none) -> None:
    # before: `events: ""` was "file not found" and a header-only file "no data rows": a dummy event was needed
    config = DataConfig.model_validate({"events": none})
    assert config.events is None
    result = ingest(tables[0], config.events, config)
    assert result.events.empty and list(result.events.columns) == ["timestamp", "asset_id", "event_type"]
    assert result.profile["events"] == {"rows": 0, "by_type": {}} and result.profile["sources"]["events"] == {
        "uri": "(none: the plant records no events)",
        "sha256": "",
        "bytes": 0,
    }
    write_outputs(result, *(str(tmp_path / "out" / name) for name in ("s.parquet", "e.parquet", "p.json")))


def test_a_time_range_keeps_the_readings_and_events_inside_it(tables) -> None:
    window = TimeRange(since="2026-01-01T00:30:00Z", until="2026-01-01T02:00:00Z")
    result = ingest(*tables, DataConfig(time_range=window))
    assert result.sensors["timestamp"].dt.hour.tolist() == [1, 1]
    assert result.events["timestamp"].tolist() == sorted(result.events["timestamp"].tolist())
    assert len(result.events) == 2  # 00:30 is inclusive, 01:00 inside


def test_the_last_days_of_an_old_table_are_empty_in_one_line(tables) -> None:
    with pytest.raises(DataValidationError, match=r"time_range: no readings in the time range \[20\d\d-.*, \.\.\.\)"):
        ingest(*tables, DataConfig(time_range=TimeRange(last_days=7)))


def test_a_time_range_is_one_way_or_the_other() -> None:
    with pytest.raises(ValueError, match="last_days or since/until"):
        TimeRange(since="2026-01-01T00:00:00Z", last_days=3)
    assert TimeRange.model_validate({"since": "", "until": "", "last_days": ""}).is_open  # as KFP carries nulls


def test_a_source_block_travels_as_one_string_parameter() -> None:
    block = SqlSource(url_env="PLANT_DB_URL", table="readings")
    text = location_parameter(block)
    assert parse_location(text, "sensors_uri") == block and is_live(block)
    assert "PLANT_DB_URL" in text and "postgres" not in text  # the variable's name travels, never its value
    assert parse_location("s3://plant/sensors.csv", "sensors_uri") == "s3://plant/sensors.csv"
    assert parse_location("", "events_uri") is None and location_parameter(None) == ""
    with pytest.raises(ConfigError, match=r"^pipeline parameter: sensors_uri: .*exactly one of table and query"):
        parse_location('{"kind": "sql", "url_env": "X"}', "sensors_uri")
    with pytest.raises(ConfigError, match="sensors_uri: .*tag 'ftp'"):
        parse_location('{"kind": "ftp"}', "sensors_uri")


SINGLE_SERIES = """time,temp,vib
2026-01-01T00:00:00Z,1.0,0.1
2026-01-01T01:00:00Z,1.1,0.2
2026-01-01T02:00:00Z,1.3,
"""


def test_one_machines_series_needs_no_asset_column(tmp_path: Path) -> None:
    # before: `asset_id: null` was "input should be a valid string", leaving it out "column 'asset_id' not found"
    (tmp_path / "s.csv").write_text(SINGLE_SERIES)
    (tmp_path / "e.csv").write_text("time,what\n2026-01-01T01:00:00Z,failure\n")
    config = DataConfig.model_validate(
        {
            "sensor_columns": {"timestamp": "time", "asset_id": None, "site": None},
            "event_columns": {"timestamp": "time", "asset_id": "", "event_type": "what"},
        }
    )
    result = ingest(str(tmp_path / "s.csv"), str(tmp_path / "e.csv"), config)
    assert result.features == ["temp", "vib"] and set(result.sensors["asset_id"]) == {"asset"}
    assert result.events[["asset_id", "event_type"]].values.tolist() == [["asset", "failure"]]
    assert result.profile["assets"] == 1


def test_events_without_an_asset_column_need_a_single_machine(tables) -> None:
    config = DataConfig.model_validate({"event_columns": {"asset_id": None}})
    with pytest.raises(DataValidationError, match="event_columns.asset_id: no asset column, but the sensor data has 2"):
        ingest(*tables, config)


CYCLES = """unit,cycle,s1,s2
1,1,518.67,641.82
1,2,518.67,642.15
1,3,518.67,642.35
2,1,518.67,642.10
2,2,518.67,642.40
"""


def test_a_cycle_index_is_time_in_steps(tmp_path: Path) -> None:
    # before: cycles had to become made-up hourly timestamps
    (tmp_path / "s.csv").write_text(CYCLES)
    (tmp_path / "e.csv").write_text("unit,cycle\n1,3\n2,2\n")
    columns = {"timestamp": "cycle", "time_unit": "index", "asset_id": "unit", "site": None}
    config = DataConfig.model_validate(
        {"sensor_columns": columns, "event_columns": {"timestamp": "cycle", "asset_id": "unit", "event_type": None}}
    )
    result = ingest(str(tmp_path / "s.csv"), str(tmp_path / "e.csv"), config)
    steps = (result.sensors["timestamp"] - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(hours=1)
    assert steps.tolist() == [1, 2, 3, 1, 2] and result.sensors["asset_id"].tolist() == ["1", "1", "1", "2", "2"]
    assert result.events["event_type"].tolist() == ["failure", "failure"]
    (tmp_path / "bad.csv").write_text("unit,cycle,s1\n1,1.5,3.0\n")
    with pytest.raises(DataValidationError, match=r"row 1: '1.5' is not a step number"):
        ingest(str(tmp_path / "bad.csv"), None, config)


IRREGULAR = """timestamp,asset_id,temp
2026-01-01T00:05:00Z,A,1.0
2026-01-01T00:50:00Z,A,3.0
2026-01-01T01:10:00Z,A,5.0
2026-01-01T03:59:00Z,A,7.0
2026-01-01T00:20:00Z,B,2.0
"""


@pytest.mark.parametrize(("rule", "first_hour"), [("mean", 2.0), ("last", 3.0), ("max", 3.0)])
def test_irregular_readings_are_resampled_by_the_stated_rule(tmp_path: Path, rule: str, first_hour: float) -> None:
    (tmp_path / "s.csv").write_text(IRREGULAR)
    config = DataConfig.model_validate(
        {"sensor_columns": {"site": None}, "resample": {"every": "1h", "rule": rule}, "events": None}
    )
    result = ingest(str(tmp_path / "s.csv"), None, config)
    a = result.sensors[result.sensors["asset_id"] == "A"]
    assert a["timestamp"].dt.strftime("%H:%M").tolist() == ["00:00", "01:00", "02:00", "03:00"]
    assert a["temp"].iloc[0] == first_hour and a["temp"].iloc[1] == 5.0
    assert np.isnan(a["temp"].iloc[2]), "an hour without readings is a missing reading, not an invented one"
    assert result.sensors[result.sensors["asset_id"] == "B"]["temp"].tolist() == [2.0]


@pytest.mark.parametrize("every", ["soon", "0h", "-1h"])
def test_a_resampling_step_that_is_no_step_is_refused_at_config_load(every: str) -> None:
    from shopfloor.common.config import validated

    with pytest.raises(ConfigError, match="resample.every"):
        validated(DataConfig, {"resample": {"every": every}}, "plant.yaml")
