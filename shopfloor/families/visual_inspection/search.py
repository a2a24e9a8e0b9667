"""The CNN's search problem: its space over the labelled images, scored by validation balanced accuracy."""

from __future__ import annotations

import numpy as np

from shopfloor.common.config import HpoConfig, validated
from shopfloor.families.search import SearchProblem, space_defaults, training_sample

__all__ = [
    "IMAGE_MONITOR",
    "problem_at",
    "balanced_accuracy",
    "image_problem",
]


IMAGE_MONITOR = "val_balanced_accuracy"


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """The mean recall over the classes present in ``labels``: every defect class counts as much as ``ok``."""
    present = np.unique(labels)
    return float(np.mean([(predicted[labels == k] == k).mean() for k in present])) if present.size else 0.0


def image_problem(images, base) -> SearchProblem:
    """Part images: maximize the validation balanced accuracy, with the class weights training uses.

    Balanced accuracy, not the defect-vs-ok AUC: on parts the latter is near 1 for most configurations and cannot
    rank them, while telling a crack from a scratch (what the rework station needs) still differs.
    """
    from shopfloor.families.visual_inspection.model import VisualInspectionHyperModel, fit_data, predict_probabilities

    data = fit_data(images, base.class_weight)
    height, width, channels = data.x.shape[1:]
    builder = VisualInspectionHyperModel((width, height), channels, len(images.classes), base)
    validation_x, validation_labels, _ = data.validation_data

    def score(model) -> float:
        return balanced_accuracy(validation_labels, predict_probabilities(model, validation_x).argmax(axis=1))

    sample = training_sample(len(data.x))
    sample_x, sample_labels = data.x[sample], data.y[sample]

    def train_score(model) -> float:
        """Balanced accuracy on the training sample, without augmentation or dropout (inference mode)."""
        return balanced_accuracy(sample_labels, predict_probabilities(model, sample_x).argmax(axis=1))

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
        train_score=train_score,
    )


def problem_at(path: str, hyperparameters: dict, data_schema: dict, split: dict, config: HpoConfig) -> SearchProblem:
    """The visual-inspection problem from a labelled image manifest, read with its image schema and split."""
    from shopfloor.common.vision_config import ImageDataConfig, ImageSplitConfig
    from shopfloor.contracts.images import load_image_set
    from shopfloor.families.visual_inspection.config import CnnConfig

    data = validated(ImageDataConfig, data_schema, "pipeline parameter image_schema")
    splitting = validated(ImageSplitConfig, split, "pipeline parameter split")
    base = validated(CnnConfig, hyperparameters, "pipeline parameter hyperparameters")
    return image_problem(load_image_set(path, data, splitting), base)
