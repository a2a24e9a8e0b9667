"""Integrated gradients and the explain step on a real trained model."""

from __future__ import annotations

import numpy as np
import pytest

from shopfloor.common.attributions import integrated_gradients, mean_baseline
from shopfloor.contracts.model_artifact import load_keras_model, load_model_info
from shopfloor.families.predictive_maintenance.explanation import (
    explain_windows,
    render_explain_report,
    render_explain_summary,
    sample_windows,
)


@pytest.fixture(scope="module")
def model_and_info(published_model):
    return load_keras_model(published_model), load_model_info(published_model)


def test_attributions_are_complete_and_respect_gaps(model_and_info, trained_windows) -> None:
    model, info = model_and_info
    x = trained_windows.part("test").x[:6].copy()
    x[0, :, 3] = np.nan
    baseline = mean_baseline(info["normalization"]["mean"], info["window"])
    result = integrated_gradients(model, x, baseline, steps=128)
    assert result.values.shape == x.shape
    np.testing.assert_allclose(result.values.sum(axis=(1, 2)), result.score - result.baseline_score, atol=0.01)
    assert (result.values[0, :, 3] == 0).all()
    direct = np.asarray(model(x, training=False)["failure"]).ravel()
    np.testing.assert_allclose(result.score, direct, atol=1e-5)


def test_attributions_of_the_baseline_itself_are_zero(model_and_info) -> None:
    model, info = model_and_info
    baseline = mean_baseline(info["normalization"]["mean"], info["window"])
    result = integrated_gradients(model, baseline[None], baseline, steps=8)
    assert np.abs(result.values).max() == 0.0


def test_sample_keeps_positives_first_and_is_seeded() -> None:
    labels = np.array([0, 1, 0, 1, 0, 0, 1, 0, 0, 0])
    scores = np.array([0.1, 0.9, 0.2, 0.5, 0.3, 0.1, 0.7, 0.0, 0.2, 0.4])
    chosen = sample_windows(labels, scores, size=4, seed=1)
    assert len(chosen) == 4 and {1, 6} <= set(chosen.tolist())
    assert (sample_windows(labels, scores, size=4, seed=1) == chosen).all()


def test_explain_step_report(model_and_info, trained_windows) -> None:
    model, info = model_and_info
    found = explain_windows(model, trained_windows, info, sample_size=64, threshold=0.3)
    assert set(found.importance) == set(trained_windows.features)
    assert all(value >= 0 for value in found.importance.values())
    assert set(found.cases) <= {"most confident alarm", "false alarm", "missed failure", "quiet window"}
    assert found.cases, "at least one showcase window"
    html = render_explain_report(found, "pumps")
    assert html.count("data:image/png;base64,") == 1 + len(found.cases)
    summary = render_explain_summary(found, "pumps")
    ranked = sorted(found.importance, key=found.importance.get, reverse=True)
    assert summary.index(f"| {ranked[0]} |") < summary.index(f"| {ranked[-1]} |")
