"""What a study searches, per model family: the builder (a keras-tuner ``HyperModel``), its data and its score.

``HpoConfig.builder`` names the family; ``load_problem`` reads the step's input artifact the way that family
needs (labelled windows for predictive maintenance and anomaly detection, the labelled image manifest for visual
inspection) and refuses a space or data that cannot work before any trial trains. The search itself
(``shopfloor.components.hpo.search``) only sees a ``SearchProblem``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import keras_tuner as kt
import numpy as np

from shopfloor.common.config import AutoencoderConfig, HpoConfig, ModelConfig, validated
from shopfloor.common.errors import DataValidationError

if TYPE_CHECKING:
    from shopfloor.common.vision_config import CnnConfig
    from shopfloor.components.label.labeling import LabelledWindows
    from shopfloor.components.train.vision import ImageSet

__all__ = [
    "ANOMALY_MONITOR",
    "IMAGE_MONITOR",
    "PM_MONITOR",
    "PROBLEMS",
    "SearchProblem",
    "anomaly_problem",
    "balanced_accuracy",
    "builder_for",
    "image_problem",
    "load_problem",
    "space_defaults",
    "window_problem",
]

PM_MONITOR = "val_failure_pr_auc"
IMAGE_MONITOR = "val_balanced_accuracy"
ANOMALY_MONITOR = "val_anomaly_pr_auc"


@dataclasses.dataclass(frozen=True)
class SearchProblem:
    """One study's work: the builder, the arrays each trial fits and validates on, and the score maximized.

    ``monitor`` is the per-epoch value the pruner and the objective read from Keras' logs; ``epoch_score``, when
    set, computes it from the model at each epoch's end (a score Keras has no metric for). ``first_params`` are
    enqueued as the first trial, so the search starts from the configured model instead of a random one.
    """

    builder: kt.HyperModel
    x: np.ndarray
    y: object
    validation_data: tuple
    monitor: str
    label: str
    fit_options: dict = dataclasses.field(default_factory=dict)
    epoch_score: Callable[[object], float] | None = None
    first_params: dict | None = None


def space_defaults(builder: kt.HyperModel) -> dict:
    """The values a builder's space takes by default (keras-tuner's ``hp`` defaults), as trial parameters."""
    hp = kt.HyperParameters()
    builder.space(hp)
    return dict(hp.values)


def builder_for(windows, base: ModelConfig, config: HpoConfig, source: str = "hpo config"):
    """The window model's builder for this data; refuses a space or data that cannot work, before any training."""
    from shopfloor.components.hpo.builders import PredictiveMaintenanceHyperModel
    from shopfloor.components.train.trainer import feature_statistics

    train, validation = windows.part("train"), windows.part("validation")
    if train.failure.sum() == 0 or validation.failure.size == 0:
        raise DataValidationError(
            "windows",
            "training split has no failures or validation split is empty",
            field="labeling",
            expected="failures in training and a non-empty validation split",
        )
    mean, std = feature_statistics(train.x)
    builder = PredictiveMaintenanceHyperModel(
        window=train.x.shape[1],
        features=train.x.shape[2],
        mean=mean,
        std=std,
        rul_cap_hours=float(windows.info["rul_cap_hours"]),
        base=base,
    )
    builder.check_fits(source)
    return builder


def window_problem(windows: LabelledWindows, builder: kt.HyperModel) -> SearchProblem:
    """Failure/RUL windows: maximize the validation failure PR-AUC (rare failures: precision matters)."""
    train, validation = windows.part("train"), windows.part("validation")
    return SearchProblem(
        builder=builder,
        x=train.x,
        y={"failure": train.failure.astype("float32"), "rul": train.rul},
        validation_data=(validation.x, {"failure": validation.failure.astype("float32"), "rul": validation.rul}),
        monitor=PM_MONITOR,
        label="validation PR-AUC",
    )


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """The mean recall over the classes present in ``labels``: every defect class counts as much as ``ok``."""
    present = np.unique(labels)
    return float(np.mean([(predicted[labels == k] == k).mean() for k in present])) if present.size else 0.0


def image_problem(images: ImageSet, base: CnnConfig) -> SearchProblem:
    """Part images: maximize the validation balanced accuracy, with the class weights training uses.

    Balanced accuracy, not the defect-vs-ok AUC: on parts the latter is near 1 for most configurations and cannot
    rank them, while telling a crack from a scratch (what the rework station needs) still differs.
    """
    from shopfloor.components.train.vision import VisualInspectionHyperModel, fit_data, predict_probabilities

    data = fit_data(images, base.class_weight)
    height, width, channels = data.x.shape[1:]
    builder = VisualInspectionHyperModel((width, height), channels, len(images.classes), base)
    validation_x, validation_labels, _ = data.validation_data

    def score(model) -> float:
        return balanced_accuracy(validation_labels, predict_probabilities(model, validation_x).argmax(axis=1))

    return SearchProblem(
        builder=builder,
        x=data.x,
        y=data.y,
        validation_data=data.validation_data,
        monitor=IMAGE_MONITOR,
        label="validation balanced accuracy",
        fit_options={"class_weight": data.class_weight},
        epoch_score=score,
        first_params=space_defaults(builder),
    )


def anomaly_problem(windows, base: AutoencoderConfig, source: str = "hpo config") -> SearchProblem:
    """Anomaly windows: maximize the validation PR-AUC of the anomaly score, the autoencoder fit on normal windows.

    The reconstruction loss cannot rank configurations: a wider bottleneck reconstructs everything better, faults
    included. Only abnormal windows in the validation period show which configuration tells them apart, so a search
    without them is refused (the threshold falls back to a percentile there; a search has nothing to go on).
    """
    from sklearn.metrics import average_precision_score

    from shopfloor.components.train.autoencoder import AutoencoderHyperModel, anomaly_scores, normal_windows

    validation = windows.part("validation")
    abnormal = int(validation.failure.sum())
    if abnormal == 0 or abnormal == validation.failure.size:
        raise DataValidationError(
            "windows",
            f"the validation part holds {abnormal} abnormal of {validation.failure.size} windows: "
            "nothing to score a search on",
            field="hpo.enabled",
            expected="abnormal and normal windows in the validation period, or hpo.enabled: false",
        )
    normal = normal_windows(windows)
    builder = AutoencoderHyperModel(normal.train.shape[1], normal.train.shape[2], normal.mean, normal.std, base)
    builder.check_fits(source)

    def score(model) -> float:
        return float(average_precision_score(validation.failure, anomaly_scores(model, validation.x)))

    return SearchProblem(
        builder=builder,
        x=normal.train,
        y=normal.targets("train"),
        validation_data=(normal.validation, normal.targets("validation")),
        monitor=ANOMALY_MONITOR,
        label="validation PR-AUC of the anomaly score",
        epoch_score=score,
        first_params=space_defaults(builder),
    )


def _windows_at(path: str, hyperparameters: dict, data_schema: dict, split: dict, config: HpoConfig) -> SearchProblem:
    """The predictive-maintenance problem from a labelled-windows artifact (already split; the schema is not needed)."""
    from shopfloor.components.label.labeling import load_windows

    windows = load_windows(path)
    base = validated(ModelConfig, hyperparameters, "pipeline parameter hyperparameters")
    return window_problem(windows, builder_for(windows, base, config))


def _anomaly_windows_at(
    path: str, hyperparameters: dict, data_schema: dict, split: dict, config: HpoConfig
) -> SearchProblem:
    """The anomaly-detection problem from windows labelled normal/abnormal (already split in time)."""
    from shopfloor.components.label.labeling import load_windows

    base = validated(AutoencoderConfig, hyperparameters, "pipeline parameter hyperparameters")
    return anomaly_problem(load_windows(path), base)


def _images_at(path: str, hyperparameters: dict, data_schema: dict, split: dict, config: HpoConfig) -> SearchProblem:
    """The visual-inspection problem from a labelled image manifest, read with its image schema and split."""
    from shopfloor.common.vision_config import CnnConfig, ImageDataConfig, ImageSplitConfig
    from shopfloor.components.train.vision import load_image_set

    data = validated(ImageDataConfig, data_schema, "pipeline parameter image_schema")
    splitting = validated(ImageSplitConfig, split, "pipeline parameter split")
    base = validated(CnnConfig, hyperparameters, "pipeline parameter hyperparameters")
    return image_problem(load_image_set(path, data, splitting), base)


PROBLEMS: dict[str, Callable[[str, dict, dict, dict, HpoConfig], SearchProblem]] = {
    "predictive-maintenance": _windows_at,
    "anomaly-detection": _anomaly_windows_at,
    "visual-inspection": _images_at,
}


def load_problem(config: HpoConfig, path: str, hyperparameters: dict, data_schema: dict, split: dict) -> SearchProblem:
    """The search problem of ``config.builder`` over the data artifact at ``path``."""
    return PROBLEMS[config.builder](path, hyperparameters, data_schema, split, config)
