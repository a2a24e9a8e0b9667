"""Anomaly-detector training: a convolutional autoencoder on normal windows, and its alarm threshold.

The model learns to reconstruct windows of normal operation; a window it reconstructs badly is unlike anything
it saw, which is what "abnormal" means when faults are too rare and too varied to learn as classes. The served
model's output *is* the anomaly score (mean squared reconstruction error in standard units, per window and per
sensor), so serving and evaluation compute it the same way. The alarm threshold is chosen on the validation
part: best F1 where it holds abnormal windows, otherwise a percentile of the normal windows' scores.

The artifact layout is every model's (``shopfloor.contracts.model_artifact.write_model``), with
``model_type: anomaly-detection`` and the chosen ``threshold`` in ``shopfloor_model.json``.
"""

from __future__ import annotations

import dataclasses

import keras_tuner as kt
import numpy as np

from shopfloor.common.errors import DataValidationError
from shopfloor.common.hyperparameters import fitting_kernels, in_range, in_space
from shopfloor.common.progress import report_progress
from shopfloor.contracts.model_artifact import TrainResult, runtime_versions
from shopfloor.contracts.windows import LabelledWindows
from shopfloor.families.anomaly_detection.config import AutoencoderConfig
from shopfloor.families.learning import early_stopping, optimizer, stopping_record
from shopfloor.families.registry import ModelKind
from shopfloor.families.shared import feature_statistics

__all__ = [
    "AutoencoderHyperModel",
    "NormalWindows",
    "anomaly_scores",
    "build_autoencoder",
    "choose_threshold",
    "normal_windows",
    "train_autoencoder",
]

KERNEL_SIZES = [3, 5, 7, 9]
WEIGHT_DECAYS = [0.0, 1e-3, 1e-2, 1e-1]
DROPOUTS = [0.0, 0.1, 0.2, 0.3]


def build_autoencoder(window: int, features: int, mean: list[float], std: list[float], config: AutoencoderConfig):
    """Raw windows [window, features] -> {"score": [n], "feature_errors": [n, features]} (reconstruction MSE)."""
    import keras

    from shopfloor.common.keras_objects import MaskedStandardization, ReconstructionError, mean_of_output

    inputs = keras.Input(shape=(window, features), name="window")
    standardized = MaskedStandardization(mean, std, name="standardize")(inputs)
    x = keras.layers.Conv1D(config.conv_filters, config.kernel_size, padding="same", activation="relu", name="enc")(
        standardized
    )
    x = keras.layers.Flatten(name="flatten")(x)
    if config.dropout:
        x = keras.layers.Dropout(config.dropout, seed=config.seed, name="dropout")(x)
    latent = keras.layers.Dense(config.latent_units, activation="relu", name="latent")(x)
    x = keras.layers.Dense(window * config.conv_filters, activation="relu", name="expand")(latent)
    x = keras.layers.Reshape((window, config.conv_filters), name="unflatten")(x)
    reconstruction = keras.layers.Conv1D(features, config.kernel_size, padding="same", name="dec")(x)
    errors = ReconstructionError(name="reconstruction_error")([standardized, reconstruction])
    model = keras.Model(inputs, errors, name="anomaly_detection")
    model.compile(optimizer=optimizer(config.learning_rate, config.weight_decay), loss={"score": mean_of_output})
    return model


class AutoencoderHyperModel(kt.HyperModel):
    """The window autoencoder with a searchable width, kernel, bottleneck and schedule; defaults are the base's."""

    def __init__(self, window: int, features: int, mean: list[float], std: list[float], base: AutoencoderConfig):
        super().__init__(name=ModelKind.ANOMALY_DETECTION.value)
        self.window, self.features, self.mean, self.std, self.base = window, features, mean, std, base

    def space(self, hp: kt.HyperParameters) -> AutoencoderConfig:
        """Declare the search space and return the autoencoder config these values choose."""
        base = self.base
        kernels = fitting_kernels(KERNEL_SIZES, self.window)
        return base.model_copy(
            update={
                "conv_filters": hp.Choice(
                    "conv_filters", [16, 32, 64], default=in_space(base.conv_filters, [16, 32, 64])
                ),
                "kernel_size": hp.Choice("kernel_size", kernels, default=in_space(base.kernel_size, kernels)),
                "latent_units": hp.Choice(
                    "latent_units", [4, 8, 16, 32], default=in_space(base.latent_units, [4, 8, 16, 32])
                ),
                "dropout": hp.Choice("dropout", DROPOUTS, default=in_space(base.dropout, DROPOUTS)),
                "weight_decay": hp.Choice(
                    "weight_decay", WEIGHT_DECAYS, default=in_space(base.weight_decay, WEIGHT_DECAYS)
                ),
                "learning_rate": hp.Float(
                    "learning_rate", 3e-4, 1e-2, sampling="log", default=in_range(base.learning_rate, 3e-4, 1e-2)
                ),
                "batch_size": hp.Choice(
                    "batch_size", [32, 64, 128, 256], default=in_space(base.batch_size, [32, 64, 128, 256])
                ),
            }
        )

    def build(self, hp: kt.HyperParameters):
        """The compiled autoencoder for these hyperparameters."""
        return build_autoencoder(self.window, self.features, self.mean, self.std, self.space(hp))

    def fit(self, hp: kt.HyperParameters, model, *args, **kwargs):
        """Fit with the searched batch size (keras-tuner calls this too)."""
        return model.fit(*args, batch_size=hp.get("batch_size"), **kwargs)


@dataclasses.dataclass(frozen=True)
class NormalWindows:
    """The normal windows the autoencoder learns from and stops early on, with their feature statistics."""

    train: np.ndarray
    validation: np.ndarray
    mean: list[float]
    std: list[float]

    def targets(self, part: str) -> dict[str, np.ndarray]:
        """The fit target of ``train`` or ``validation``: a zero error (the model's output is its own loss)."""
        return {"score": np.zeros(len(getattr(self, part)), np.float32)}


def normal_windows(windows: LabelledWindows) -> NormalWindows:
    """Normal training and validation windows; without normal validation windows, the last tenth of training."""
    train, validation = windows.part("train"), windows.part("validation")
    normal_train = train.x[train.failure == 0]
    normal_validation = validation.x[validation.failure == 0]
    if normal_validation.shape[0] == 0:  # hold back a tenth of training for early stopping instead
        cut = max(1, normal_train.shape[0] // 10)
        normal_train, normal_validation = normal_train[:-cut], normal_train[-cut:]
    mean, std = feature_statistics(normal_train)
    return NormalWindows(normal_train, normal_validation, mean, std)


def anomaly_scores(model, x: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """Anomaly scores (reconstruction MSE in standard units) for a batch of windows."""
    if len(x) == 0:
        return np.zeros(0, dtype=np.float32)
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0)["score"]).reshape(-1)


def choose_threshold(scores: np.ndarray, labels: np.ndarray, config: AutoencoderConfig) -> dict:
    """The alarm threshold from validation scores: best F1 where abnormal windows exist, else a percentile."""
    from sklearn.metrics import precision_recall_curve

    normal = scores[labels == 0]
    has_both = 0 < int(labels.sum()) < labels.size
    if config.threshold == "best-f1" and not has_both:
        raise DataValidationError(
            "windows",
            "the validation part has no abnormal windows (or no normal ones) to choose a threshold by F1",
            field="model.threshold",
            expected="anomaly events in the validation period, or threshold: percentile",
        )
    if config.threshold != "percentile" and has_both:
        precision, recall, thresholds = precision_recall_curve(labels, scores)
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        best = int(np.argmax(f1))
        return {"method": "best-f1", "value": float(thresholds[best]), "validation_f1": float(f1[best])}
    value = float(np.percentile(normal, config.threshold_percentile))
    return {"method": "percentile", "percentile": config.threshold_percentile, "value": value}


def train_autoencoder(windows: LabelledWindows, config: AutoencoderConfig, data_sha256: str = "") -> TrainResult:
    """Fit the autoencoder on normal training windows, stopping early on normal validation windows.

    The threshold is then chosen on the whole validation part (normal and abnormal windows).
    """
    import keras

    keras.utils.set_random_seed(config.seed)
    train, validation = windows.part("train"), windows.part("validation")
    normal = normal_windows(windows)
    normal_train, normal_validation, mean, std = normal.train, normal.validation, normal.mean, normal.std
    model = build_autoencoder(normal_train.shape[1], normal_train.shape[2], mean, std, config)
    stopper = early_stopping("val_loss", "min", config.patience)
    fit = model.fit(
        normal_train,
        normal.targets("train"),
        validation_data=(normal_validation, normal.targets("validation")),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[
            stopper,
            keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: report_progress(
                    f"epoch {epoch + 1}/{config.epochs}: reconstruction error {logs['loss']:.4f}, "
                    f"validation {logs['val_loss']:.4f}"
                )
            ),
        ],
    )
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    validation_scores = (
        anomaly_scores(model, validation.x) if len(validation.x) else anomaly_scores(model, normal_validation)
    )
    validation_labels = validation.failure if len(validation.x) else np.zeros(len(normal_validation), np.int8)
    threshold = choose_threshold(validation_scores, validation_labels, config)
    report_progress(f"alarm threshold {threshold['value']:.4f} ({threshold['method']} on the validation part)")
    info = {
        "model_type": ModelKind.ANOMALY_DETECTION.value,
        "inputs": {"name": "window", "shape": [None, *train.x.shape[1:]], "dtype": "float32", "missing": "NaN"},
        "outputs": {
            "score": "mean squared reconstruction error of the window, in standard units",
            "feature_errors": "the same per sensor",
        },
        "features": windows.features,
        "window": int(windows.info["window"]),
        "threshold": threshold,
        "hyperparameters": config.model_dump(),
        "normalization": {"mean": mean, "std": std},
        "training_data": {
            "windows_sha256": data_sha256,
            "normal_windows": int(len(normal_train)),
            "class_balance": windows.info["class_balance"],
            "assets": windows.info["assets"],
        },
        "epochs_run": len(history.get("loss", [])),
        "early_stopping": stopping_record(stopper, history),
        "versions": runtime_versions(),
    }
    return TrainResult(model=model, history=history, info=info)
