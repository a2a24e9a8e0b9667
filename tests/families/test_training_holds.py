"""Training that holds on small data: each family's saved model is its best epoch's, not its last.

Each test trains a few epochs with settings under which the monitored validation value gets worse at the end, and a
patience longer than the run, so nothing stops early and only the restore at the end of training brings the best
weights back; it writes the model folder, loads it and recomputes that value from the saved model's predictions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shopfloor.contracts.model_artifact import MODEL_INFO, load_keras_model, write_model

pytestmark = pytest.mark.slow  # trains all three families to their last epochs (~40 s): runs with the whole suite


def _saved(result, folder: Path):
    """The written and reloaded Keras model, and the early-stopping record in its ``shopfloor_model.json``."""
    write_model(result, str(folder))
    stopping = json.loads((folder / MODEL_INFO).read_text())["early_stopping"]
    return load_keras_model(folder), stopping


def _restored_is_best(history: dict[str, list[float]], stopping: dict, start: int = 0) -> float:
    """The monitored value of the restored epoch, after checking it is the run's best and not the last epoch's."""
    values = history[stopping["monitor"]]
    best = max if stopping["mode"] == "max" else min
    restored = stopping["restored_epoch"]
    assert values[restored - 1] == best(values[start:]) == stopping["restored_value"]
    assert restored < len(values) and values[-1] != values[restored - 1], "the run must end on a worse epoch"
    return values[restored - 1]


def test_predictive_maintenance_saves_the_best_epoch(trained_windows, tmp_path: Path) -> None:
    import keras

    from shopfloor.families.predictive_maintenance.config import ModelConfig
    from shopfloor.families.predictive_maintenance.model import train_model

    config = ModelConfig(epochs=6, patience=10, learning_rate=0.05, hidden_units=[16], conv_filters=8)
    result = train_model(trained_windows, config)
    model, stopping = _saved(result, tmp_path / "model")
    assert stopping["monitor"] == "val_failure_pr_auc" and stopping["mode"] == "max"
    best = _restored_is_best(result.history, stopping)

    validation = trained_windows.part("validation")
    pr_auc = keras.metrics.AUC(curve="PR")  # the metric early stopping read, on the saved model's predictions
    pr_auc.update_state(validation.failure, model.predict(validation.x, verbose=0)["failure"].ravel())
    assert float(pr_auc.result()) == pytest.approx(best, abs=1e-4)
    assert float(pr_auc.result()) != pytest.approx(result.history["val_failure_pr_auc"][-1], abs=1e-4)


def test_anomaly_detector_saves_the_best_epoch(anomaly_windows, tmp_path: Path) -> None:
    from shopfloor.families.anomaly_detection.config import AutoencoderConfig
    from shopfloor.families.anomaly_detection.model import anomaly_scores, normal_windows, train_autoencoder

    config = AutoencoderConfig(epochs=3, patience=10, learning_rate=0.01, batch_size=16, threshold="percentile")
    result = train_autoencoder(anomaly_windows, config)
    model, stopping = _saved(result, tmp_path / "model")
    assert stopping["monitor"] == "val_loss" and stopping["mode"] == "min"
    best = _restored_is_best(result.history, stopping)

    # the validation loss is the mean reconstruction error of the normal validation windows
    saved_loss = float(anomaly_scores(model, normal_windows(anomaly_windows).validation).mean())
    assert saved_loss == pytest.approx(best, rel=1e-4)
    assert saved_loss != pytest.approx(result.history["val_loss"][-1], rel=1e-3)


def test_visual_inspection_saves_the_best_epoch(vision_trained, tmp_path: Path) -> None:
    import keras

    from shopfloor.families.visual_inspection.config import CnnConfig
    from shopfloor.families.visual_inspection.model import fit_data, predict_probabilities, train_vision_model

    config = CnnConfig(epochs=8, patience=10)  # the default CNN: its validation loss jumps at the last epoch
    result = train_vision_model(vision_trained.images, config)
    model, stopping = _saved(result, tmp_path / "model")
    start = min(10, config.epochs // 3)  # the epochs before it are warm-up, not candidates
    assert stopping["monitor"] == "val_loss" and stopping["mode"] == "min"
    best = _restored_is_best(result.history, stopping, start)

    x, labels, weights = fit_data(vision_trained.images, config.class_weight).validation_data
    losses = keras.losses.sparse_categorical_crossentropy(labels, predict_probabilities(model, x))
    saved_loss = float(np.mean(np.asarray(losses) * weights))  # weighted as in training
    assert saved_loss == pytest.approx(best, rel=1e-3)
    assert saved_loss != pytest.approx(result.history["val_loss"][-1], rel=1e-2)


def test_learning_curves_show_train_and_validation_and_name_the_restored_epoch() -> None:
    import base64

    from shopfloor.families.learning import learning_curves_caption, learning_curves_png

    history = {"loss": [0.9, 0.5, 0.3], "val_loss": [1.0, 0.7, 0.8], "accuracy": [0.6, 0.8, 0.9]}
    history |= {"val_accuracy": [0.55, 0.75, 0.7]}
    stopping = {"monitor": "val_loss", "mode": "min", "restored_epoch": 2, "restored_value": 0.7, "epochs_run": 3}
    assert learning_curves_caption(stopping) == "Learning curves (restored epoch 2 of 3, best val_loss)"
    assert learning_curves_caption(None) == "Learning curves"
    with_metric = base64.b64decode(learning_curves_png(history, stopping, "accuracy"))
    loss_only = base64.b64decode(learning_curves_png(history, stopping))
    assert with_metric.startswith(b"\x89PNG") and loss_only.startswith(b"\x89PNG")
    width = int.from_bytes(with_metric[16:20], "big")
    assert width > 1.8 * int.from_bytes(loss_only[16:20], "big"), "the metric gets its own panel beside the loss"
