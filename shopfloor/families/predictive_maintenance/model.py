"""Training logic: a two-headed Keras model (fails-within-horizon probability and remaining useful life).

The model takes raw windows [window, features] exactly as serving will receive them; standardization with the
training statistics and missing-value handling are its first layer. A causal 1-D convolution reads the
temporal pattern; average, max and last-step summaries feed a small dense network with two heads.

Output layout of the ``model`` artifact (a folder):
  model.keras            Keras v3 archive (load with safe_mode=True, compile=False)
  saved_model/           TensorFlow SavedModel export (serving signature ``serve``)
  shopfloor_model.json   features, window, horizon, cap, hyperparameters, versions, training data
"""

from __future__ import annotations

from shopfloor.common.progress import report_progress
from shopfloor.contracts.model_artifact import (
    TrainResult,
    runtime_versions,
)
from shopfloor.contracts.windows import LabelledWindows
from shopfloor.families.learning import early_stopping, optimizer, stopping_record
from shopfloor.families.predictive_maintenance.config import ModelConfig
from shopfloor.families.registry import ModelKind
from shopfloor.families.shared import feature_statistics

__all__ = [
    "build_model",
    "train_model",
]


def build_model(
    window: int, features: int, mean: list[float], std: list[float], rul_cap_hours: float, config: ModelConfig
):
    """The Keras model for windows [window, features] -> {"failure": probability, "rul": hours}."""
    import keras

    from shopfloor.common.keras_objects import MaskedStandardization, masked_mae

    inputs = keras.Input(shape=(window, features), name="window")
    x = MaskedStandardization(mean, std, name="standardize")(inputs)
    if config.conv_filters:
        x = keras.layers.Conv1D(
            config.conv_filters, config.kernel_size, padding="causal", activation="relu", name="conv"
        )(x)
    last = keras.layers.Flatten(name="last_step")(keras.layers.Cropping1D((window - 1, 0), name="crop_last")(x))
    summary = keras.layers.Concatenate(name="summary")(
        [
            keras.layers.GlobalAveragePooling1D(name="mean_pool")(x),
            keras.layers.GlobalMaxPooling1D(name="max_pool")(x),
            last,
        ]
    )
    hidden = summary
    for index, units in enumerate(config.hidden_units):
        hidden = keras.layers.Dense(units, activation="relu", name=f"dense_{index}")(hidden)
        if config.dropout:
            hidden = keras.layers.Dropout(config.dropout, name=f"dropout_{index}")(hidden)
    failure = keras.layers.Dense(1, activation="sigmoid", name="failure")(hidden)
    rul_unit = keras.layers.Dense(1, activation="sigmoid", name="rul_unit")(hidden)
    rul = keras.layers.Rescaling(rul_cap_hours, name="rul")(rul_unit)
    model = keras.Model(inputs, {"failure": failure, "rul": rul}, name="predictive_maintenance")
    model.compile(
        optimizer=optimizer(config.learning_rate, config.weight_decay),
        loss={"failure": "binary_crossentropy", "rul": masked_mae},
        loss_weights={"failure": 1.0, "rul": 1.0 / rul_cap_hours},
        metrics={"failure": [keras.metrics.AUC(name="auc"), keras.metrics.AUC(curve="PR", name="pr_auc")]},
    )
    return model


def train_model(windows: LabelledWindows, config: ModelConfig, data_sha256: str = "") -> TrainResult:
    """Fit the model on the train split, stopping early on the validation split's PR-AUC.

    PR-AUC, not the summed loss, picks the epoch: the RUL term can overfit while failure ranking still improves,
    and failures are the rare class a plant cares about.
    """
    import keras

    keras.utils.set_random_seed(config.seed)
    train, validation = windows.part("train"), windows.part("validation")
    mean, std = feature_statistics(train.x)
    cap = float(windows.info["rul_cap_hours"])
    model = build_model(train.x.shape[1], train.x.shape[2], mean, std, cap, config)
    stopper = early_stopping("val_failure_pr_auc", "max", config.patience)
    fit = model.fit(
        train.x,
        {"failure": train.failure.astype("float32"), "rul": train.rul},
        validation_data=(validation.x, {"failure": validation.failure.astype("float32"), "rul": validation.rul}),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[
            stopper,
            keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: report_progress(
                    f"epoch {epoch + 1}/{config.epochs}: loss {logs['loss']:.4f}, val_loss {logs['val_loss']:.4f}, "
                    f"val ROC-AUC {logs.get('val_failure_auc', float('nan')):.3f}, "
                    f"val PR-AUC {logs.get('val_failure_pr_auc', float('nan')):.3f}"
                )
            ),
        ],
    )
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    info = {
        "model_type": ModelKind.PREDICTIVE_MAINTENANCE.value,
        "inputs": {"name": "window", "shape": [None, *train.x.shape[1:]], "dtype": "float32", "missing": "NaN"},
        "outputs": {
            "failure": "probability of failure within horizon_hours",
            "rul": "remaining useful life in hours, clipped at rul_cap_hours",
        },
        "features": windows.features,
        "window": int(windows.info["window"]),
        "horizon_hours": float(windows.info["horizon_hours"]),
        "rul_cap_hours": cap,
        "hyperparameters": config.model_dump(),
        "normalization": {"mean": mean, "std": std},
        "training_data": {
            "windows_sha256": data_sha256,
            "class_balance": windows.info["class_balance"],
            "assets": windows.info["assets"],
        },
        "epochs_run": len(history.get("loss", [])),
        "early_stopping": stopping_record(stopper, history),
        "versions": runtime_versions(),
    }
    return TrainResult(model=model, history=history, info=info)
