"""Data drift against a training profile: calibrated under no drift, detects real shifts, guards tiny effects."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from shopfloor.common.errors import DataValidationError
from shopfloor.common.profile import numeric_profile, profile_table
from shopfloor.components.monitor.drift import (
    DriftReport,
    DriftThresholds,
    FeatureDrift,
    detect_drift,
    feature_drift,
    histogram_reference,
    prediction_drift,
)

REFERENCE_ROWS = 20_000
CURRENT_ROWS = 2_000
SEEDS = 200
FALSE_ALARM_BOUND = 0.02

# (kind, a, b): normal(mean=a, std=b) or lognormal(mu=a, sigma=b); sensors in plants are often skewed.
DISTRIBUTIONS = [
    ("normal", 0.0, 1.0),
    ("normal", 50.0, 5.0),
    ("normal", -3.0, 0.2),
    ("normal", 1000.0, 120.0),
    ("normal", 7.5, 2.5),
    ("normal", 0.0, 0.01),
    ("normal", 20.0, 3.0),
    ("normal", 300.0, 40.0),
    ("normal", -10.0, 4.0),
    ("normal", 2.0, 0.5),
    ("lognormal", 0.0, 1.0),
    ("lognormal", 1.0, 0.5),
    ("lognormal", 3.0, 0.25),
    ("lognormal", -1.0, 0.8),
    ("lognormal", 0.5, 1.2),
    ("lognormal", 2.0, 0.3),
    ("lognormal", 0.0, 0.6),
    ("lognormal", 4.0, 0.1),
    ("lognormal", -2.0, 1.0),
    ("lognormal", 1.5, 0.9),
]
FEATURES = [f"{kind}_{i}" for i, (kind, _, _) in enumerate(DISTRIBUTIONS)]


def _sample(rng: np.random.Generator, rows: int) -> np.ndarray:
    columns = [
        rng.normal(a, b, rows) if kind == "normal" else rng.lognormal(a, b, rows) for kind, a, b in DISTRIBUTIONS
    ]
    return np.column_stack(columns)


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, dict]:
    sample = _sample(np.random.default_rng(12345), REFERENCE_ROWS)
    columns = {name: numeric_profile(pd.Series(sample[:, i])) for i, name in enumerate(FEATURES)}
    return sample, columns


@pytest.mark.parametrize(
    ("rows", "bound", "psi_bound"),
    [(CURRENT_ROWS, FALSE_ALARM_BOUND, 0.1), (200, 0.05, 0.5)],  # 200 = min_rows: PSI noise ~ chi2(19)/rows
)
def test_false_alarm_rate_on_fresh_samples_of_the_training_distribution(reference, rows, bound, psi_bound):
    _, columns = reference
    alarms = ks_rejections = 0
    worst_psi = 0.0
    for seed in range(SEEDS):
        report = detect_drift(_sample(np.random.default_rng(seed), rows), FEATURES, columns)
        assert report.enough_data and report.rows == rows
        alarms += len(report.drifted)
        ks_rejections += sum(f.ks_pvalue < DriftThresholds().alpha for f in report.features.values())
        worst_psi = max(worst_psi, *(f.psi for f in report.features.values()))
    checks = SEEDS * len(FEATURES)
    alarm_rate, ks_rate = alarms / checks, ks_rejections / checks
    print(
        f"\nno drift, {SEEDS} seeds x {len(FEATURES)} features x {rows} rows: "
        f"false-alarm rate {alarm_rate:.4f} ({alarms}/{checks}), KS p<0.01 alone {ks_rate:.4f}, max PSI {worst_psi:.4f}"
    )
    assert alarm_rate <= bound
    assert ks_rate <= 0.03  # nominal 0.01; the smoothed 20-bin reference adds a little
    assert worst_psi < psi_bound


def test_shifted_sensors_are_flagged_and_the_others_are_not(reference):
    _, columns = reference
    current = _sample(np.random.default_rng(7), CURRENT_ROWS)
    current[:, 0] += 0.5 * 1.0  # mean shift of 0.5 std
    current[:, 1] = 50.0 + 1.5 * (current[:, 1] - 50.0)  # scale x1.5
    current[:, 10] = current[0, 10]  # stuck lognormal sensor: one constant value
    current[np.random.default_rng(8).random(CURRENT_ROWS) < 0.5, 11] = np.nan  # went missing half the time

    report = detect_drift(current, FEATURES, columns)

    assert report.drifted == [FEATURES[0], FEATURES[1], FEATURES[10], FEATURES[11]]
    assert report.share_drifted == pytest.approx(4 / 20)
    shifted = report.features[FEATURES[0]]
    assert {"psi", "ks"} <= set(shifted.reasons)
    assert shifted.wasserstein_normalized == pytest.approx(0.5, abs=0.07)
    assert "ks" in report.features[FEATURES[1]].reasons
    assert report.features[FEATURES[1]].ks_pvalue < 1e-10
    stuck = report.features[FEATURES[10]]
    assert stuck.psi >= 0.2 and stuck.ks_statistic > 0.3
    missing = report.features[FEATURES[11]]
    assert missing.reasons == ("missing",)
    assert missing.missing_change == pytest.approx(0.5, abs=0.04)
    assert missing.count == CURRENT_ROWS - np.isnan(current[:, 11]).sum()


def test_tiny_shift_on_a_huge_sample_is_not_drift(reference):
    _, columns = reference
    values = np.random.default_rng(3).normal(0.0, 1.0, 500_000) + 0.02
    result = feature_drift(values, columns[FEATURES[0]], name=FEATURES[0])
    assert result.wasserstein_normalized < 0.05
    assert result.psi < 0.01
    assert not result.drifted and result.reasons == ()


def test_statistics_match_scipy_against_the_raw_training_sample(reference):
    sample, columns = reference
    for i in (0, 10, 14):  # normal, lognormal, heavy-tailed lognormal
        values = _sample(np.random.default_rng(21), 5_000)[:, i] * 1.1
        result = feature_drift(values, columns[FEATURES[i]], name=FEATURES[i])
        raw_w = stats.wasserstein_distance(values, sample[:, i])
        raw_ks = stats.ks_2samp(values, sample[:, i]).statistic
        # the profile summarizes the raw sample to within ~0.015 std (heavy tails lose the most)
        assert result.wasserstein == pytest.approx(raw_w, abs=0.02 * sample[:, i].std())
        assert result.ks_statistic == pytest.approx(raw_ks, abs=0.01)


def test_too_few_rows_mark_nothing_drifted(reference):
    _, columns = reference
    current = _sample(np.random.default_rng(5), 199) + 100.0  # everything far off, but only 199 rows
    report = detect_drift(current, FEATURES, columns)
    assert not report.enough_data
    assert report.drifted == [] and report.share_drifted == 0.0
    assert all(not f.drifted for f in report.features.values())
    assert report.features[FEATURES[0]].psi > 1  # the statistics are still there to read

    empty = detect_drift(np.empty((0, len(FEATURES))), FEATURES, columns)
    assert isinstance(empty, DriftReport)
    assert empty.rows == 0 and not empty.enough_data and empty.drifted == []
    assert all(math.isnan(f.psi) and f.count == 0 for f in empty.features.values())


def test_a_feature_with_too_few_present_values_is_judged_on_missing_share_only(reference):
    _, columns = reference
    values = np.full(1_000, np.nan)
    values[:100] = 5.0  # far off, but only 100 present values
    result = feature_drift(values, columns[FEATURES[0]], name=FEATURES[0])
    assert result.reasons == ("missing",)


def test_errors_name_the_feature(reference):
    _, columns = reference
    current = _sample(np.random.default_rng(1), 300)

    with pytest.raises(DataValidationError) as unknown:
        detect_drift(current, [*FEATURES[:-1], "vibration_rms"], columns)
    assert unknown.value.source == "reference profile" and unknown.value.field == "vibration_rms"
    assert "vibration_rms" in str(unknown.value)

    with pytest.raises(DataValidationError) as absent:
        detect_drift(current[:, :-1], FEATURES[:-1], columns)
    assert absent.value.source == "current data" and absent.value.field == FEATURES[-1]

    with pytest.raises(DataValidationError) as shape:
        detect_drift(current, FEATURES[:-1], columns)
    assert shape.value.source == "current data"


def test_ingest_profile_columns_non_numeric_ignored_and_not_accepted_as_features():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2026-01-01", periods=1_000, freq="min", tz="UTC"),
            "asset_id": rng.choice(["P-1", "P-2"], 1_000),
            "temperature": rng.normal(60, 5, 1_000),
        }
    )
    columns = profile_table(frame, ["temperature"])["columns"]
    report = detect_drift(rng.normal(60, 5, (400, 1)), ["temperature"], columns)
    assert report.drifted == [] and report.enough_data

    with pytest.raises(DataValidationError) as categorical:
        detect_drift(np.zeros((400, 2)), ["temperature", "asset_id"], columns)
    assert categorical.value.source == "reference profile" and categorical.value.field == "asset_id"
    assert "categorical" in str(categorical.value)


def test_constant_training_column():
    reference = histogram_reference(np.full(5_000, 3.0))
    same = feature_drift(np.full(1_000, 3.0), reference, name="flag")
    assert same.ks_statistic == 0.0 and same.wasserstein == 0.0 and not same.drifted
    moved = feature_drift(np.random.default_rng(0).normal(3.0, 1.0, 1_000), reference, name="flag")
    assert moved.drifted and moved.wasserstein_normalized == math.inf


def test_prediction_drift_on_failure_probabilities():
    rng = np.random.default_rng(11)
    reference = rng.beta(2, 5, 20_000)
    shifted = prediction_drift(reference, rng.beta(5, 2, 3_000))
    assert isinstance(shifted, FeatureDrift) and shifted.name == "prediction"
    assert shifted.drifted and shifted.psi > 1 and shifted.ks_pvalue < 1e-10

    resample = prediction_drift(reference, rng.beta(2, 5, 3_000))
    assert not resample.drifted and resample.psi < 0.05

    profile = histogram_reference(reference, bins=10)
    assert len(profile["histogram"]["counts"]) == 10 and profile["kind"] == "numeric"
    assert prediction_drift(profile, rng.beta(5, 2, 3_000)).drifted


@pytest.mark.parametrize("rows", [500, 5_000])
def test_ks_pvalue_is_kstwo_at_the_effective_sample_size(reference, rows):
    _, columns = reference
    values = np.random.default_rng(4).normal(0.05, 1.0, rows)
    result = feature_drift(values, columns[FEATURES[0]], name=FEATURES[0])
    effective = round(rows * REFERENCE_ROWS / (rows + REFERENCE_ROWS))
    assert result.ks_pvalue == pytest.approx(stats.kstwo.sf(result.ks_statistic, effective), rel=0.01, abs=1e-6)
