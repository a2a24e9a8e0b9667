"""The monitor on real payload logs of a real model: no false alarm on the training distribution, drift on an
ageing plant, clear errors on bad input, and the whole loop through the CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shopfloor.common.errors import DataValidationError
from shopfloor.components.monitor.drift import DriftThresholds
from shopfloor.components.monitor.monitor import current_window, load_reference, monitor_window
from shopfloor.components.monitor.policy import RetrainState, decide
from shopfloor.contracts.model_store import ModelStore
from shopfloor.contracts.payload_log import PayloadLogger, read_payload_logs

SHOPFLOOR = str(Path(sys.executable).with_name("shopfloor"))
AGEING = {"vibration_mm_s": 1.6, "temperature_c": 1.15, "differential_pressure_bar": 1.8}  # multiplicative


def every_window(trained_windows) -> np.ndarray:
    """Windows from every asset, in time order per asset: what the plant sends the served model."""
    return trained_windows.x[::2]


def aged(windows: np.ndarray, features: list[str]) -> np.ndarray:
    """The same plant after months of wear: higher vibration, hotter, fouled exchangers."""
    out = windows.copy()
    for name, factor in AGEING.items():
        out[..., features.index(name)] *= factor
    return out


def log_windows(folder: Path, version: str, windows: np.ndarray, batch: int = 3) -> list:
    logger = PayloadLogger(str(folder), "pm", version, flush_interval_s=60)
    for start in range(0, len(windows), batch):
        chunk = windows[start : start + batch]
        logger.record(f"req-{start}", "v1", chunk, {"failure_probability": [0.1] * len(chunk)})
    logger.close()
    return read_payload_logs(str(folder), "pm")


def test_no_alarm_on_the_training_distribution(published_model, trained_windows, tmp_path) -> None:
    reference = load_reference(str(published_model))
    records = log_windows(tmp_path, reference.model_version, every_window(trained_windows))
    result = monitor_window(current_window(records, reference), reference, DriftThresholds(), 0.25)
    assert result.drift.enough_data and not result.drifted, result.summary


def test_an_ageing_plant_is_detected(published_model, trained_windows, tmp_path) -> None:
    reference = load_reference(str(published_model))
    windows = aged(every_window(trained_windows), reference.features)
    records = log_windows(tmp_path, reference.model_version, windows)
    result = monitor_window(current_window(records, reference), reference, DriftThresholds(), 0.25)
    assert result.drifted
    assert set(AGEING) <= set(result.drift.drifted)
    assert "drift in" in result.summary and "vibration_mm_s" in result.summary


def test_logs_of_another_version_are_refused(published_model, trained_windows, tmp_path) -> None:
    reference = load_reference(str(published_model))
    records = log_windows(tmp_path, "v-someotherone", every_window(trained_windows)[:30])
    with pytest.raises(DataValidationError, match="no records of model version v-test0000001; found v-someotherone"):
        current_window(records, reference)


def test_a_profile_that_does_not_match_the_features_is_refused(published_model, trained_windows, tmp_path) -> None:
    reference = load_reference(str(published_model))
    records = log_windows(tmp_path, reference.model_version, every_window(trained_windows)[:30, :, :6])
    with pytest.raises(DataValidationError, match=r"inputs of shape \[3, 24, 6\].*temperature_c"):
        current_window(records, reference)


def test_an_empty_window_is_not_enough_data_never_a_retrain(published_model, tmp_path) -> None:
    reference = load_reference(str(published_model))
    result = monitor_window(current_window([], reference), reference, DriftThresholds(), 0.25)
    assert not result.drift.enough_data and not result.drifted
    from shopfloor.common.config import RetrainPolicy

    decision = decide(
        result.drifted,
        result.drift.enough_data,
        result.summary,
        RetrainPolicy(mode="auto"),
        RetrainState(str(tmp_path / "state"), "pm"),
    )
    assert decision.action == "not-enough-data"


def test_anomaly_scores_are_a_plant_health_signal(published_detector, anomaly_windows, tmp_path) -> None:
    reference = load_reference(str(published_detector))
    assert reference.model_type == "anomaly-detection"
    info = json.loads((published_detector / "model" / "shopfloor_model.json").read_text())
    assert reference.alarm_threshold == info["threshold"]["value"]
    test = anomaly_windows.part("test")

    def served(windows: np.ndarray, folder: Path):
        from shopfloor.serving.server import load_window_model

        model = load_window_model(str(published_detector), "ad", payload_log_uri=str(folder))
        for start in range(0, len(windows), 4):
            model.predict_now(
                {"instances": np.where(np.isnan(windows[start : start + 4]), None, windows[start : start + 4]).tolist()}
            )
        model.payload_logger.close()
        return current_window(read_payload_logs(str(folder), "ad"), reference)

    quiet = served(test.x[test.failure == 0][:240], tmp_path / "quiet")
    healthy = monitor_window(quiet, reference, DriftThresholds(min_rows=50), 0.25, max_alarm_rate=0.1)
    assert healthy.health is not None and not healthy.health.abnormal, healthy.summary
    abnormal = served(test.x[test.failure == 1][:120], tmp_path / "abnormal")
    sick = monitor_window(abnormal, reference, DriftThresholds(min_rows=50), 0.25, max_alarm_rate=0.1)
    assert sick.health.abnormal and sick.health.alarm_rate > 0.3, sick.summary
    assert "plant health:" in sick.summary and sick.health.mean_score > healthy.health.mean_score


@pytest.mark.slow
def test_drift_requests_approval_and_the_approved_retrain_takes_over(
    published_model, trained_windows, small_demo_data, tmp_path
) -> None:
    from shopfloor.components.deploy.local_target import stop_server

    work = tmp_path / "work"
    version_dir = work / "model-store" / "pm" / published_model.name
    shutil.copytree(published_model, version_dir)
    ModelStore(str(work / "model-store")).set_latest("pm", published_model.name)
    reference = load_reference(str(version_dir))
    log_windows(work / "payload-logs", reference.model_version, aged(every_window(trained_windows), reference.features))
    config = tmp_path / "plant.yaml"
    config.write_text(
        "model_name: pm\nlabeling: {test_fraction: 0.34}\nmodel: {epochs: 12}\n"
        "gate: {min_roc_auc: 0.0, min_pr_auc: 0.0, max_rul_mae_hours: 10000}\n"
        "monitor: {retrain: {mode: approval, cooldown_hours: 0}}\n"
    )
    common = ["--config", str(config), "--work-dir", str(work)]
    env = dict(os.environ)
    try:
        first = subprocess.run(
            [SHOPFLOOR, "monitor", "predictive-maintenance", "--data", str(small_demo_data), "--no-hpo", *common],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert first.returncode == 0, first.stderr[-2000:]
        assert "decision: request-approval" in first.stdout
        request_id = re.search(r"approve: shopfloor approve (\S+) --by", first.stdout)[1]
        report = re.search(r"report \(HTML\): (\S+)", first.stdout)[1]
        assert "DRIFT" in Path(report).read_text()

        again = subprocess.run(
            [SHOPFLOOR, "monitor", "predictive-maintenance", "--data", str(small_demo_data), "--no-hpo", *common],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert "decision: suppressed" in again.stdout and request_id in again.stdout, "no second request"

        approved = subprocess.run(
            [SHOPFLOOR, "approve", request_id, "--by", "alice", "--note", "bearings worn", *common],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert approved.returncode == 0, approved.stderr[-3000:]
        assert f"{request_id}: approved by alice (bearings worn)" in approved.stdout
        assert f"beats or ties production {published_model.name}" in approved.stderr, "champion/challenger ran"
        latest = ModelStore(str(work / "model-store")).require_latest("pm")
        assert latest.version != published_model.name, "the retrained model took over"
        request = RetrainState(str(work / "monitor"), "pm").get(request_id)
        assert request.status == "started" and request.decided_by == "alice"
    finally:
        stop_server(work / "serving", "pm")


@pytest.mark.slow
def test_shopfloor_demo_drift(tmp_path) -> None:
    """The demo a new user runs: serve, replay an ageing plant, detect, request, approve, retrain, take over."""
    from shopfloor.components.deploy.local_target import running_server, stop_server

    work = tmp_path / "work"
    try:
        result = subprocess.run(
            [SHOPFLOOR, "demo-drift", "--work-dir", str(work)],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=900,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        out = result.stdout
        for step in ("1/4", "2/4", "3/4", "4/4"):
            assert step in out
        drifted = re.search(r"drift in \d+ of 7 sensors \(([^)]*)\)", out)[1].split(", ")
        assert {"vibration_mm_s", "temperature_c", "differential_pressure_bar"} <= set(drifted)
        assert "decision: request-approval" in out and "approved by demo-operator" in out
        first, second = re.findall(r"published:\s+\S+/(v-[0-9a-f]+)", out)
        assert first != second and running_server(work / "serving", "predictive-maintenance")["model_version"] == second
    finally:
        stop_server(work / "serving", "predictive-maintenance")


def test_cluster_approval_from_the_cli_is_started_by_the_next_monitoring_run(s3_bucket, tmp_path) -> None:
    """The operator approves against the cluster's state on S3; the scheduled monitor then says retrain."""
    from shopfloor.common.config import RetrainPolicy

    state_uri = f"s3://{s3_bucket}/shopfloor/monitor"
    state = RetrainState(state_uri, "predictive-maintenance")
    request_id = decide(True, True, "drift in 3 of 7 sensors", RetrainPolicy(), state).request_id
    result = subprocess.run(
        [SHOPFLOOR, "approve", request_id, "--state-uri", state_uri, "--by", "alice", "--note", "new pumps"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"{request_id}: approved by alice (new pumps)" in result.stdout
    assert "the next monitoring run starts the retrain" in result.stdout
    assert not (tmp_path / "shopfloor-runs").exists(), "nothing ran on this machine"
    decision = decide(False, True, "no drift", RetrainPolicy(), state)
    assert decision.action == "retrain" and decision.request_id == request_id
    state.record_run(decision.request_id)
    assert state.get(request_id).status == "started"


def _served_with_labels(published_detector, anomaly_windows, folder: Path, flip: bool) -> Path:
    """Serve test windows through the real model (payload logged), then write what really happened to them."""
    import pandas as pd

    from shopfloor.serving.server import load_window_model

    test = anomaly_windows.part("test")
    model = load_window_model(str(published_detector), "ad", payload_log_uri=str(folder / "logs"))
    rows = []
    for start in range(0, len(test.x), 8):
        batch = test.x[start : start + 8]
        model.predict_now({"instances": np.where(np.isnan(batch), None, batch).tolist()}, {"x-request-id": f"r{start}"})
        truth = test.failure[start : start + 8]
        rows += [{"request_id": f"r{start}", "index": i, "label": int(v != flip)} for i, v in enumerate(truth)]
    model.payload_logger.close()
    rows.append({"request_id": "never-served", "index": 0, "label": 1})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    return folder / "labels.csv"


@pytest.mark.parametrize("flip", [False, True], ids=["labels-agree", "world-changed"])
def test_performance_once_labels_arrive(published_detector, anomaly_windows, tmp_path, flip: bool) -> None:
    from shopfloor.common.config import MonitorConfig, RetrainPolicy
    from shopfloor.components.monitor.monitor import run_monitoring

    labels = _served_with_labels(published_detector, anomaly_windows, tmp_path, flip)
    store = tmp_path / "store"
    shutil.copytree(published_detector, store / "ad" / published_detector.name)
    ModelStore(str(store)).set_latest("ad", published_detector.name)
    settings = MonitorConfig(min_rows=10**6, retrain=RetrainPolicy(mode="auto"))  # too few rows to judge drift
    run = run_monitoring(str(store), str(tmp_path / "logs"), str(tmp_path / "state"), "ad", settings, 1, str(labels))
    found = run.result.performance
    assert found.labelled == len(anomaly_windows.part("test").x) and found.unmatched == 1
    assert set(found.drops) == {"roc_auc", "pr_auc", "f1", "recall"}
    if flip:  # faults where the model saw none and the reverse: the model no longer fits the plant
        assert found.degraded and found.metrics["roc_auc"] < 0.5
        assert run.decision.action == "retrain" and "performance DEGRADED" in run.decision.reason
    else:
        assert not found.degraded, found.summary
        assert run.decision.action == "not-enough-data"
    assert "performance" in run.report_html


def test_bad_labels_are_errors_naming_the_column(tmp_path) -> None:
    from shopfloor.components.monitor.performance import read_labels

    (tmp_path / "a.csv").write_text("request_id,outcome\nr1,1\n")
    with pytest.raises(DataValidationError, match="no column 'label'"):
        read_labels(str(tmp_path / "a.csv"))
    (tmp_path / "b.csv").write_text("request_id,label\nr1,1\nr2,maybe\n")
    with pytest.raises(DataValidationError, match=r"row 2: label 'maybe'.*expected 0 or 1"):
        read_labels(str(tmp_path / "b.csv"))
    (tmp_path / "c.csv").write_text("request_id,label\nr1,1\n")
    assert read_labels(str(tmp_path / "c.csv"))["index"].tolist() == [0]


def test_a_new_data_batch_is_compared_instead_of_the_logs(published_model, small_demo_data, tmp_path) -> None:
    import pandas as pd

    from shopfloor.components.monitor.monitor import batch_window

    reference = load_reference(str(published_model))
    sensors = pd.read_csv(small_demo_data / "sensors.csv")
    fresh = monitor_window(
        batch_window(str(small_demo_data / "sensors.csv"), reference), reference, DriftThresholds(), 0.25
    )
    assert fresh.drift.enough_data and not fresh.drifted, fresh.summary
    worn = sensors.copy()
    for name, factor in AGEING.items():
        worn[name] *= factor
    worn.to_parquet(tmp_path / "batch.parquet")
    aged_result = monitor_window(
        batch_window(str(tmp_path / "batch.parquet"), reference), reference, DriftThresholds(), 0.25
    )
    assert aged_result.drifted and set(AGEING) <= set(aged_result.drift.drifted)
    sensors.drop(columns=["vibration_mm_s"]).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DataValidationError, match="no column 'vibration_mm_s'.*the model's sensors"):
        batch_window(str(tmp_path / "short.csv"), reference)


def test_image_models_are_monitored_on_lighting_contrast_and_focus(vision_trained, tmp_path) -> None:
    """Served photos against the ingest profile: same station fine, a darker lamp drifts, so does a blurred lens."""
    from scipy import ndimage

    from shopfloor.common.vision_config import ImageDataConfig
    from shopfloor.components.ingest.images import ingest_images
    from shopfloor.families.visual_inspection.model import predict_probabilities
    from shopfloor.serving.server import load_window_model

    version = tmp_path / "store" / "vi" / "v-vision000001"
    shutil.copytree(vision_trained.model_dir, version / "model")
    test = vision_trained.images.part("test")
    scores = 1.0 - predict_probabilities(vision_trained.result.model, test.images)[:, test.ok_index]
    blessing = {"blessed": True, "model_version": version.name, "gate": {}, "reference_scores": scores.tolist()}
    (version / "blessing.json").write_text(json.dumps(blessing))
    profile = ingest_images(str(vision_trained.root), ImageDataConfig()).profile
    (version / "profile.json").write_text(json.dumps(profile))
    reference = load_reference(str(version))
    assert reference.features == ["brightness", "contrast", "sharpness"]
    assert reference.model_type == "visual-inspection"

    def served(images: np.ndarray, folder: Path):
        model = load_window_model(str(version), "vi", payload_log_uri=str(folder))
        for start in range(0, len(images), 8):
            model.predict_now({"instances": images[start : start + 8].tolist()})
        model.payload_logger.close()
        return current_window(read_payload_logs(str(folder), "vi"), reference)

    photos = vision_trained.images.images.astype(float)[:120]
    same = monitor_window(served(photos, tmp_path / "same"), reference, DriftThresholds(min_rows=50), 0.5)
    assert same.drift.enough_data and not same.drifted, same.summary
    dimmer = monitor_window(served(photos * 0.6, tmp_path / "dim"), reference, DriftThresholds(min_rows=50), 0.5)
    assert dimmer.drifted and "brightness" in dimmer.drift.drifted, dimmer.summary
    # a smudged or defocused lens: the same light, a softer picture (3x3 box blur)
    soft = ndimage.uniform_filter(photos, size=(1, 3, 3, 1))
    blurred = monitor_window(served(soft, tmp_path / "soft"), reference, DriftThresholds(min_rows=50), 0.5)
    assert blurred.drifted and "sharpness" in blurred.drift.drifted and "brightness" not in blurred.drift.drifted

    # a version published before sharpness was profiled is still monitored, on what its profile has
    del profile["sharpness"]
    (version / "profile.json").write_text(json.dumps(profile))
    assert load_reference(str(version)).features == ["brightness", "contrast"]
