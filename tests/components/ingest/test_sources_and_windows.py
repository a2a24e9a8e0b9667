"""Data locations beyond a file: a plant without events, a time window, and source blocks as pipeline parameters."""

from __future__ import annotations

from pathlib import Path

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
        "source": "none"
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
