"""The classical challenger: LightGBM on window statistics, trained beside the network, chosen on validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shopfloor.components.evaluate.evaluate import EvaluationPaths, run_evaluate
from shopfloor.components.train.train import run_train
from shopfloor.contracts.model_artifact import CLASSICAL_DIR, load_model_info, model_version
from shopfloor.contracts.windows import write_windows
from shopfloor.families.base import StepInputs
from shopfloor.families.classical import (
    STATISTICS,
    BoostedImages,
    BoostedWindows,
    PcaDetector,
    as_engine,
    choose_engine,
    fit_boosted_windows,
    fit_pca_detector,
    load_scoring_model,
    other_engines,
    window_statistics,
)
from shopfloor.families.predictive_maintenance.config import GateConfig, ModelConfig
from shopfloor.families.shared import average_precision
from shopfloor.serving.predictor import WindowModel

# a weak network (one epoch, few units): on the small plant the trees beat it on validation, deterministically
WEAK_NETWORK = ModelConfig(epochs=1, hidden_units=[4], conv_filters=0).model_dump()
LENIENT = GateConfig(min_roc_auc=0.0, min_pr_auc=0.0, max_rul_mae_hours=1e6)


def test_window_statistics_per_sensor_with_missing_readings() -> None:
    x = np.array([[[1.0, 5.0], [2.0, np.nan], [4.0, np.nan]]], dtype=np.float32)  # 1 window, 3 readings, 2 sensors
    found = window_statistics(x).reshape(2, len(STATISTICS))
    first = dict(zip(STATISTICS, found[0], strict=True))
    assert first["mean"] == pytest.approx(7 / 3) and first["min"] == 1 and first["max"] == 4
    assert first["last"] == 4 and first["slope"] == pytest.approx(1.5) and first["missing"] == 0
    second = dict(zip(STATISTICS, found[1], strict=True))
    assert second["last"] == 5 and second["slope"] == 0 and second["missing"] == pytest.approx(2 / 3)


def test_the_network_keeps_a_tie_and_a_missing_score_never_wins() -> None:
    assert choose_engine({"keras": 0.7, "lightgbm": 0.7}, "m", {}).chosen == "keras"
    assert choose_engine({"keras": 0.7, "lightgbm": 0.71}, "m", {}).chosen == "lightgbm"
    assert choose_engine({"keras": float("nan"), "lightgbm": 0.2}, "m", {}).chosen == "lightgbm"
    assert choose_engine({"keras": float("nan"), "lightgbm": float("nan")}, "m", {}).chosen == "keras"


def test_trees_answer_like_the_network_and_explain_with_exact_shap(trained_windows, tmp_path: Path) -> None:
    boosted = fit_boosted_windows(trained_windows, seed=7)
    test = trained_windows.part("test")
    outputs = boosted.predict(test.x)
    assert outputs["failure"].shape == (test.x.shape[0], 1) and outputs["rul"].shape == (test.x.shape[0], 1)
    assert ((outputs["failure"] >= 0) & (outputs["failure"] <= 1)).all()
    assert ((outputs["rul"] >= 0) & (outputs["rul"] <= trained_windows.info["rul_cap_hours"])).all()
    explained = boosted.attributions(test.x[:40])
    assert explained.values.shape == test.x[:40].shape
    # completeness, as integrated gradients': the attributions sum to the score minus the baseline's
    np.testing.assert_allclose(explained.values.sum(axis=(1, 2)), explained.score - explained.baseline_score, atol=1e-5)
    np.testing.assert_allclose(explained.score, outputs["failure"][:40, 0], atol=1e-6)
    for relative, content in boosted.files().items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(content)
    assert b"pickle" not in (tmp_path / CLASSICAL_DIR / "failure.txt").read_bytes()[:200]
    again = BoostedWindows.load(tmp_path)
    np.testing.assert_array_equal(again.predict(test.x)["failure"], outputs["failure"])


@pytest.fixture(scope="module")
def challenged(trained_windows, small_ingested, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The train step on the small plant with a weak network: both engines in the folder, the trees answer."""
    work = tmp_path_factory.mktemp("challenged")
    write_windows(trained_windows, str(work / "windows"))
    (work / "profile.json").write_text(json.dumps(small_ingested.profile))
    run_train(
        "predictive-maintenance",
        str(work / "windows"),
        WEAK_NETWORK,
        StepInputs(gate=LENIENT.model_dump()),
        str(work / "model"),
        str(work / "history.json"),
    )
    return work


def test_train_keeps_both_engines_and_the_better_on_validation_answers(challenged: Path) -> None:
    info = load_model_info(challenged / "model")
    record = info["challenger"]
    assert record["metric"] == "validation PR-AUC" and set(record["validation"]) == {"keras", "lightgbm"}
    assert record["chosen"] == info["engine"] == "lightgbm"
    assert record["validation"]["lightgbm"] > record["validation"]["keras"]
    assert info["threshold"] == record["thresholds"]["lightgbm"]
    assert "exported to TFLite" in info["edge"]["missing"]["float32"], "the trees answer: no network export ships"
    assert not (challenged / "model" / "edge").exists()
    assert isinstance(load_scoring_model(challenged / "model"), BoostedWindows)
    assert other_engines(info) == ["keras"]
    assert as_engine(info, "keras")["threshold"] == record["thresholds"]["keras"]
    # the version names what answers: the trees' files count
    assert model_version(str(challenged / "model")).startswith("v-")


def test_evaluate_scores_the_answering_engine_and_shows_both_side_by_side(challenged: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    paths = EvaluationPaths(*(str(out / name) for name in ("report.html", "summary.md", "card.md", "blessing.json")))
    verdict = run_evaluate(
        "predictive-maintenance",
        str(challenged / "windows"),
        str(challenged / "model"),
        str(challenged / "history.json"),
        str(challenged / "profile.json"),
        "pm",
        StepInputs(gate=LENIENT.model_dump()),
        str(tmp_path / "store"),
        paths,
    )
    assert verdict.passed
    card = Path(paths.model_card).read_text()
    assert "## Network vs classical challenger" in card
    assert "| lightgbm (answers) |" in card and "| keras |" in card
    assert "Network vs classical challenger" in Path(paths.report).read_text()


def test_the_server_answers_and_explains_with_the_trees(challenged: Path) -> None:
    served = WindowModel("pm", challenged / "model")
    served.load()
    windows = np.load(challenged / "windows" / "windows.npz")["x"][:3]
    answer = served.predict_now({"instances": windows.tolist()})
    expected = load_scoring_model(challenged / "model").predict(windows)["failure"][:, 0]
    got = [prediction["failure_probability"] for prediction in answer["predictions"]]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    explained = served.explain_now({"instances": windows.tolist()})
    assert explained["method"] == "tree-shap"
    assert len(explained["explanations"]) == 3 and explained["explanations"][0]["top_features"]


def test_the_pca_detector_answers_as_the_autoencoder_does(anomaly_windows, tmp_path: Path) -> None:
    from shopfloor.families.anomaly_detection.model import normal_windows

    normal = normal_windows(anomaly_windows)
    detector = fit_pca_detector(normal.train, normal.mean, normal.std, anomaly_windows.features)
    test = anomaly_windows.part("test")
    found = detector(test.x)
    assert found["score"].shape == (len(test.x),) and found["feature_errors"].shape == (len(test.x), test.x.shape[2])
    # the score is the reading-weighted mean of the per-sensor errors, as the autoencoder's
    complete = ~np.isnan(test.x).any(axis=(1, 2))
    np.testing.assert_allclose(
        found["score"][complete], found["feature_errors"][complete].mean(axis=1), rtol=1e-4, atol=1e-6
    )
    assert average_precision(test.failure, found["score"]) > test.failure.mean(), "better than chance"
    gappy = test.x[:5].copy()
    gappy[:, :, 0] = np.nan  # a sensor that stopped reporting gets no error and does not break the rest
    assert np.isfinite(detector(gappy)["score"]).all() and (detector(gappy)["feature_errors"][:, 0] == 0).all()
    for relative, content in detector.files().items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(content)
    np.testing.assert_array_equal(PcaDetector.load(tmp_path)(test.x)["score"], found["score"])


def test_the_anomaly_train_step_keeps_both_detectors_and_records_the_choice(
    anomaly_windows, small_ingested, tmp_path: Path
) -> None:
    from shopfloor.families.anomaly_detection.config import AnomalyGateConfig, AutoencoderConfig

    write_windows(anomaly_windows, str(tmp_path / "windows"))
    run_train(
        "anomaly-detection",
        str(tmp_path / "windows"),
        AutoencoderConfig(epochs=2).model_dump(),
        StepInputs(gate=AnomalyGateConfig().model_dump()),
        str(tmp_path / "model"),
        str(tmp_path / "history.json"),
    )
    info = load_model_info(tmp_path / "model")
    record = info["challenger"]
    assert set(record["validation"]) == {"keras", "pca"} and record["chosen"] == info["engine"]
    assert info["threshold"] == record["thresholds"][info["engine"]]
    served = load_scoring_model(tmp_path / "model")
    assert type(served).__name__ == ("PcaDetector" if info["engine"] == "pca" else "Functional")
    assert (tmp_path / "model" / CLASSICAL_DIR / "pca.npz").is_file()


@pytest.mark.slow  # trains the image trees beside the session's CNN
def test_the_image_trees_answer_as_the_cnn_does_and_show_where_they_look(vision_trained, tmp_path: Path) -> None:
    from shopfloor.families.visual_inspection.explanation import heatmaps_of
    from shopfloor.families.visual_inspection.family import challenge_cnn
    from shopfloor.families.visual_inspection.inference import defect_scores
    from shopfloor.families.visual_inspection.model import predict_probabilities

    images = vision_trained.images
    choice, trees = challenge_cnn(vision_trained.result.model, images, 0.95, seed=7)
    assert set(choice.validation) == {"keras", "lightgbm-images"} and choice.chosen in choice.validation
    assert set(choice.thresholds) == set(choice.validation), "each engine gets its own defect threshold"
    test = images.part("test")
    probabilities = predict_probabilities(trees, test.images)
    assert probabilities.shape == (len(test.labels), len(images.classes))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # the demo parts' dents lie anywhere on parts in varying positions: coarse pixels cannot see them, the CNN can,
    # and the choice on validation keeps the CNN (the trees never ship a worse model)
    assert choice.chosen == "keras" and choice.validation["keras"] > choice.validation["lightgbm-images"]
    cnn = defect_scores(predict_probabilities(vision_trained.result.model, test.images), images.ok_index)
    trees_score = defect_scores(probabilities, images.ok_index)
    assert average_precision(test.is_defect, cnn) > average_precision(test.is_defect, trees_score)
    heatmaps, predicted = heatmaps_of(trees, test.images[:6])
    assert heatmaps.shape == test.images[:6].shape[:3] and heatmaps.max() <= 1.0 and heatmaps.min() >= 0.0
    assert (predicted == probabilities[:6].argmax(axis=1)).all()
    for relative, content in trees.files().items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(content)
    np.testing.assert_array_equal(BoostedImages.load(tmp_path).predict(test.images), probabilities)


@pytest.mark.slow  # trains the image trees beside the session's CNN
def test_the_server_answers_and_explains_images_with_the_trees(vision_trained, tmp_path: Path) -> None:
    """A model folder whose trees answer (as train writes it when they win): V1 predict and explain over HTTP."""
    import base64
    import shutil

    from fastapi.testclient import TestClient

    from shopfloor.families.visual_inspection.family import challenge_cnn
    from shopfloor.serving.server import build_app, load_window_model

    choice, trees = challenge_cnn(vision_trained.result.model, vision_trained.images, 0.95, seed=7)
    folder = tmp_path / "model"
    shutil.copytree(vision_trained.model_dir, folder)
    for relative, content in trees.files().items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(content)
    info = json.loads((folder / "shopfloor_model.json").read_text())
    info.update(engine="lightgbm-images", threshold=choice.thresholds["lightgbm-images"], challenger=choice.record())
    (folder / "shopfloor_model.json").write_text(json.dumps(info))

    client = TestClient(build_app(load_window_model(str(folder), "vi", max_batch=8), max_body_bytes=2_000_000))
    test = vision_trained.images.part("test")
    png = (vision_trained.root / test.paths[0]).read_bytes()
    body = {"instances": [{"image_bytes": {"b64": base64.b64encode(png).decode()}}]}
    answer = client.post("/v1/models/vi:predict", json=body)
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    expected = trees.predict(test.images[:1])[0]
    assert prediction["defect_score"] == pytest.approx(1.0 - expected[vision_trained.images.ok_index], abs=1e-5)
    explained = client.post("/v1/models/vi:explain", json=body)
    assert explained.status_code == 200, explained.text
    assert len(explained.json()["explanations"][0]["heatmap"]) == test.images.shape[1]
