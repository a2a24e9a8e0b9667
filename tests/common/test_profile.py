"""Data profiles: numeric, categorical and timestamp statistics, JSON-safe and reproducible."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from shopfloor.common.profile import HISTOGRAM_BINS, numeric_profile, profile_table


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(
                ["2026-01-01T02:00:00Z", "2026-01-01T00:00:00Z", "2026-01-03T12:30:00Z", "2026-01-02T00:00:00Z"],
                utc=True,
            ),
            "asset_id": ["P-2", "P-1", "P-1", None],
            "temperature": [10.0, 20.0, np.nan, 30.0],
            "pressure": [1, 2, 3, 4],
        }
    )


def test_numeric_statistics_of_known_series():
    values = pd.Series([1.0, 2.0, 3.0, 4.0, np.nan, 10.0])
    profile = numeric_profile(values)
    assert profile["kind"] == "numeric"
    assert profile["count"] == 5
    assert profile["missing"] == 1
    assert profile["mean"] == 4.0
    assert profile["min"] == 1.0
    assert profile["max"] == 10.0
    assert profile["std"] == pytest.approx(float(np.std([1, 2, 3, 4, 10], ddof=1)), rel=1e-5)
    assert profile["quantiles"]["p50"] == 3.0
    assert list(profile["quantiles"]) == ["p01", "p05", "p25", "p50", "p75", "p95", "p99"]
    histogram = profile["histogram"]
    assert len(histogram["counts"]) == HISTOGRAM_BINS
    assert len(histogram["edges"]) == HISTOGRAM_BINS + 1
    assert sum(histogram["counts"]) == profile["count"]
    assert histogram["edges"][0] == 1.0
    assert histogram["edges"][-1] == 10.0
    assert histogram["counts"][0] == 1
    assert histogram["counts"][-1] == 1  # the maximum falls in the last, closed bin


def test_numeric_values_are_rounded_to_six_significant_digits():
    profile = numeric_profile(pd.Series([1 / 3, 2 / 3]))
    assert profile["mean"] == 0.5
    assert profile["min"] == 0.333333
    assert profile["max"] == 0.666667


def test_numeric_profile_of_empty_and_constant_columns():
    empty = numeric_profile(pd.Series([np.nan, np.nan]))
    assert empty == {"count": 0, "missing": 2, "kind": "numeric", "non_finite": 0}
    constant = numeric_profile(pd.Series([5.0] * 7))
    assert constant["std"] == 0.0
    assert constant["min"] == constant["max"] == 5.0
    assert sum(constant["histogram"]["counts"]) == 7


def test_non_finite_values_do_not_break_the_profile():
    profile = numeric_profile(pd.Series([1.0, 2.0, np.inf]))
    assert profile["count"] == 2 and profile["non_finite"] == 1
    assert profile["max"] == 2.0
    assert profile["min"] == 1.0
    assert sum(profile["histogram"]["counts"]) == 2
    assert json.loads(json.dumps(profile, allow_nan=False)) == profile


def test_profile_table_kinds(frame):
    profile = profile_table(frame, ["temperature", "pressure"])
    assert profile["rows"] == 4
    columns = profile["columns"]
    assert list(columns) == ["timestamp", "asset_id", "temperature", "pressure"]
    assert columns["temperature"]["kind"] == "numeric"
    assert columns["temperature"]["missing"] == 1
    assert columns["temperature"]["mean"] == 20.0
    assert columns["pressure"]["mean"] == 2.5
    assert columns["asset_id"] == {
        "count": 3,
        "missing": 1,
        "kind": "categorical",
        "distinct": 2,
        "top": {"P-1": 2, "P-2": 1},
    }
    assert columns["timestamp"] == {
        "count": 4,
        "missing": 0,
        "kind": "timestamp",
        "min": "2026-01-01T00:00:00+00:00",
        "max": "2026-01-03T12:30:00+00:00",
    }


def test_categorical_top_values_are_ordered_by_count_then_name():
    frame = pd.DataFrame({"kind": ["b", "a", "c", "b", "a", "d", "b"]})
    top = profile_table(frame, [])["columns"]["kind"]["top"]
    assert list(top.items()) == [("b", 3), ("a", 2), ("c", 1), ("d", 1)]


def test_categorical_top_is_limited_to_twenty():
    frame = pd.DataFrame({"asset": [f"A-{i:03d}" for i in range(50)]})
    column = profile_table(frame, [])["columns"]["asset"]
    assert column["distinct"] == 50
    assert len(column["top"]) == 20


def test_profile_is_json_serializable_and_reproducible(frame):
    first = profile_table(frame, ["temperature", "pressure"])
    second = profile_table(frame.copy(), ["temperature", "pressure"])
    text = json.dumps(first, sort_keys=True, allow_nan=False)
    assert text == json.dumps(second, sort_keys=True, allow_nan=False)
    assert json.loads(text) == first


def test_profile_of_all_missing_timestamp_column():
    frame = pd.DataFrame({"t": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns, UTC]")})
    column = profile_table(frame, [])["columns"]["t"]
    assert column == {"count": 0, "missing": 2, "kind": "timestamp", "min": None, "max": None}
    assert not any(isinstance(v, float) and math.isnan(v) for v in column.values())


def test_image_statistics_brightness_contrast_and_sharpness() -> None:
    import numpy as np

    from shopfloor.common.images import IMAGE_STATISTICS, image_statistics

    flat = image_statistics(np.full((8, 8), 100, np.uint8))
    assert tuple(flat) == IMAGE_STATISTICS and flat == {"brightness": 100.0, "contrast": 0.0, "sharpness": 0.0}
    checker = (np.indices((8, 8)).sum(axis=0) % 2 * 255).astype(np.uint8)
    sharp = image_statistics(checker[..., None])
    soft = image_statistics(np.full((8, 8, 3), 127, np.uint8))
    assert sharp["sharpness"] > 1e5 and soft["sharpness"] == 0.0 and sharp["brightness"] == 127.5
