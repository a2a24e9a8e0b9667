"""Ingest: read CSV/Parquet from disk or S3, validate against the config's column mapping, write nothing on error."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopfloor.common.config import DataConfig
from shopfloor.common.errors import DataValidationError
from shopfloor.common.storage import write_bytes
from shopfloor.common.tables import read_table
from shopfloor.components.ingest.ingest import ingest, validate_events, validate_sensors, write_outputs
from shopfloor.demo.plant import SENSOR_COLUMNS
from shopfloor.families.predictive_maintenance.config import LabelingConfig
from shopfloor.families.predictive_maintenance.labelling import label_windows
from shopfloor.families.scenarios import parse_config

GOOD_SENSORS = """timestamp,site,asset_id,temp,vib
2026-01-01T00:00:00Z,s1,A,1.0,0.1
2026-01-01T01:00:00Z,s1,A,1.1,0.2
2026-01-01T00:00:00Z,s1,B,2.0,0.3
2026-01-01T01:00:00Z,s1,B,2.1,
"""
GOOD_EVENTS = """timestamp,asset_id,event_type
2026-01-01T01:00:00Z,B,failure
2026-01-01T00:30:00Z,A,maintenance
"""


def _outputs(tmp_path: Path) -> tuple[str, str, str]:
    out = tmp_path / "out"
    return str(out / "sensors.parquet"), str(out / "events.parquet"), str(out / "profile.json")


def _run(
    tmp_path: Path,
    sensors: str | bytes,
    events: str | bytes = GOOD_EVENTS,
    config: DataConfig | None = None,
    sensors_name: str = "sensors.csv",
    events_name: str = "events.csv",
):
    """Write the inputs, ingest, and write outputs only if ingest succeeded (as the component does)."""
    sensors_path, events_path = tmp_path / sensors_name, tmp_path / events_name
    sensors_path.write_bytes(sensors.encode() if isinstance(sensors, str) else sensors)
    events_path.write_bytes(events.encode() if isinstance(events, str) else events)
    result = ingest(str(sensors_path), str(events_path), config or DataConfig())
    write_outputs(result, *_outputs(tmp_path))
    return result


def _rejected(tmp_path: Path, *args, **kwargs) -> str:
    """Ingest bad input: a one-line DataValidationError and no output file at all."""
    with pytest.raises(DataValidationError) as info:
        _run(tmp_path, *args, **kwargs)
    for path in _outputs(tmp_path):
        assert not Path(path).exists()
    assert not (tmp_path / "out").exists()
    message = str(info.value)
    assert "\n" not in message
    return message


# --- happy paths -------------------------------------------------------------------------------------------------


def test_demo_data_is_ingested_into_canonical_sorted_tables(small_demo_data, tmp_path):
    sensors_uri, events_uri = str(small_demo_data / "sensors.csv"), str(small_demo_data / "events.csv")
    result = ingest(sensors_uri, events_uri, DataConfig())
    features = list(SENSOR_COLUMNS)
    assert result.features == features
    assert list(result.sensors.columns) == ["timestamp", "asset_id", "site", "asset_type", *features]
    assert list(result.events.columns) == ["timestamp", "asset_id", "event_type"]
    assert str(result.sensors["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert str(result.events["timestamp"].dtype) == "datetime64[ns, UTC]"
    for name in features:
        assert result.sensors[name].dtype == np.float64

    raw = pd.read_csv(sensors_uri)
    assert len(result.sensors) == len(raw)
    expected_order = raw.assign(t=pd.to_datetime(raw["timestamp"], utc=True)).sort_values(["asset_id", "t"])
    assert result.sensors["asset_id"].tolist() == expected_order["asset_id"].tolist()
    assert result.sensors["timestamp"].tolist() == expected_order["t"].tolist()
    assert result.events["timestamp"].is_monotonic_increasing

    profile = result.profile
    assert profile["features"] == features
    assert profile["assets"] == 6
    assert profile["sensors"]["rows"] == len(raw)
    assert profile["sensors"]["columns"]["temperature_c"]["kind"] == "numeric"
    raw_events = pd.read_csv(events_uri)
    assert profile["events"]["rows"] == len(raw_events)
    assert profile["events"]["by_type"] == raw_events["event_type"].value_counts().sort_index().to_dict()
    for name, uri in (("sensors", sensors_uri), ("events", events_uri)):
        data = Path(uri).read_bytes()
        assert profile["sources"][name] == {"uri": uri, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def test_write_outputs_round_trip(small_demo_data, tmp_path):
    result = ingest(str(small_demo_data / "sensors.csv"), str(small_demo_data / "events.csv"), DataConfig())
    sensors_path, events_path, profile_path = _outputs(tmp_path)
    write_outputs(result, sensors_path, events_path, profile_path)
    pd.testing.assert_frame_equal(pd.read_parquet(sensors_path), result.sensors)
    pd.testing.assert_frame_equal(pd.read_parquet(events_path), result.events)
    assert json.loads(Path(profile_path).read_text()) == result.profile
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["events.parquet", "profile.json", "sensors.parquet"]


def test_small_plant_values_and_utc_normalisation(tmp_path):
    sensors = """timestamp,site,asset_id,temp,vib
2026-01-01T02:00:00+01:00,s1,B,2.0,0.3
2026-01-01T00:00:00Z,s1,A,1.0,0.1
2026-01-01 01:00:00,s1,A,1.1,
"""
    result = _run(tmp_path, sensors)
    assert result.features == ["temp", "vib"]
    assert result.sensors["asset_id"].tolist() == ["A", "A", "B"]
    assert result.sensors["timestamp"].tolist() == [
        pd.Timestamp("2026-01-01T00:00:00Z"),
        pd.Timestamp("2026-01-01T01:00:00Z"),
        pd.Timestamp("2026-01-01T01:00:00Z"),
    ]
    assert result.sensors["temp"].tolist() == [1.0, 1.1, 2.0]
    assert np.isnan(result.sensors["vib"].iloc[1])  # an empty cell is a missing reading, not an error
    assert result.events["event_type"].tolist() == ["maintenance", "failure"]


def test_events_without_type_column_are_all_failures(tmp_path):
    config = DataConfig(event_columns={"event_type": None})
    result = _run(tmp_path, GOOD_SENSORS, "timestamp,asset_id\n2026-01-01T01:00:00Z,B\n", config)
    assert result.events["event_type"].tolist() == ["failure"]


def test_parquet_input(small_demo_data, tmp_path):
    pd.read_csv(small_demo_data / "sensors.csv").to_parquet(tmp_path / "sensors.parquet", index=False)
    pd.read_csv(small_demo_data / "events.csv").to_parquet(tmp_path / "events.parquet", index=False)
    from_parquet = ingest(str(tmp_path / "sensors.parquet"), str(tmp_path / "events.parquet"), DataConfig())
    from_csv = ingest(str(small_demo_data / "sensors.csv"), str(small_demo_data / "events.csv"), DataConfig())
    assert from_parquet.features == from_csv.features
    pd.testing.assert_frame_equal(from_parquet.sensors, from_csv.sensors)
    pd.testing.assert_frame_equal(from_parquet.events, from_csv.events)


def test_s3_input(small_demo_data, s3_bucket):
    sensors_uri, events_uri = f"s3://{s3_bucket}/plant/sensors.csv", f"s3://{s3_bucket}/plant/events.csv"
    sensors_bytes = (small_demo_data / "sensors.csv").read_bytes()
    write_bytes(sensors_uri, sensors_bytes)
    write_bytes(events_uri, (small_demo_data / "events.csv").read_bytes())
    from_s3 = ingest(sensors_uri, events_uri, DataConfig())
    local = ingest(str(small_demo_data / "sensors.csv"), str(small_demo_data / "events.csv"), DataConfig())
    pd.testing.assert_frame_equal(from_s3.sensors, local.sensors)
    pd.testing.assert_frame_equal(from_s3.events, local.events)
    assert from_s3.profile["sources"]["sensors"]["uri"] == sensors_uri
    assert from_s3.profile["sources"]["sensors"]["sha256"] == hashlib.sha256(sensors_bytes).hexdigest()


def test_missing_s3_object_names_the_uri(s3_bucket):
    from shopfloor.common.errors import StorageError

    uri = f"s3://{s3_bucket}/plant/sensors.csv"
    with pytest.raises(StorageError, match="no such object") as info:
        ingest(uri, f"s3://{s3_bucket}/plant/events.csv", DataConfig())
    assert uri in str(info.value)


def test_plant_with_other_column_names_works_through_config(small_demo_data, tmp_path):
    sensors = pd.read_csv(small_demo_data / "sensors.csv").rename(
        columns={"timestamp": "ts", "asset_id": "equipment", "site": "plant", "asset_type": "machine"}
    )
    events = pd.read_csv(small_demo_data / "events.csv").rename(
        columns={"timestamp": "ts", "asset_id": "equipment", "event_type": "kind"}
    )
    events["kind"] = events["kind"].replace({"failure": "breakdown"})
    sensors.to_csv(tmp_path / "readings.csv", index=False)
    events.to_csv(tmp_path / "work_orders.csv", index=False)
    config = parse_config(
        """
data:
  sensors: readings.csv
  events: work_orders.csv
  sensor_columns: {timestamp: ts, asset_id: equipment, site: plant, asset_type: machine}
  event_columns: {timestamp: ts, asset_id: equipment, event_type: kind}
  failure_values: [breakdown]
labeling: {window: 12, stride: 6}
""",
        "plant.yaml",
    ).resolve_data(tmp_path)
    result = ingest(config.data.sensors, config.data.events, config.data)
    reference = ingest(str(small_demo_data / "sensors.csv"), str(small_demo_data / "events.csv"), DataConfig())
    assert result.features == list(SENSOR_COLUMNS)
    assert list(result.sensors.columns) == ["timestamp", "asset_id", "site", "asset_type", *SENSOR_COLUMNS]
    pd.testing.assert_frame_equal(result.sensors, reference.sensors)
    assert set(result.events["event_type"]) == {"breakdown", "maintenance"}
    windows = label_windows(result.sensors, result.events, result.features, config.data.failure_values, config.labeling)
    assert windows.failure.sum() > 0
    assert windows.info["failure_values"] == ["breakdown"]


# --- bad input ---------------------------------------------------------------------------------------------------


def test_malformed_csv_row_with_too_many_fields(tmp_path):
    bad = GOOD_SENSORS.replace("2026-01-01T01:00:00Z,s1,A,1.1,0.2", "2026-01-01T01:00:00Z,s1,A,1.1,0.2,9")
    message = _rejected(tmp_path, bad)
    assert message.startswith(str(tmp_path / "sensors.csv") + ": ")
    assert "malformed table" in message
    assert "line 3" in message
    assert "expected well-formed CSV or Parquet" in message


def test_empty_file(tmp_path):
    message = _rejected(tmp_path, "  \n\n")
    assert message.startswith(str(tmp_path / "sensors.csv") + ": ")
    assert "file is empty" in message
    assert "expected a header row and at least one data row" in message


def test_header_only(tmp_path):
    message = _rejected(tmp_path, GOOD_SENSORS, "timestamp,asset_id,event_type\n")
    assert message.startswith(str(tmp_path / "events.csv") + ": ")
    assert "no data rows" in message
    assert "expected at least one data row" in message


def test_missing_configured_column(tmp_path):
    config = DataConfig(sensor_columns={"timestamp": "time"})
    message = _rejected(tmp_path, GOOD_SENSORS, config=config)
    assert message.startswith(str(tmp_path / "sensors.csv") + ": ")
    assert "sensor_columns.timestamp" in message
    assert "column 'time' not found" in message
    assert "timestamp, site, asset_id, temp, vib" in message  # the columns the file does have


def test_missing_event_column(tmp_path):
    config = DataConfig(event_columns={"event_type": "kind"})
    message = _rejected(tmp_path, GOOD_SENSORS, config=config)
    assert message.startswith(str(tmp_path / "events.csv") + ": ")
    assert "event_columns.event_type" in message
    assert "column 'kind' not found" in message


def test_configured_feature_absent(tmp_path):
    config = DataConfig(sensor_columns={"features": ["temp", "pressure"]})
    message = _rejected(tmp_path, GOOD_SENSORS, config=config)
    assert "sensor_columns.features[1]" in message
    assert "column 'pressure' not found" in message
    assert "expected one of the file's columns" in message


def test_configured_features_restrict_the_table(tmp_path):
    result = _run(tmp_path, GOOD_SENSORS, config=DataConfig(sensor_columns={"features": ["vib"]}))
    assert result.features == ["vib"]
    assert list(result.sensors.columns) == ["timestamp", "asset_id", "site", "vib"]


def test_non_numeric_sensor_value_names_row_and_column(tmp_path):
    bad = GOOD_SENSORS.replace("s1,A,1.1,0.2", "s1,A,abc,0.2")
    message = _rejected(tmp_path, bad, config=DataConfig(sensor_columns={"features": ["temp", "vib"]}))
    assert message.startswith(str(tmp_path / "sensors.csv") + ": ")
    assert "temp" in message
    assert "row 2: 'abc' is not a number" in message
    assert "expected finite numeric sensor readings" in message


def test_non_numeric_sensor_value_with_inferred_features(tmp_path):
    bad = GOOD_SENSORS.replace("s1,A,1.1,0.2", "s1,A,abc,0.2")
    message = _rejected(tmp_path, bad)
    assert "temp" in message
    assert "row 2: 'abc' is not a number" in message


def test_infinite_sensor_value_is_rejected(tmp_path):
    bad = GOOD_SENSORS.replace("s1,A,1.1,0.2", "s1,A,inf,0.2")
    message = _rejected(tmp_path, bad)
    assert "temp" in message
    assert "row 2" in message


@pytest.mark.parametrize("reading", ["1e39", "-3.5e38", "1e308"])
def test_a_reading_beyond_float32_is_rejected_naming_the_cell(tmp_path, reading):
    bad = GOOD_SENSORS.replace("s1,A,1.1,0.2", f"s1,A,{reading},0.2")
    message = _rejected(tmp_path, bad)
    shown = message.split("row 2: '", 1)[1].split("'", 1)[0]
    assert "features (temp)" in message and float(shown) == float(reading) and "' is beyond float32" in message


def test_unparsable_timestamp_names_row(tmp_path):
    bad = GOOD_SENSORS.replace("2026-01-01T00:00:00Z,s1,B", "yesterday,s1,B")
    message = _rejected(tmp_path, bad)
    assert message.startswith(str(tmp_path / "sensors.csv") + ": ")
    assert "sensor_columns.timestamp (timestamp)" in message
    assert "row 3: 'yesterday' is not a timestamp" in message
    assert "expected ISO 8601 timestamps" in message


def test_unparsable_event_timestamp(tmp_path):
    message = _rejected(tmp_path, GOOD_SENSORS, GOOD_EVENTS.replace("2026-01-01T00:30:00Z", "31/02/2026 25:00"))
    assert message.startswith(str(tmp_path / "events.csv") + ": ")
    assert "event_columns.timestamp" in message
    assert "row 2: '31/02/2026 25:00' is not a timestamp" in message


def test_empty_asset_id_names_row(tmp_path):
    bad = GOOD_SENSORS.replace("2026-01-01T01:00:00Z,s1,B,", "2026-01-01T01:00:00Z,s1,,")
    message = _rejected(tmp_path, bad)
    assert "sensor_columns.asset_id (asset_id)" in message
    assert "row 4: empty id" in message
    assert "expected a non-empty id in every row" in message


def test_duplicate_asset_and_timestamp(tmp_path):
    bad = GOOD_SENSORS + "2026-01-01T02:00:00+01:00,s1,A,9.9,9.9\n"  # the same instant as A's second reading
    message = _rejected(tmp_path, bad)
    assert message.startswith(str(tmp_path / "sensors.csv") + ": ")
    assert "two readings for asset 'A' at 2026-01-01T01:00:00+00:00" in message
    assert "expected one reading per asset and timestamp" in message


def test_unknown_asset_in_events_names_row_and_id(tmp_path):
    events = GOOD_EVENTS + "2026-01-01T01:00:00Z,Z-99,failure\n"
    message = _rejected(tmp_path, GOOD_SENSORS, events)
    assert message.startswith(str(tmp_path / "events.csv") + ": ")
    assert "event_columns.asset_id (asset_id)" in message
    assert "row 3: unknown asset id 'Z-99'" in message
    assert "an asset id present in the sensor data (2 assets)" in message


def test_unsupported_suffix(tmp_path):
    message = _rejected(tmp_path, GOOD_SENSORS, sensors_name="sensors.xlsx")
    assert message.startswith(str(tmp_path / "sensors.xlsx") + ": ")
    assert "unsupported file type '.xlsx'" in message
    assert "expected .csv or .parquet" in message


def test_corrupt_parquet(tmp_path):
    message = _rejected(tmp_path, b"PAR1 this is not parquet", sensors_name="sensors.parquet")
    assert message.startswith(str(tmp_path / "sensors.parquet") + ": ")
    assert "malformed table" in message


def test_no_numeric_sensor_columns(tmp_path):
    sensors = "timestamp,site,asset_id,note\n2026-01-01T00:00:00Z,s1,A,ok\n2026-01-01T00:00:00Z,s1,B,ok\n"
    message = _rejected(tmp_path, sensors, "timestamp,asset_id,event_type\n2026-01-01T00:00:00Z,A,failure\n")
    assert "sensor_columns.features" in message
    assert "no numeric sensor columns" in message


def test_feature_without_any_reading(tmp_path):
    sensors = "timestamp,site,asset_id,temp,vib\n2026-01-01T00:00:00Z,s1,A,1,\n2026-01-01T00:00:00Z,s1,B,2,\n"
    config = DataConfig(sensor_columns={"features": ["temp", "vib"]})
    message = _rejected(tmp_path, sensors, "timestamp,asset_id,event_type\n2026-01-01T00:00:00Z,A,failure\n", config)
    assert "column 'vib' has no readings" in message


# --- building blocks ---------------------------------------------------------------------------------------------


def test_read_table_with_given_bytes_does_not_read_the_path():
    frame = read_table("s3://not-read/sensors.csv", GOOD_SENSORS.encode())
    assert list(frame.columns) == ["timestamp", "site", "asset_id", "temp", "vib"]
    assert len(frame) == 4


def test_validate_functions_directly():
    frame = pd.read_csv(pd.io.common.StringIO(GOOD_SENSORS))
    sensors, features = validate_sensors(frame, DataConfig().sensor_columns, "mem://sensors")
    assert features == ["temp", "vib"]
    events = validate_events(
        pd.read_csv(pd.io.common.StringIO(GOOD_EVENTS)), DataConfig().event_columns, {"A", "B"}, "mem://events"
    )
    assert events["asset_id"].tolist() == ["A", "B"]
    with pytest.raises(DataValidationError, match=r"^mem://events: .*unknown asset id 'A'"):
        validate_events(
            pd.read_csv(pd.io.common.StringIO(GOOD_EVENTS)), DataConfig().event_columns, {"B"}, "mem://events"
        )


def test_labeling_config_default_is_usable_with_ingest_output(small_demo_data):
    result = ingest(str(small_demo_data / "sensors.csv"), str(small_demo_data / "events.csv"), DataConfig())
    windows = label_windows(result.sensors, result.events, result.features, ["failure"], LabelingConfig(stride=12))
    assert windows.x.shape[1:] == (24, 7)
    assert set(windows.asset) == set(result.sensors["asset_id"])
