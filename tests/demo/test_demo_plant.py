import numpy as np
import pandas as pd
import pytest

from shopfloor.demo.plant import (
    EVENT_COLUMNS,
    ID_COLUMNS,
    SENSOR_COLUMNS,
    PlantDataSpec,
    generate_plant_data,
    write_plant_data,
)

EXPECTED_SENSOR_COLUMNS = [
    "timestamp",
    "site",
    "asset_id",
    "asset_type",
    "temperature_c",
    "pressure_bar",
    "vibration_mm_s",
    "flow_m3_h",
    "valve_position_pct",
    "motor_current_a",
    "differential_pressure_bar",
]
EXPECTED_EVENT_COLUMNS = ["timestamp", "asset_id", "event_type", "description"]


@pytest.fixture(scope="module")
def default_files(tmp_path_factory):
    return write_plant_data(tmp_path_factory.mktemp("plant") / "nested" / "out")


@pytest.fixture(scope="module")
def sensors(default_files):
    return pd.read_csv(default_files["sensors"])


@pytest.fixture(scope="module")
def events(default_files):
    return pd.read_csv(default_files["events"])


def test_write_returns_both_paths(default_files):
    assert set(default_files) == {"sensors", "events"}
    assert default_files["sensors"].name == "sensors.csv"
    assert default_files["events"].name == "events.csv"
    assert default_files["sensors"].is_file() and default_files["events"].is_file()


def test_same_spec_gives_byte_identical_files(default_files, tmp_path):
    again = write_plant_data(tmp_path)
    for key in ("sensors", "events"):
        assert again[key].read_bytes() == default_files[key].read_bytes()


def test_different_seed_gives_different_data(default_files, tmp_path):
    other = write_plant_data(tmp_path, PlantDataSpec(seed=8))
    assert other["sensors"].read_bytes() != default_files["sensors"].read_bytes()
    assert other["events"].read_bytes() != default_files["events"].read_bytes()


def test_exported_column_constants_match_layout():
    assert list(ID_COLUMNS + SENSOR_COLUMNS) == EXPECTED_SENSOR_COLUMNS
    assert list(EVENT_COLUMNS) == EXPECTED_EVENT_COLUMNS


def test_sensor_layout(sensors):
    assert list(sensors.columns) == EXPECTED_SENSOR_COLUMNS
    assert sorted(sensors["site"].unique()) == ["site-a", "site-b", "site-c"]
    assert set(sensors["asset_type"]) == {"pump", "valve", "compressor"}
    assert sensors["asset_id"].str.fullmatch(r"[A-C]-(PMP|VLV|CMP)-\d\d").all()
    assert sensors["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    assert sensors["timestamp"].iloc[0] == "2026-01-01T00:00:00Z"
    # Asset ids are unique across sites: each belongs to exactly one site and one type.
    per_asset = sensors.groupby("asset_id")[["site", "asset_type"]].nunique()
    assert (per_asset == 1).all().all()
    assert len(per_asset) == 3 * 8
    type_code = {"pump": "PMP", "valve": "VLV", "compressor": "CMP"}
    first = sensors.groupby("asset_id")[["site", "asset_type"]].first()
    for asset_id, row in first.iterrows():
        assert asset_id[0] == row["site"][-1].upper()
        assert asset_id[2:5] == type_code[row["asset_type"]]
    # One row per asset per hour, sorted by asset_id then timestamp.
    assert len(sensors) == 3 * 8 * 90 * 24
    assert (sensors.groupby("asset_id").size() == 90 * 24).all()
    ordered = sensors.sort_values(["asset_id", "timestamp"], kind="mergesort", ignore_index=True)
    pd.testing.assert_frame_equal(sensors[["asset_id", "timestamp"]], ordered[["asset_id", "timestamp"]])
    for column in SENSOR_COLUMNS:
        assert sensors[column].dtype == np.float64


def test_site_sensor_sets(sensors):
    missing = sensors.groupby("site")[list(SENSOR_COLUMNS)].apply(lambda group: group.isna().mean())
    assert missing.loc["site-b", "motor_current_a"] == 1.0
    assert missing.loc["site-b", "differential_pressure_bar"] == 1.0
    assert missing.loc["site-c", "vibration_mm_s"] == 1.0
    absent = {
        "site-a": set(),
        "site-b": {"motor_current_a", "differential_pressure_bar"},
        "site-c": {"vibration_mm_s"},
    }
    for site, absent_columns in absent.items():
        for column in SENSOR_COLUMNS:
            if column in absent_columns:
                continue
            # Present sensors only have sparse single-reading dropouts (~0.3%).
            assert 0.0005 < missing.loc[site, column] < 0.01, (site, column)


def test_site_b_is_noisier_than_site_a(sensors):
    # Hour-to-hour pressure jitter (mostly sensor noise) per site: site-b has the higher noise level.
    jitter = sensors.groupby("asset_id")["pressure_bar"].diff().abs().groupby(sensors["site"]).median()
    assert jitter["site-b"] > 1.3 * jitter["site-a"]


def test_further_sites_cycle_sensor_patterns():
    data = generate_plant_data(PlantDataSpec(sites=6, assets_per_site=1, days=2))
    all_missing = data.sensors.groupby("site")[list(SENSOR_COLUMNS)].apply(lambda group: group.isna().all())
    for first, later in (("site-a", "site-d"), ("site-b", "site-e"), ("site-c", "site-f")):
        assert all_missing.loc[first].equals(all_missing.loc[later])
    assert all_missing.loc["site-e", "motor_current_a"]
    assert not all_missing.loc["site-d"].any()


def test_event_layout_and_references(sensors, events):
    assert list(events.columns) == EXPECTED_EVENT_COLUMNS
    assert set(events["event_type"]) == {"failure", "maintenance"}
    assert set(events["asset_id"]) <= set(sensors["asset_id"])
    assert events["timestamp"].is_monotonic_increasing
    assert events["description"].str.len().between(3, 60).all()
    assert set(events.loc[events["event_type"] == "maintenance", "description"]) == {"scheduled maintenance"}
    sensor_keys = set(zip(sensors["asset_id"], sensors["timestamp"], strict=True))
    for asset_id, timestamp in zip(events["asset_id"], events["timestamp"], strict=True):
        assert (asset_id, timestamp) in sensor_keys


def test_failure_descriptions_match_asset_type(sensors, events):
    asset_type = sensors.groupby("asset_id")["asset_type"].first()
    failures = events[events["event_type"] == "failure"]
    by_type = failures.groupby(failures["asset_id"].map(asset_type))["description"].agg(set)
    assert "bearing failure" in by_type["pump"]
    assert "valve stuck" in by_type["valve"]
    assert "heat exchanger fouled" in by_type["compressor"]


def test_every_asset_fails_and_total_is_plausible(sensors, events):
    failures = events[events["event_type"] == "failure"]
    assert set(failures["asset_id"]) == set(sensors["asset_id"])
    assert 60 <= len(failures) <= 200
    assert (events["event_type"] == "maintenance").sum() >= 24


def _window_means(frame, column, stamps, start_offset_h, end_offset_h):
    """Mean of `column` over rows whose time lies in (stamp + start, stamp + end] for each stamp."""
    times = pd.to_datetime(frame["timestamp"])
    values = []
    for stamp in stamps:
        lower = stamp + pd.Timedelta(hours=start_offset_h)
        upper = stamp + pd.Timedelta(hours=end_offset_h)
        values.append(frame.loc[(times > lower) & (times <= upper), column].mean())
    return np.nanmean(values)


def test_pump_vibration_rises_before_failure(sensors, events):
    pumps = sensors[(sensors["asset_type"] == "pump") & sensors["vibration_mm_s"].notna()]
    failures = events[events["event_type"] == "failure"]
    before, after = [], []
    for asset_id, readings in pumps.groupby("asset_id"):
        stamps = pd.to_datetime(failures.loc[failures["asset_id"] == asset_id, "timestamp"])
        before.append(_window_means(readings, "vibration_mm_s", stamps, -48, 0))
        after.append(_window_means(readings, "vibration_mm_s", stamps, 0, 48))
    assert len(before) >= 4  # pumps at site-a and site-b (site-c has no vibration sensor)
    assert np.nanmean(before) > 1.5 * np.nanmean(after)
    assert all(b > a for b, a in zip(before, after, strict=True))


def test_compressor_fouling_raises_temperature_before_failure(sensors, events):
    compressors = sensors[sensors["asset_type"] == "compressor"]
    failures = events[events["event_type"] == "failure"]
    for asset_id, readings in compressors.groupby("asset_id"):
        stamps = pd.to_datetime(failures.loc[failures["asset_id"] == asset_id, "timestamp"])
        before = _window_means(readings, "temperature_c", stamps, -48, 0)
        after = _window_means(readings, "temperature_c", stamps, 0, 48)
        assert before > after + 5.0, asset_id


def test_small_spec_is_sized():
    spec = PlantDataSpec(sites=1, assets_per_site=2, days=10)
    data = generate_plant_data(spec)
    # The grid is regular: repairs do not remove rows, so the count is exact.
    assert len(data.sensors) == 2 * 10 * 24
    assert list(data.sensors["asset_id"].unique()) == ["A-PMP-01", "A-VLV-01"]
    assert list(data.events.columns) == EXPECTED_EVENT_COLUMNS


def test_interval_changes_row_count():
    data = generate_plant_data(PlantDataSpec(sites=1, assets_per_site=1, days=2, interval_minutes=15))
    assert len(data.sensors) == 2 * 24 * 4
    assert data.sensors["timestamp"].iloc[1] == "2026-01-01T00:15:00Z"


def test_generate_matches_written_csv(default_files):
    data = generate_plant_data()
    written = pd.read_csv(default_files["sensors"])
    pd.testing.assert_frame_equal(data.sensors, written)
    pd.testing.assert_frame_equal(data.events, pd.read_csv(default_files["events"]))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sites", 0),
        ("sites", 7),
        ("assets_per_site", 0),
        ("days", 0),
        ("interval_minutes", 0),
        ("interval_minutes", 7),
        ("seed", -1),
        ("start", "not a timestamp"),
    ],
)
def test_invalid_spec_raises_naming_field(field, value):
    with pytest.raises(ValueError, match=field):
        generate_plant_data(PlantDataSpec(**{field: value}))


def test_invalid_sites_message_names_range():
    with pytest.raises(ValueError, match=r"sites.*\[1, 6\]"):
        generate_plant_data(PlantDataSpec(sites=0))
