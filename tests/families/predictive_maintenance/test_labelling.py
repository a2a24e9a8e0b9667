"""Labeling: exact labels on a hand-made plant, censoring, asset split, windows folder round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shopfloor.common.errors import DataValidationError
from shopfloor.contracts.windows import SPLITS, load_windows, write_windows
from shopfloor.families.predictive_maintenance.config import LabelingConfig
from shopfloor.families.predictive_maintenance.labelling import label_windows, split_assets
from shopfloor.families.shared import class_balance

T0 = pd.Timestamp("2026-01-01T00:00:00Z")
HOURS = 400  # readings 0..399, hourly
FAILURES = {"A": [200], "B": [150, 300], "C": [250], "D": []}
CONFIG = LabelingConfig(horizon_hours=48, window=4, stride=1, rul_cap_hours=120, seed=7)


def _plant(assets=("A", "B", "C", "D"), failures=None, hours=HOURS, maintenance=True):
    """Canonical tables as ingest writes them: feature f = hour index, g = asset number (NaN at one reading)."""
    failures = FAILURES if failures is None else failures
    rows = []
    for number, asset in enumerate(assets):
        for hour in range(hours):
            g = np.nan if (asset == "A" and hour == 50) else float(number)
            rows.append((T0 + pd.Timedelta(hours=hour), asset, "site-1", float(hour), g))
    sensors = pd.DataFrame(rows, columns=["timestamp", "asset_id", "site", "f", "g"])
    events = [(T0 + pd.Timedelta(hours=h), a, "failure") for a in assets for h in failures.get(a, [])]
    if maintenance:
        events += [(T0 + pd.Timedelta(hours=100), assets[0], "maintenance")]
    events = pd.DataFrame(events, columns=["timestamp", "asset_id", "event_type"])
    return sensors, events.sort_values(["timestamp", "asset_id"]).reset_index(drop=True)


def _end_hour(end_time: np.ndarray) -> np.ndarray:
    return (end_time - T0.value) // 3_600_000_000_000


@pytest.fixture(scope="module")
def windows():
    sensors, events = _plant()
    return label_windows(sensors, events, ["f", "g"], ["failure"], CONFIG)


@pytest.fixture(scope="module")
def labels(windows):
    """{(asset, end hour): (failure, rul)} for every kept window."""
    hours = _end_hour(windows.end_time)
    return {
        (a, int(h)): (int(f), float(r))
        for a, h, f, r in zip(windows.asset, hours, windows.failure, windows.rul, strict=True)
    }


def test_shapes_and_dtypes(windows):
    n = windows.x.shape[0]
    assert windows.x.shape == (n, 4, 2)
    assert windows.x.dtype == np.float32
    assert windows.failure.dtype == np.int8
    assert windows.rul.dtype == np.float32
    assert windows.split.dtype == np.int8
    assert windows.end_time.dtype == np.int64
    assert windows.asset.dtype.kind == "U"
    for array in (windows.failure, windows.rul, windows.split, windows.asset, windows.end_time):
        assert array.shape == (n,)
    assert windows.features == ["f", "g"]


def test_window_holds_the_readings_up_to_its_end(windows):
    hours = _end_hour(windows.end_time)
    for i in range(0, len(hours), 37):
        assert windows.x[i, :, 0].tolist() == [hours[i] - 3, hours[i] - 2, hours[i] - 1, hours[i]]
    asset_a_at_50 = np.flatnonzero((windows.asset == "A") & (hours == 50))[0]
    assert np.isnan(windows.x[asset_a_at_50, -1, 1])  # a missing reading stays NaN


def test_positive_within_horizon(labels):
    assert labels[("A", 190)] == (1, 10.0)
    assert labels[("A", 200)] == (1, 0.0)  # the window ending on the failure reading
    assert labels[("A", 152)] == (1, 48.0)  # exactly at the horizon counts
    assert labels[("B", 290)] == (1, 10.0)
    assert labels[("B", 140)] == (1, 10.0)


def test_negative_before_horizon(labels):
    assert labels[("A", 100)] == (0, 100.0)  # and a maintenance event does not split windows
    assert labels[("A", 151)] == (0, 49.0)
    assert labels[("C", 150)] == (0, 100.0)


def test_rul_is_clipped_at_cap(labels):
    assert labels[("A", 50)] == (0, 120.0)
    assert labels[("A", 3)] == (0, 120.0)
    assert labels[("B", 154)] == (0, 120.0)  # next failure at 300, 146 h away


def test_windows_spanning_a_failure_are_dropped(labels):
    for asset, failure in (("A", 200), ("B", 150), ("B", 300), ("C", 250)):
        for end in range(failure + 1, failure + 4):
            assert (asset, end) not in labels
        assert (asset, failure) in labels
    assert ("A", 204) in labels  # the first window wholly after the failure


def test_after_last_failure_is_censored(labels):
    # 399 is the last reading: observed remaining time = 399 - end
    assert labels[("A", 204)] == (0, 120.0)  # 195 h observed >= cap: rul is the cap
    assert labels[("A", 279)] == (0, 120.0)  # exactly the cap
    assert labels[("A", 280)] == (0, -1.0)  # 119 h observed: healthy for the horizon, rul unknown
    assert labels[("A", 351)] == (0, -1.0)  # exactly the horizon observed
    for end in range(352, HOURS):
        assert ("A", end) not in labels  # could still fail within the horizon: dropped
        assert ("D", end) not in labels


def test_asset_without_failures_is_all_negative(windows, labels):
    d_ends = sorted(h for a, h in labels if a == "D")
    assert d_ends == list(range(3, 352))
    assert all(labels[("D", h)][0] == 0 for h in d_ends)
    assert all(labels[("D", h)][1] == 120.0 for h in d_ends if h <= 279)
    assert all(labels[("D", h)][1] == -1.0 for h in d_ends if h > 279)
    assert windows.info["unknown_rul"] == int((windows.rul < 0).sum()) > 0


def test_stride_spaces_window_ends():
    sensors, events = _plant()
    config = CONFIG.model_copy(update={"stride": 5})
    windows = label_windows(sensors, events, ["f", "g"], ["failure"], config)
    ends = _end_hour(windows.end_time[windows.asset == "D"])
    assert ends.tolist() == list(range(3, 352, 5))


def test_info_describes_the_windows(windows):
    info = windows.info
    assert info["features"] == ["f", "g"]
    assert (info["window"], info["stride"], info["horizon_hours"], info["rul_cap_hours"]) == (4, 1, 48, 120)
    assert info["failure_values"] == ["failure"]
    assert info["class_balance"] == class_balance(windows.failure, windows.split)
    total = sum(info["class_balance"][s]["windows"] for s in SPLITS)
    assert total == windows.failure.size
    assert sum(info["class_balance"][s]["positives"] for s in SPLITS) == int(windows.failure.sum())
    json.dumps(info)


def test_class_balance():
    failure = np.array([1, 0, 0, 1, 1, 0], dtype=np.int8)
    split = np.array([0, 0, 0, 2, 2, 2], dtype=np.int8)
    assert class_balance(failure, split) == {
        "train": {"windows": 3, "positives": 1, "positive_rate": 0.3333},
        "validation": {"windows": 0, "positives": 0, "positive_rate": 0.0},
        "test": {"windows": 3, "positives": 2, "positive_rate": 0.6667},
    }


# --- errors ------------------------------------------------------------------------------------------------------


def test_no_failure_events_lists_the_types_found():
    sensors, events = _plant(failures={})
    events = pd.concat([events, events.assign(event_type="inspection")], ignore_index=True)
    with pytest.raises(DataValidationError) as info:
        label_windows(sensors, events, ["f", "g"], ["failure"], CONFIG, source="events.parquet")
    message = str(info.value)
    assert message.startswith("events.parquet: failure_values: ")
    assert "no failure events (event types found: inspection, maintenance)" in message
    assert "['failure']" in message


def test_failure_values_that_match_nothing():
    sensors, events = _plant()
    with pytest.raises(DataValidationError, match=r"failure_values.*found: failure, maintenance.*\['breakdown'\]"):
        label_windows(sensors, events, ["f", "g"], ["breakdown"], CONFIG)


def test_fewer_than_three_assets():
    sensors, events = _plant(assets=("A", "B"), failures={"A": [200], "B": [150]})
    with pytest.raises(DataValidationError, match=r"only 2 asset\(s\).*at least 3 assets"):
        label_windows(sensors, events, ["f", "g"], ["failure"], CONFIG)
    with pytest.raises(DataValidationError, match="at least 3 assets"):
        split_assets(["A", "B"], {"A": 1, "B": 1}, CONFIG)


def test_failures_on_only_one_asset():
    sensors, events = _plant(failures={"A": [200]})
    with pytest.raises(DataValidationError, match=r"failures on only 1 asset\(s\)"):
        label_windows(sensors, events, ["f", "g"], ["failure"], CONFIG)


def test_window_longer_than_any_asset_history():
    sensors, events = _plant(hours=10)
    with pytest.raises(DataValidationError, match=r"labeling\.window.*at least 24 readings"):
        label_windows(sensors, events, ["f", "g"], ["failure"], CONFIG.model_copy(update={"window": 24}))


# --- split -------------------------------------------------------------------------------------------------------


def test_split_is_by_asset(windows):
    assignment = windows.info["assets"]
    assert sorted(a for s in SPLITS for a in assignment[s]) == ["A", "B", "C", "D"]
    for index, name in enumerate(SPLITS):
        assert assignment[name], name
        assert set(windows.asset[windows.split == index]) == set(assignment[name])
    for asset in "ABCD":
        assert len(set(windows.split[windows.asset == asset].tolist())) == 1
    test = windows.part("test")
    assert test.failure.sum() > 0
    assert set(test.asset) == set(assignment["test"])
    assert test.x.shape[0] == test.failure.size == int((windows.split == 2).sum())


def test_split_is_deterministic_for_a_seed(windows):
    sensors, events = _plant()
    again = label_windows(sensors, events, ["f", "g"], ["failure"], CONFIG)
    np.testing.assert_array_equal(again.split, windows.split)
    assets = [f"P-{i:02d}" for i in range(12)]
    positives = {a: i % 3 for i, a in enumerate(assets)}
    first = split_assets(assets, positives, LabelingConfig(seed=3))
    assert split_assets(list(assets), dict(positives), LabelingConfig(seed=3)) == first
    seeds = {json.dumps(split_assets(assets, positives, LabelingConfig(seed=s)), sort_keys=True) for s in range(5)}
    assert len(seeds) > 1  # the seed does change the assignment


@pytest.mark.parametrize("seed", range(10))
def test_split_partitions_assets_and_test_sees_failures(seed):
    assets = [f"P-{i:02d}" for i in range(10)]
    positives = {"P-01": 5, "P-04": 2, "P-07": 1}
    split = split_assets(assets, positives, LabelingConfig(seed=seed))
    names = [a for s in SPLITS for a in split[s]]
    assert sorted(names) == assets
    assert len(names) == len(set(names))
    assert all(split[s] for s in SPLITS)
    assert any(positives.get(a, 0) > 0 for a in split["test"])
    assert len(split["test"]) == 2  # round(0.25 * 10) assets held out


def test_train_split_sees_failures():
    positives = {"a": 3, "b": 2}
    split = split_assets(["a", "b", "c"], positives, LabelingConfig(seed=1))
    assert any(positives.get(a, 0) > 0 for a in split["train"]), split


def test_every_split_gets_an_asset_for_a_valid_test_fraction():
    split = split_assets(["a", "b", "c"], {"a": 1, "b": 1, "c": 1}, LabelingConfig(test_fraction=0.5))
    assert all(split[s] for s in SPLITS), split


# --- windows folder ----------------------------------------------------------------------------------------------


def test_write_and_load_windows_round_trip(windows, tmp_path):
    folder = tmp_path / "windows"
    write_windows(windows, str(folder))
    assert sorted(p.name for p in folder.iterdir()) == ["labels.json", "windows.npz"]
    loaded = load_windows(str(folder))
    for name in ("x", "failure", "rul", "split", "asset", "end_time"):
        original, copy = getattr(windows, name), getattr(loaded, name)
        np.testing.assert_array_equal(copy, original, err_msg=name)
        assert copy.dtype == original.dtype, name
    assert loaded.features == windows.features
    assert loaded.info == json.loads(json.dumps(windows.info))
    assert loaded.part("test").failure.sum() == windows.part("test").failure.sum()


def test_windows_npz_needs_no_pickle(windows, tmp_path):
    folder = tmp_path / "windows"
    write_windows(windows, str(folder))
    with np.load(folder / "windows.npz", allow_pickle=False) as data:
        assert data["asset"].dtype.kind == "U" and data["site"].dtype.kind == "U"
        assert sorted(data.files) == ["asset", "end_time", "failure", "rul", "site", "split", "x"]
        assert all(data[k].dtype != object for k in data.files)


def test_write_windows_replaces_an_older_folder(windows, tmp_path):
    folder = tmp_path / "windows"
    folder.mkdir()
    (folder / "stale.txt").write_text("old")
    write_windows(windows, str(folder))
    assert sorted(p.name for p in folder.iterdir()) == ["labels.json", "windows.npz"]
    assert [p.name for p in tmp_path.iterdir()] == ["windows"]
