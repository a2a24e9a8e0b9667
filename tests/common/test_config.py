"""Scenario config: defaults, one-line errors naming file and dotted field, data path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfloor.common.config import DataConfig, validated
from shopfloor.common.errors import ConfigError
from shopfloor.common.storage import write_bytes
from shopfloor.families.predictive_maintenance.config import LabelingConfig, PredictiveMaintenanceConfig
from shopfloor.families.scenarios import load_config, parse_config


def _write(tmp_path: Path, text: str, name: str = "plant.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert info.value.source == str(path)
    return message


def test_defaults_without_a_file():
    config = load_config(None)
    assert config == PredictiveMaintenanceConfig()
    assert config.scenario == "predictive-maintenance"
    assert config.data.sensors == "sensors.csv"
    assert config.data.events == "events.csv"
    assert config.data.sensor_columns.timestamp == "timestamp"
    assert config.data.sensor_columns.features == []
    assert config.data.failure_values == ["failure"]
    assert config.labeling.horizon_hours == 48.0
    assert config.labeling.window == 24
    assert config.gate.min_roc_auc == 0.85


def test_file_overrides_defaults_and_keeps_the_rest(tmp_path):
    path = _write(
        tmp_path,
        """
scenario: predictive-maintenance
model_name: line-3-pumps
data:
  sensor_columns:
    timestamp: ts
    site: null
    features: [temp, vib]
  failure_values: [breakdown, trip]
labeling:
  horizon_hours: 24
  window: 12
""",
    )
    config = load_config(path)
    assert config.model_name == "line-3-pumps"
    assert config.data.sensor_columns.timestamp == "ts"
    assert config.data.sensor_columns.asset_id == "asset_id"
    assert config.data.sensor_columns.site is None
    assert config.data.sensor_columns.features == ["temp", "vib"]
    assert config.data.failure_values == ["breakdown", "trip"]
    assert config.labeling.horizon_hours == 24.0
    assert config.labeling.window == 12
    assert config.labeling.stride == 2
    assert config.model == PredictiveMaintenanceConfig().model


def test_config_is_read_from_s3(s3_bucket):
    uri = f"s3://{s3_bucket}/configs/plant.yaml"
    write_bytes(uri, b"labeling:\n  window: 8\n")
    assert load_config(uri).labeling.window == 8


@pytest.mark.parametrize(
    ("text", "field", "suggestion"),
    [
        ("labeling:\n  horizn: 12\n", "labeling.horizn", "horizon_hours"),
        ("data:\n  sensor_columns:\n    timestmp: ts\n", "data.sensor_columns.timestmp", "timestamp"),
        ("modle:\n  epochs: 3\n", "modle", "model"),
    ],
)
def test_typo_at_each_level_names_file_field_and_suggestion(tmp_path, text, field, suggestion):
    message = _load_error(_write(tmp_path, text))
    assert "plant.yaml" in message
    assert f": {field}: " in message
    assert f"did you mean '{suggestion}'" in message


def test_unknown_field_without_close_match_lists_allowed_fields(tmp_path):
    message = _load_error(_write(tmp_path, "gate:\n  zzzzzz: 1\n"))
    assert "gate.zzzzzz" in message
    assert "did you mean" not in message
    assert "min_roc_auc" in message


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("labeling:\n  window: abc\n", ["labeling.window", "integer"]),
        ("gate:\n  min_roc_auc: 1.5\n", ["gate.min_roc_auc", "less than or equal to 1"]),
        ("labeling:\n  test_fraction: 0\n", ["labeling.test_fraction", "greater than 0"]),
        ("model_name: Bad_Name\n", ["model_name", "pattern"]),
        ("data:\n  failure_values: []\n", ["data.failure_values", "at least 1"]),
        ("labeling:\n  window: [1, 2]\n", ["labeling.window"]),
        ("data: 3\n", ["data"]),
        ("key: [unclosed\n", ["not valid YAML", "line"]),
        ("labeling:\n  window: 5\n    stride: 2\n", ["not valid YAML at line 3"]),
        ("", ["empty config file"]),
        ("# only a comment\n", ["empty config file"]),
        ("- scenario\n- data\n", ["top level is not a mapping"]),
        ("just a string\n", ["top level is not a mapping"]),
        ("scenario: something\n", ["scenario", "predictive-maintenance"]),
    ],
)
def test_bad_config_is_one_line_error_naming_the_file(tmp_path, text, needles):
    message = _load_error(_write(tmp_path, text))
    for needle in needles:
        assert needle in message


def test_several_problems_report_the_first_and_count_the_rest(tmp_path):
    message = _load_error(_write(tmp_path, "labeling:\n  window: abc\n  stride: 0\n"))
    assert "labeling.window" in message
    assert "(+1 more)" in message


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    message = _load_error(missing)
    assert "cannot read config file" in message


def test_config_that_is_not_utf8(tmp_path):
    path = tmp_path / "plant.yaml"
    path.write_bytes(b"model_name: \xff\xfe\n")
    assert "not UTF-8" in _load_error(path)


def test_parse_config_names_the_given_source():
    with pytest.raises(ConfigError, match=r"^from-ui: labeling\.horizn: unknown field"):
        parse_config("labeling: {horizn: 1}", "from-ui")


def test_validated_builds_a_section_or_raises_config_error():
    assert validated(LabelingConfig, {"window": 6}, "params").window == 6
    with pytest.raises(ConfigError, match=r"^params: window: ") as info:
        validated(LabelingConfig, {"window": 1}, "params")
    assert info.value.field == "window"


def test_config_is_frozen():
    config = load_config(None)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError for frozen models
        config.labeling.window = 3


# --- resolve_data ------------------------------------------------------------------------------------------------


def test_resolve_relative_paths_against_local_folder(tmp_path):
    config = parse_config("data: {sensors: raw/sensors.csv, events: events.parquet}", "c.yaml")
    resolved = config.resolve_data(tmp_path)
    assert resolved.data.sensors == str(tmp_path.resolve() / "raw" / "sensors.csv")
    assert resolved.data.events == str(tmp_path.resolve() / "events.parquet")
    assert resolved.labeling == config.labeling
    assert config.data.sensors == "raw/sensors.csv"  # the original is unchanged


def test_resolve_relative_base_folder_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    resolved = load_config(None).resolve_data("data")
    assert Path(resolved.data.sensors).is_absolute()
    assert resolved.data.sensors == str(tmp_path.resolve() / "data" / "sensors.csv")


@pytest.mark.parametrize("base", ["s3://plant-data/site-a", "s3://plant-data/site-a/"])
def test_resolve_relative_paths_against_s3_prefix(base):
    resolved = load_config(None).resolve_data(base)
    assert resolved.data.sensors == "s3://plant-data/site-a/sensors.csv"
    assert resolved.data.events == "s3://plant-data/site-a/events.csv"


@pytest.mark.parametrize("base", ["/somewhere/else", "s3://other-bucket/prefix"])
def test_resolve_keeps_absolute_paths_and_s3_uris(base, tmp_path):
    sensors = str(tmp_path / "sensors.csv")
    config = PredictiveMaintenanceConfig(data=DataConfig(sensors=sensors, events="s3://bucket/x/events.csv"))
    resolved = config.resolve_data(base)
    assert resolved.data.sensors == sensors
    assert resolved.data.events == "s3://bucket/x/events.csv"
