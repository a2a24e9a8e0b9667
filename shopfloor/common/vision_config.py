"""Image data sections every step that reads images shares: which images are expected, how labels merge, the split.

The sections follow :mod:`shopfloor.common.config`: unknown keys are errors, and ``validated`` turns a bad value
into a one-line ``ConfigError`` naming the file and the dotted field. The inspection family's own sections (CNN,
gate, edge export) are in ``families.visual_inspection.config``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from shopfloor.common.config import (
    StrictSection,
    blank_is_none,
)

__all__ = [
    "DEFECT_CLASSES",
    "AnnotationConfig",
    "ImageDataConfig",
    "ImageSplitConfig",
]

DEFECT_CLASSES: tuple[str, ...] = ("ok", "scratch", "dent", "crack", "missing_hole")
_CLASS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class ImageDataConfig(StrictSection):
    """Where the images and their label manifest are, what every image must look like, and what to do if not."""

    images: str = Field("images", description="folder (relative to the data folder) scanned for image files")
    manifest: str | None = Field(
        "labels.csv", description="CSV path,label relative to the data folder; null: one sub-folder per class"
    )
    classes: list[str] = Field(default_factory=lambda: list(DEFECT_CLASSES), min_length=2)
    ok_class: str = Field("ok", description="the class of a good part; every other class is a defect")
    image_size: tuple[int, int] = Field((64, 64), description="width, height in pixels every image must have")
    color_mode: Literal["L", "RGB"] = Field("L", description="Pillow mode: L (8-bit grayscale) or RGB")
    on_invalid: Literal["error", "skip"] = Field("error", description="skip: drop bad images and report why")
    extensions: list[str] = Field(default_factory=lambda: [".png", ".jpg", ".jpeg"], min_length=1)

    _blank_is_none = field_validator("manifest", mode="before")(blank_is_none)

    @model_validator(mode="after")
    def _check_classes(self) -> ImageDataConfig:
        """Classes must be distinct, file-name safe (they name folders), and include the ok class."""
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes must be distinct, got {self.classes}")
        for name in self.classes:
            if not re.match(_CLASS_PATTERN, name):
                raise ValueError(f"class {name!r} must be letters, digits, '_', '-' or '.'")
        if self.ok_class not in self.classes:
            raise ValueError(f"ok_class {self.ok_class!r} is not one of the classes {self.classes}")
        if min(self.image_size) < 1:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if any(not e.startswith(".") for e in self.extensions):
            raise ValueError(f"extensions must start with '.', got {self.extensions}")
        return self


class AnnotationConfig(StrictSection):
    """How expert annotations are read and merged with earlier labels into the labels training uses."""

    image_field: str = Field("image", description="the Label Studio task data key holding the image URL")
    choices_from_name: str | None = Field(
        None, description="the Label Studio Choices tag to read; null: the only choices result of an annotation"
    )
    conflict_window_hours: float = Field(
        24.0,
        ge=0,
        le=87840,
        allow_inf_nan=False,
        description="labels by different annotators this close to the newest are compared; older ones are corrected",
    )
    _blank_is_none = field_validator("choices_from_name", mode="before")(blank_is_none)
    on_conflict: Literal["exclude", "majority"] = Field(
        "exclude", description="majority: a strict majority decides (ties stay excluded); exclude: drop the image"
    )
    on_invalid: Literal["error", "skip"] = Field("error", description="skip: drop bad annotations and report why")
    operator_quorum: int = Field(
        2,
        ge=1,
        le=100,
        description="operators who must propose the same correction before it counts (an expert's label confirms "
        "it at once); 1: every operator's correction counts alone",
    )


class ImageSplitConfig(StrictSection):
    """How labelled images are split into train, validation and test: per class, by a salted hash of the content."""

    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of each class held out for evaluation")
    validation_fraction: float = Field(
        0.15, gt=0, lt=1, description="share of each class for early stopping and the decision threshold"
    )
    seed: int = Field(7, description="salt of the content hash; another seed draws another split")

    @model_validator(mode="after")
    def _check_fractions(self) -> ImageSplitConfig:
        """Test and validation together must leave images to train on."""
        if self.test_fraction + self.validation_fraction >= 0.9:
            raise ValueError(
                f"test_fraction + validation_fraction must be below 0.9, got "
                f"{self.test_fraction} + {self.validation_fraction}"
            )
        return self
