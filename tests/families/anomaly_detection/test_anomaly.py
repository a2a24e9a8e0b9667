"""Anomaly detection: labeling in time order, a real autoencoder, its threshold, the gate; and real ECG data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopfloor.common.errors import DataValidationError
from shopfloor.components.ingest.ingest import ingest
from shopfloor.contracts.model_artifact import load_keras_model, load_model_info, write_model
from shopfloor.families.anomaly_detection.config import (
    AnomalyDetectionConfig,
    AnomalyGateConfig,
    AnomalyLabelingConfig,
    AutoencoderConfig,
)
from shopfloor.families.anomaly_detection.evaluation import (
    anomaly_gate,
    anomaly_metrics,
    detector_task,
    evaluate_detector,
    render_anomaly_report,
)
from shopfloor.families.anomaly_detection.labelling import abnormal_readings, label_anomaly_windows, time_split
from shopfloor.families.anomaly_detection.model import anomaly_scores, choose_threshold, train_autoencoder
from shopfloor.families.base import ModelRecord
from shopfloor.families.reporting import render_model_card

HOUR = 3_600_000_000_000


@pytest.fixture(scope="module")
def ingested(small_demo_data: Path):
    config = AnomalyDetectionConfig().resolve_data(small_demo_data)
    return ingest(config.data.sensors, config.data.events, config.data)


@pytest.fixture(scope="module")
def windows(ingested):
    return label_anomaly_windows(
        ingested.sensors, ingested.events, ingested.features, ["failure"], AnomalyLabelingConfig()
    )


@pytest.fixture(scope="module")
def detector(windows):
    return train_autoencoder(windows, AutoencoderConfig(epochs=12))


def test_readings_are_abnormal_in_the_band_around_each_event() -> None:
    times = np.arange(0, 100) * HOUR
    events = np.array([50 * HOUR, 20 * HOUR])  # unsorted on purpose
    abnormal = abnormal_readings(times, events, AnomalyLabelingConfig(before_hours=3, after_hours=1))
    assert np.flatnonzero(abnormal).tolist() == [17, 18, 19, 20, 21, 47, 48, 49, 50, 51]
    assert not abnormal_readings(times, np.array([], dtype=np.int64), AnomalyLabelingConfig()).any()


def test_time_split_keeps_each_assets_history_in_order() -> None:
    split = time_split(20, AnomalyLabelingConfig(validation_fraction=0.2, test_fraction=0.25))
    assert split.tolist() == [0] * 11 + [1] * 4 + [2] * 5


def test_windows_are_abnormal_before_failures_and_split_in_time(windows, ingested) -> None:
    assert windows.info["target"] == "anomaly"
    assert (windows.rul == -1).all()
    assert set(np.unique(windows.failure)) == {0, 1}
    for asset in np.unique(windows.asset):
        mine = windows.asset == asset
        ends, parts = windows.end_time[mine], windows.split[mine]
        assert (np.diff(parts[np.argsort(ends)]) >= 0).all(), "train, then validation, then test"
    failures = ingested.events[ingested.events["event_type"] == "failure"]
    first = failures.iloc[0]
    at = pd.Timestamp(first["timestamp"]).value
    near = (windows.asset == first["asset_id"]) & (windows.end_time <= at) & (windows.end_time > at - 6 * HOUR)
    assert near.any() and windows.failure[near].all(), "windows in the hours before a failure are abnormal"


def test_labeling_refuses_splits_that_leave_nothing_to_learn(ingested) -> None:
    config = AnomalyLabelingConfig(validation_fraction=0.4, test_fraction=0.45)
    with pytest.raises(DataValidationError, match="labeling.test_fraction"):
        label_anomaly_windows(ingested.sensors, ingested.events, ingested.features, ["failure"], config)
    with pytest.raises(DataValidationError, match="labeling.window"):
        label_anomaly_windows(
            ingested.sensors.head(5), ingested.events, ingested.features, ["failure"], AnomalyLabelingConfig()
        )


def test_threshold_by_best_f1_or_percentile() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.25, 0.9, 0.8])
    labels = np.array([0, 0, 0, 0, 1, 1])
    best = choose_threshold(scores, labels, AutoencoderConfig())
    assert best["method"] == "best-f1" and best["value"] == pytest.approx(0.8) and best["validation_f1"] == 1.0
    normal_only = choose_threshold(scores[:4], labels[:4], AutoencoderConfig(threshold_percentile=50))
    assert normal_only == {"method": "percentile", "percentile": 50.0, "value": pytest.approx(0.225)}
    forced = choose_threshold(scores, labels, AutoencoderConfig(threshold="percentile", threshold_percentile=50))
    assert forced["method"] == "percentile"
    with pytest.raises(DataValidationError, match="model.threshold"):
        choose_threshold(scores[:4], labels[:4], AutoencoderConfig(threshold="best-f1"))


def test_metrics_and_gate_with_and_without_abnormal_windows() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.6, 0.25, 0.9, 0.4])
    metrics = anomaly_metrics(labels, scores, threshold=0.5)
    assert metrics["false_alarm_rate"] == 0.25 and metrics["recall"] == 0.5 and metrics["precision"] == 0.5
    gate = anomaly_gate(metrics, AnomalyGateConfig(max_false_alarm_rate=0.3, min_f1=0.5, min_recall=0.5), 0.5)
    assert gate["passed"] and [c["metric"] for c in gate["checks"]] == ["false_alarm_rate", "f1", "recall"]
    quiet = anomaly_metrics(labels[:4], scores[:4], threshold=0.5)
    assert "f1" not in quiet and "roc_auc" not in quiet
    assert [c["metric"] for c in anomaly_gate(quiet, AnomalyGateConfig(), 0.5)["checks"]] == ["false_alarm_rate"]


def test_autoencoder_scores_separate_abnormal_windows(detector, windows) -> None:
    info = detector.info
    assert info["model_type"] == "anomaly-detection" and info["threshold"]["method"] == "best-f1"
    evaluation = evaluate_detector(detector.model, windows, info["threshold"]["value"], AnomalyGateConfig())
    assert evaluation.metrics["roc_auc"] > 0.85
    assert evaluation.metrics["false_alarm_rate"] < 0.05
    test = windows.part("test")
    assert np.median(evaluation.scores[test.failure == 1]) > 3 * np.median(evaluation.scores[test.failure == 0])


def test_score_is_the_error_over_present_readings(detector, windows) -> None:
    test = windows.part("test").x
    batch = test[~np.isnan(test).any(axis=(1, 2))][:4].copy()
    outputs = detector.model.predict(batch, verbose=0)
    # with every reading present, the window's score is the mean of its per-sensor errors
    assert outputs["score"] == pytest.approx(outputs["feature_errors"].mean(axis=1), rel=1e-5)
    batch[:, :5, 0] = np.nan  # gaps are ignored, not read as zeros
    scores = anomaly_scores(detector.model, batch)
    assert np.isfinite(scores).all()


def test_saved_detector_round_trips_with_its_threshold(detector, windows, tmp_path: Path) -> None:
    write_model(detector, str(tmp_path / "model"))
    loaded = load_keras_model(tmp_path / "model")
    batch = windows.part("test").x[:16]
    assert anomaly_scores(loaded, batch) == pytest.approx(anomaly_scores(detector.model, batch), rel=1e-5)
    assert load_model_info(tmp_path / "model")["threshold"] == detector.info["threshold"]


def test_report_and_model_card(detector, windows, ingested) -> None:
    evaluation = evaluate_detector(detector.model, windows, detector.info["threshold"]["value"], AnomalyGateConfig())
    report = render_anomaly_report(evaluation, detector.history, "ad")
    assert report.count("<img") >= 4 and "Reconstruction error over time" in report
    info = json.loads(json.dumps(detector.info))
    record = ModelRecord("ad", "v-1", info, detector.history, ingested.profile)
    card = render_model_card(record, windows.info, evaluation, detector_task(info))
    assert "anomaly score (autoencoder reconstruction error)" in card and "| split | windows | abnormal |" in card


@pytest.mark.slow  # starts a server process: runs with the whole suite
def test_detector_on_a_real_ecg_it_has_never_seen(tmp_path: Path) -> None:
    """sktime's MIT-BIH ECG excerpt, through the plant layout: learned normal beats, the abnormal segment stands out."""
    from shopfloor.demo.real_sensors import write_ecg_plant_layout
    from shopfloor.families.scenarios import load_config

    paths = write_ecg_plant_layout(tmp_path)
    config = load_config(paths["config"]).resolve_data(tmp_path)
    data = ingest(config.data.sensors, config.data.events, config.data)
    windows = label_anomaly_windows(
        data.sensors, data.events, data.features, config.data.failure_values, config.labeling
    )
    assert windows.info["class_balance"]["train"]["positives"] == 0, "the abnormal segment is in the held-out part"
    trained = train_autoencoder(windows, config.model)
    evaluation = evaluate_detector(trained.model, windows, trained.info["threshold"]["value"], config.gate)
    assert trained.info["threshold"]["method"] == "percentile", "no abnormal validation windows to fit F1 on"
    assert evaluation.metrics["roc_auc"] > 0.75
    assert evaluation.metrics["false_alarm_rate"] <= 0.05
    assert evaluation.metrics["precision"] >= 0.8
