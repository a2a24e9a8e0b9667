"""Train and evaluate on a small real plant: real Keras training, real saved artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shopfloor.components.ingest.ingest import ingest
from shopfloor.contracts.model_artifact import MODEL_FILE, MODEL_INFO, SAVED_MODEL_DIR, load_keras_model, write_model
from shopfloor.families.base import ModelRecord
from shopfloor.families.predictive_maintenance.config import (
    GateConfig,
    LabelingConfig,
    ModelConfig,
    PredictiveMaintenanceConfig,
)
from shopfloor.families.predictive_maintenance.evaluation import (
    classification_metrics,
    evaluate_model,
    quality_gate,
    regression_metrics,
)
from shopfloor.families.predictive_maintenance.labelling import label_windows
from shopfloor.families.predictive_maintenance.model import train_model
from shopfloor.families.predictive_maintenance.report import model_task, render_report, render_summary
from shopfloor.families.reporting import render_model_card
from shopfloor.families.shared import feature_statistics


@pytest.fixture(scope="module")
def ingested(small_demo_data: Path):
    config = PredictiveMaintenanceConfig().resolve_data(small_demo_data)
    return ingest(config.data.sensors, config.data.events, config.data)


@pytest.fixture(scope="module")
def windows(ingested):
    return label_windows(
        ingested.sensors, ingested.events, ingested.features, ["failure"], LabelingConfig(test_fraction=0.34)
    )


@pytest.fixture(scope="module")
def trained(windows):
    return train_model(windows, ModelConfig(epochs=3, hidden_units=[16], conv_filters=8), data_sha256="abc")


def test_feature_statistics_ignore_missing_readings() -> None:
    x = np.array([[[1.0, np.nan], [3.0, 10.0]], [[np.nan, 20.0], [5.0, np.nan]]])
    mean, std = feature_statistics(x)
    assert mean == pytest.approx([3.0, 15.0])
    assert std == pytest.approx([2.0, np.sqrt(50.0)])
    _, constant_std = feature_statistics(np.ones((2, 3, 1)))
    assert constant_std == [1.0], "a constant sensor must not divide by zero"


def test_model_takes_raw_windows_with_gaps(trained, windows) -> None:
    assert trained.info["epochs_run"] >= 1
    assert set(trained.history) >= {"loss", "val_loss"}
    raw = windows.part("test").x[:8].copy()
    raw[:, :, 0] = np.nan  # a sensor the site does not have
    out = trained.model.predict(raw, verbose=0)
    assert np.isfinite(out["failure"]).all() and np.isfinite(out["rul"]).all()
    assert ((out["rul"] >= 0) & (out["rul"] <= windows.info["rul_cap_hours"])).all()
    assert trained.info["normalization"]["mean"] == pytest.approx(feature_statistics(windows.part("train").x)[0])


def test_saved_model_folder_round_trips(trained, windows, tmp_path: Path) -> None:
    import tensorflow as tf

    folder = tmp_path / "model"
    write_model(trained, str(folder))
    assert {MODEL_FILE, SAVED_MODEL_DIR, MODEL_INFO} <= {p.name for p in folder.iterdir()}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    info = json.loads((folder / MODEL_INFO).read_text())
    assert info["features"] == windows.features and info["training_data"]["windows_sha256"] == "abc"
    x = windows.part("test").x[:16]
    expected = trained.model.predict(x, verbose=0)
    reloaded = load_keras_model(folder).predict(x, verbose=0)
    np.testing.assert_allclose(reloaded["failure"], expected["failure"], rtol=1e-5, atol=1e-6)
    saved = tf.saved_model.load(str(folder / SAVED_MODEL_DIR))  # keep a reference: it owns the variables
    served = saved.serve(tf.constant(x))
    np.testing.assert_allclose(served["rul"].numpy(), expected["rul"], rtol=1e-4, atol=1e-3)


def test_a_failed_write_leaves_no_model_folder(trained, tmp_path: Path) -> None:
    class Unsaveable:
        def save(self, path):
            Path(path).write_bytes(b"half")
            raise OSError("disk full")

    broken = type(trained)(model=Unsaveable(), history={}, info={})
    with pytest.raises(OSError):
        write_model(broken, str(tmp_path / "model"))
    assert list(tmp_path.iterdir()) == []


def test_classification_metrics_on_known_scores() -> None:
    y = np.array([0, 0, 1, 1])
    metrics = classification_metrics(y, np.array([0.1, 0.6, 0.4, 0.9]), threshold=0.5)
    assert metrics["roc_auc"] == pytest.approx(0.75)
    assert metrics["precision"] == pytest.approx(0.5) and metrics["recall"] == pytest.approx(0.5)
    assert metrics["f1"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one class"):
        classification_metrics(np.zeros(4), np.ones(4), 0.5)


def test_regression_metrics_skip_unknown_rul() -> None:
    metrics = regression_metrics(np.array([10.0, -1.0, 20.0]), np.array([12.0, 500.0, 16.0]))
    assert metrics["rul_mae_hours"] == pytest.approx(3.0)
    assert metrics["rul_known_windows"] == 2


def test_quality_gate_fails_on_any_threshold() -> None:
    good = {"roc_auc": 0.9, "pr_auc": 0.7, "rul_mae_hours": 30.0}
    assert quality_gate(good, GateConfig(), {"value": 0.4})["passed"] is True
    verdict = quality_gate({**good, "rul_mae_hours": 100.0}, GateConfig(), {"value": 0.4})
    assert verdict["passed"] is False
    assert [c["metric"] for c in verdict["checks"] if not c["passed"]] == ["rul_mae_hours"]


def test_evaluation_report_and_model_card(trained, windows, ingested) -> None:
    evaluation = evaluate_model(trained.model, windows, GateConfig(min_roc_auc=0.99), {"method": "fixed", "value": 0.5})
    assert evaluation.gate["passed"] is False
    assert np.array(evaluation.confusion_matrix).sum() == windows.part("test").failure.size
    assert evaluation.roc["fpr"][0] == 0.0 and evaluation.roc["tpr"][-1] == 1.0
    assert all(0 <= t <= 1 for t in evaluation.roc["thresholds"])
    html = render_report(evaluation, trained.history, "pumps")
    assert html.count("data:image/png;base64,") == 6 and "FAILED - not deployable" in html
    assert "FAIL" in render_summary(evaluation, "pumps")
    record = ModelRecord("pumps", "v-123", trained.info, trained.history, ingested.profile)
    card = render_model_card(record, windows.info, evaluation, model_task(trained.info))
    assert ingested.profile["sources"]["sensors"]["sha256"] in card
    assert "FAILED (not deployable)" in card and "v-123" in card
    for feature in windows.features:
        assert f"| {feature} |" in card


@pytest.mark.parametrize(
    ("method", "expected"),
    [("best-f1", 0.6), ("target-recall", 0.3), ("min-cost", 0.3), ("fixed", 0.5)],
)
def test_the_alarm_threshold_is_chosen_on_validation_for_the_operating_point(method: str, expected: float) -> None:
    from shopfloor.families.shared import operating_threshold

    # four failures among ten windows; the 0.3-scored failure costs four false alarms to catch
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    score = np.array([0.1, 0.2, 0.35, 0.4, 0.45, 0.5, 0.3, 0.6, 0.7, 0.8])
    chosen = operating_threshold(y, score, method, fixed=0.5, target_recall=1.0, miss_cost=10.0)
    assert chosen["value"] == pytest.approx(expected) and chosen["method"] == method
    if method == "target-recall":
        assert chosen["validation_recall"] == 1.0
    quiet = operating_threshold(np.zeros(5, int), score[:5], "best-f1", fixed=0.5)
    assert quiet["value"] == 0.5 and quiet["method"].startswith("fixed (no failures")


def test_false_alarms_count_each_alarm_once_per_asset_week() -> None:
    from shopfloor.families.predictive_maintenance.evaluation import false_alarms_per_asset_week

    hour = 3600 * 10**9
    end_time = np.arange(24 * 7) * hour  # one asset, one week of hourly windows
    score = np.zeros(24 * 7)
    score[10:15] = 0.9  # one false alarm lasting five windows
    score[50] = 0.9  # another
    failure = np.zeros(24 * 7, int)
    failure[100:104] = 1
    score[101:104] = 0.9  # a caught failure: not a false alarm
    rate = false_alarms_per_asset_week(failure, score, 0.5, np.array(["A"] * (24 * 7)), end_time)
    assert rate == pytest.approx(2 / ((24 * 7 - 1) / (24 * 7)))
