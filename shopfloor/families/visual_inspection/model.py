"""Visual-inspection training: a small CNN on part images, read through the ingested image manifest.

Images are split per class by a salted hash of their content (deterministic, stratified, and the same image
lands in the same split wherever it is stored). The model takes raw pixels (0-255, [height, width, channels])
exactly as serving will receive them: rescaling and the training-only augmentation (flips, rotation, shift,
contrast, brightness) are its first layers, so there is no train/serve skew. Convolution blocks end in the layer
named ``last_conv`` (Grad-CAM reads it), then global pooling and a softmax over the classes. Class weights balance
the rare defects; early stopping watches the validation loss, weighted the same way. The defect score is
``1 - P(ok)``; its decision threshold is chosen on the validation split to catch the target share of defects.

Output layout of the ``model`` artifact: as :func:`shopfloor.contracts.model_artifact.write_model`
(``model.keras``, ``saved_model/``, ``shopfloor_model.json``), the JSON with ``model_type: visual-inspection``,
``classes``, ``ok_class``, ``image_size`` [width, height], ``color_mode``, ``channels``, ``last_conv_layer``,
``threshold`` ({method, value, target_defect_recall, validation_defect_recall, validation_false_reject_rate}),
``hyperparameters``, ``split``, ``training_data``, ``epochs_run``, ``training_seconds`` and ``versions``.
"""

from __future__ import annotations

import dataclasses
import math
import time

import keras_tuner as kt
import numpy as np

from shopfloor.common.errors import DataValidationError
from shopfloor.common.hyperparameters import grid, in_range, in_space
from shopfloor.common.progress import report_progress
from shopfloor.contracts.images import ImageSet
from shopfloor.contracts.model_artifact import TrainResult, runtime_versions
from shopfloor.families.learning import early_stopping, optimizer, stopping_record
from shopfloor.families.registry import ModelKind
from shopfloor.families.visual_inspection.config import CnnConfig
from shopfloor.families.visual_inspection.inference import LAST_CONV, defect_scores

__all__ = [
    "FitData",
    "SPLITS",
    "VisualInspectionHyperModel",
    "build_cnn",
    "choose_defect_threshold",
    "class_weights",
    "fit_data",
    "predict_probabilities",
    "require_both",
    "train_vision_model",
]

SPLITS: tuple[str, ...] = ("train", "validation", "test")
WEIGHT_DECAYS = [0.0, 1e-3, 1e-2, 1e-1]


def class_weights(labels: np.ndarray, n_classes: int, mode: str = "balanced") -> dict[int, float] | None:
    """Per-class loss weights n / (classes present * count), so each class weighs as much in total; None: unweighted."""
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=n_classes)
    present = int((counts > 0).sum())
    return {k: float(labels.size / (present * c)) if c else 1.0 for k, c in enumerate(counts)}


def build_cnn(image_size: tuple[int, int], channels: int, n_classes: int, config: CnnConfig):
    """The compiled Keras CNN: raw pixels [height, width, channels] (0-255) -> class probabilities."""
    import keras

    width, height = image_size
    inputs = keras.Input(shape=(height, width, channels), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    seed = config.seed
    if config.flip:
        x = keras.layers.RandomFlip("horizontal_and_vertical", seed=seed, name="random_flip")(x)
    if config.rotation:
        x = keras.layers.RandomRotation(config.rotation, fill_mode="reflect", seed=seed, name="random_rotation")(x)
    if config.translation:
        x = keras.layers.RandomTranslation(
            config.translation, config.translation, fill_mode="reflect", seed=seed, name="random_translation"
        )(x)
    if config.contrast:
        x = keras.layers.RandomContrast(config.contrast, value_range=(0.0, 1.0), seed=seed, name="random_contrast")(x)
    if config.brightness:
        x = keras.layers.RandomBrightness(
            config.brightness, value_range=(0.0, 1.0), seed=seed, name="random_brightness"
        )(x)
    if config.local_contrast:
        background = keras.layers.AveragePooling2D(config.local_contrast, strides=1, padding="same", name="local_mean")(
            x
        )
        x = keras.layers.Subtract(name="local_contrast")([x, background])
    last = len(config.filters) - 1
    for index, filters in enumerate(config.filters):
        for step in range(config.convs_per_block):
            if index == last and step == config.convs_per_block - 1:
                x = keras.layers.Conv2D(filters, config.kernel_size, padding="same", activation="relu", name=LAST_CONV)(
                    x
                )
            else:
                x = keras.layers.Conv2D(
                    filters, config.kernel_size, padding="same", use_bias=False, name=f"conv_{index}_{step}"
                )(x)
                x = keras.layers.BatchNormalization(momentum=0.9, name=f"norm_{index}_{step}")(x)
                x = keras.layers.ReLU(name=f"relu_{index}_{step}")(x)
        if index < last:
            x = keras.layers.MaxPooling2D(name=f"pool_{index}")(x)
    pooling = keras.layers.GlobalMaxPooling2D if config.pooling == "max" else keras.layers.GlobalAveragePooling2D
    x = pooling(name="global_pool")(x)
    if config.dense_units:
        x = keras.layers.Dense(config.dense_units, activation="relu", name="dense")(x)
    if config.dropout:
        x = keras.layers.Dropout(config.dropout, seed=seed, name="dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="visual_inspection")
    model.compile(
        optimizer=optimizer(config.learning_rate, config.weight_decay),
        loss="sparse_categorical_crossentropy",
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


class VisualInspectionHyperModel(kt.HyperModel):
    """The image classifier with a searchable depth, width, augmentation and schedule.

    Each hyperparameter's default is the base config's value where the space holds it (keras-tuner's own default
    where not), so the space's defaults are the configured CNN: what the search's first trial trains.
    """

    def __init__(self, image_size: tuple[int, int], channels: int, n_classes: int, base: CnnConfig | None = None):
        super().__init__(name=ModelKind.VISUAL_INSPECTION.value)
        width, height = image_size  # a [width, height] list from JSON too
        self.image_size, self.channels, self.n_classes = (width, height), channels, n_classes
        self.base = base or CnnConfig()

    def space(self, hp: kt.HyperParameters) -> CnnConfig:
        """Declare the search space and return the CNN config these values choose."""
        base = self.base
        blocks = hp.Int("conv_blocks", 2, 4, default=in_space(len(base.filters), range(2, 5)))
        doubling = all(f == base.filters[0] * 2**index for index, f in enumerate(base.filters))
        base_filters = hp.Choice("base_filters", [8, 16, 32], default=in_space(base.filters[0], [8, 16, 32], doubling))
        return base.model_copy(
            update={
                "filters": [base_filters * 2**index for index in range(blocks)],
                "convs_per_block": hp.Int("convs_per_block", 1, 2, default=in_space(base.convs_per_block, [1, 2])),
                "kernel_size": hp.Choice("kernel_size", [3, 5], default=in_space(base.kernel_size, [3, 5])),
                "local_contrast": hp.Choice(
                    "local_contrast", [0, 3, 5, 9], default=in_space(base.local_contrast, [0, 3, 5, 9])
                ),
                "pooling": hp.Choice("pooling", ["average", "max"], default=base.pooling),
                "dense_units": hp.Choice("dense_units", [0, 64, 128], default=in_space(base.dense_units, [0, 64, 128])),
                "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1, default=in_space(base.dropout, grid(0.0, 0.5, 0.1))),
                "weight_decay": hp.Choice(
                    "weight_decay", WEIGHT_DECAYS, default=in_space(base.weight_decay, WEIGHT_DECAYS)
                ),
                "rotation": hp.Choice("rotation", [0.0, 0.05, 0.5], default=in_space(base.rotation, [0.0, 0.05, 0.5])),
                "contrast": hp.Float(
                    "contrast", 0.0, 0.4, step=0.1, default=in_space(base.contrast, grid(0.0, 0.4, 0.1))
                ),
                "learning_rate": hp.Float(
                    "learning_rate", 3e-4, 1e-2, sampling="log", default=in_range(base.learning_rate, 3e-4, 1e-2)
                ),
                "batch_size": hp.Choice("batch_size", [16, 32, 64], default=in_space(base.batch_size, [16, 32, 64])),
            }
        )

    def build(self, hp: kt.HyperParameters):
        """The compiled Keras model for these hyperparameters."""
        return build_cnn(self.image_size, self.channels, self.n_classes, self.space(hp))

    def fit(self, hp: kt.HyperParameters, model, *args, **kwargs):
        """Fit with the searched batch size (keras-tuner calls this too)."""
        return model.fit(*args, batch_size=hp.get("batch_size"), **kwargs)


def predict_probabilities(model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities [n, classes] for raw uint8 images [n, height, width, channels]."""
    if len(images) == 0:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    return np.asarray(model.predict(images.astype(np.float32), batch_size=batch_size, verbose=0))


def choose_defect_threshold(scores: np.ndarray, is_defect: np.ndarray, target_recall: float) -> dict:
    """The defect-score threshold that rejects ``target_recall`` of the defects given, then every defect it can free.

    Catching the target share fixes which good parts are rejected (those scoring at least the last defect it must
    catch). Below that, the threshold drops to just above the best-scoring good part left accepted: defects scored
    in between are caught at no cost in validation false rejects (and a miss costs more than a reject). It sits midway
    between that good part and the lowest defect above it, so a new image a little off either one is not decided
    by a hair. (The highest threshold meeting the target, the earlier rule, missed 10 of 80 test defects on the demo
    parts where this one misses 2, with the same validation false rejects.)
    """
    defects = np.sort(scores[is_defect == 1])[::-1]
    if defects.size == 0 or defects.size == scores.size:
        raise DataValidationError(
            "validation split",
            "needs both defective and good images to choose a threshold",
            field="split.validation_fraction",
            expected="more images per class, or a larger validation_fraction",
        )
    must_catch = float(defects[max(math.ceil(target_recall * defects.size - 1e-9), 1) - 1])
    accepted_good = scores[(is_defect == 0) & (scores < must_catch)]
    if accepted_good.size:
        best_good = float(accepted_good.max())
        value = (best_good + float(defects[defects > best_good].min())) / 2.0
    else:  # every good part scores above the target's defects: rejecting every defect costs nothing more
        value = float(defects.min())
    rejected = scores >= value
    return {
        "method": "target-defect-recall",
        "value": value,
        "target_defect_recall": target_recall,
        "validation_defect_recall": float(rejected[is_defect == 1].mean()),
        "validation_false_reject_rate": float(rejected[is_defect == 0].mean()),
    }


def require_both(part: ImageSet, name: str) -> None:
    """Refuse a split without good or without defective images: neither training nor the threshold can work."""
    if part.images.shape[0] == 0 or part.is_defect.all() or not part.is_defect.any():
        raise DataValidationError(
            f"{name} split",
            f"holds {part.class_counts()}",
            field="split",
            expected="good and defective images in every split (at least 3 images per class)",
        )


@dataclasses.dataclass(frozen=True)
class FitData:
    """What the CNN fits on: train pixels and labels, the weighted validation split, and the class weights."""

    x: np.ndarray
    y: np.ndarray
    validation_data: tuple[np.ndarray, np.ndarray, np.ndarray | None]
    class_weight: dict[int, float] | None


def fit_data(images: ImageSet, class_weight: str) -> FitData:
    """The train and validation arrays for ``model.fit`` (training and each search trial fit the same).

    Raises:
        DataValidationError: If the train or validation split lacks good or defective images.
    """
    train, validation = images.part("train"), images.part("validation")
    require_both(train, "train")
    require_both(validation, "validation")
    weights = class_weights(train.labels, len(images.classes), class_weight)
    # the validation loss is weighted like the training loss, or "all ok" would look best to early stopping
    validation_weights = np.array([weights[k] for k in validation.labels], np.float32) if weights else None
    validation_data = (validation.images.astype(np.float32), validation.labels, validation_weights)
    return FitData(train.images.astype(np.float32), train.labels, validation_data, weights)


def train_vision_model(
    images: ImageSet, config: CnnConfig, target_defect_recall: float = 0.95, data_sha256: str = ""
) -> TrainResult:
    """Fit the CNN on the train split, stopping early on the validation loss, then choose the defect threshold.

    Raises:
        DataValidationError: If the train or validation split lacks good or defective images.
    """
    import keras

    keras.utils.set_random_seed(config.seed)
    data = fit_data(images, config.class_weight)
    validation = images.part("validation")
    height, width, channels = data.x.shape[1:]
    model = build_cnn((width, height), channels, len(images.classes), config)
    stopper = early_stopping("val_loss", "min", config.patience, start_from_epoch=min(10, config.epochs // 3))
    started = time.perf_counter()
    fit = model.fit(
        data.x,
        data.y,
        validation_data=data.validation_data,
        epochs=config.epochs,
        batch_size=config.batch_size,
        class_weight=data.class_weight,
        shuffle=True,
        verbose=0,
        callbacks=[
            stopper,
            keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: report_progress(
                    f"epoch {epoch + 1}/{config.epochs}: loss {logs['loss']:.4f}, accuracy {logs['accuracy']:.3f}, "
                    f"val_loss {logs['val_loss']:.4f}, val_accuracy {logs['val_accuracy']:.3f}"
                )
            ),
        ],
    )
    seconds = time.perf_counter() - started
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    scores = defect_scores(predict_probabilities(model, validation.images), images.ok_index)
    threshold = choose_defect_threshold(scores, validation.is_defect, target_defect_recall)
    report_progress(
        f"defect threshold {threshold['value']:.4f}: validation defect recall "
        f"{threshold['validation_defect_recall']:.3f}, false rejects {threshold['validation_false_reject_rate']:.3f}"
    )
    info = {
        "model_type": ModelKind.VISUAL_INSPECTION.value,
        "inputs": {"name": "image", "shape": [None, height, width, channels], "dtype": "float32", "scale": "0-255"},
        "outputs": {"probabilities": "softmax over classes; defect score = 1 - P(ok_class)"},
        "classes": list(images.classes),
        "ok_class": images.ok_class,
        "image_size": [int(width), int(height)],
        "color_mode": "L" if channels == 1 else "RGB",
        "channels": int(channels),
        "last_conv_layer": LAST_CONV,
        "threshold": threshold,
        "hyperparameters": config.model_dump(),
        "split": {name: images.part(name).class_counts() for name in SPLITS},
        "training_data": {"images_sha256": data_sha256 or images.content_sha256, "class_counts": images.class_counts()},
        "epochs_run": len(history.get("loss", [])),
        "early_stopping": stopping_record(stopper, history),
        "training_seconds": round(seconds, 2),
        "versions": runtime_versions(),
    }
    return TrainResult(model=model, history=history, info=info)
