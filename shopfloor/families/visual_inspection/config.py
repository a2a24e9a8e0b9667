"""Config sections of visual inspection: the CNN, its gate, the edge export, and the scenario.

The image data schema, annotation merging and split are data contracts shared below the families
(:mod:`shopfloor.common.vision_config`); the sections here are what only the inspection model uses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from shopfloor.common.config import (
    DeployConfig,
    HpoConfig,
    MonitorConfig,
    StrictSection,
    over_scenario_search,
    require_builder,
)
from shopfloor.common.storage import is_s3_uri, join_uri
from shopfloor.common.vision_config import AnnotationConfig, ImageDataConfig, ImageSplitConfig
from shopfloor.families.edge_export import EdgeConfig

__all__ = ["VISION_SEARCH", "CnnConfig", "TfliteConfig", "VisionGateConfig", "VisualInspectionConfig"]


class CnnConfig(StrictSection):
    """Size, augmentation and training schedule of the image classifier (a small CNN trained from scratch)."""

    filters: list[int] = Field(
        default_factory=lambda: [16, 32, 64], min_length=1, max_length=5, description="filters per conv block"
    )
    convs_per_block: int = Field(2, ge=1, le=3, description="convolutions (batch-normalized) before each pooling")
    kernel_size: int = Field(3, ge=1, le=9, description="pixels each convolution looks at (square)")
    local_contrast: int = Field(
        5, ge=0, le=15, description="subtract each pixel's mean over this square first (lighting-free); 0: off"
    )
    pooling: Literal["average", "max"] = Field(
        "average", description="average: evidence averaged over the image (sharper Grad-CAM); max: strongest spot"
    )
    dense_units: int = Field(0, ge=0, description="hidden dense layer after pooling; 0: none")
    dropout: float = Field(0.2, ge=0, lt=1, description="before the class layer")
    weight_decay: float = Field(
        1e-2, ge=0, lt=1, description="AdamW's decoupled weight decay (kernels shrink by learning_rate x this a step)"
    )
    flip: bool = Field(True, description="random horizontal and vertical flips in training")
    rotation: float = Field(0.0, ge=0, le=0.5, description="random rotation, as a fraction of a full turn either way")
    translation: float = Field(0.0, ge=0, lt=0.5, description="random shift, as a fraction of the image size")
    contrast: float = Field(0.1, ge=0, lt=1, description="random contrast change factor in training")
    brightness: float = Field(0.0, ge=0, lt=1, description="random brightness change, as a fraction of full scale")
    learning_rate: float = Field(2e-3, gt=0)
    epochs: int = Field(45, ge=1)
    patience: int = Field(10, ge=1, description="epochs without validation-loss improvement before stopping")
    batch_size: int = Field(32, ge=1)
    class_weight: Literal["balanced", "none"] = Field(
        "balanced", description="balanced: weight each class by n / (classes * count), so rare defects count"
    )
    seed: int = 7


class VisionGateConfig(StrictSection):
    """The decision threshold's target and the quality gate of an image classifier, on the test split.

    A missed defect ships a bad part; a false reject costs a second look. So the defect score (1 - P(ok)) gets a
    threshold chosen on validation images to catch ``target_defect_recall`` of defects, and the gate checks what
    that threshold does on the test split.
    """

    target_defect_recall: float = Field(
        0.95, gt=0, le=1, description="share of validation defects the decision threshold must catch"
    )
    min_accuracy: float = Field(0.8, ge=0, le=1, description="share of test images given their true class")
    min_defect_recall: float = Field(0.9, ge=0, le=1, description="share of defective test parts rejected")
    max_false_reject_rate: float = Field(0.15, ge=0, le=1, description="share of good test parts rejected")
    min_roc_auc: float = Field(0.9, ge=0, le=1, description="defect-vs-ok ROC-AUC of the defect score")
    challenger: Literal["lightgbm", "none"] = Field(
        "lightgbm",
        description="a classical model trained on the same split (gradient-boosted trees on coarse gray pixels); "
        "the better of it and the CNN on validation defect-vs-ok PR-AUC is evaluated, published and served",
    )


class TfliteConfig(EdgeConfig):
    """The edge export: which TFLite variants to write and how far the quantized one may fall behind."""

    quantize: bool = Field(True, description="also write the int8 post-training quantized variant")
    representative_images: int = Field(100, ge=1, le=10000, description="training images calibrating int8 ranges")
    max_accuracy_drop: float = Field(0.03, ge=0, le=1, description="quantized vs. Keras accuracy on the test split")
    seed: int = 7


VISION_SEARCH = HpoConfig(builder="visual-inspection", trials=6, max_epochs=10)


class VisualInspectionConfig(StrictSection):
    """A visual-inspection scenario: the images, how labels merge, the split, the CNN, its gate and the edge export."""

    scenario: Literal["visual-inspection"] = "visual-inspection"
    model_name: str = Field("visual-inspection", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    data_root: str = Field("", description="the folder or s3:// prefix holding the images ('' = set by --data)")
    data: ImageDataConfig = Field(default_factory=ImageDataConfig)
    annotations: list[str] = Field(
        default_factory=list, description="Label Studio JSON or CSV exports (relative to the data folder), merged in"
    )
    labeling: AnnotationConfig = Field(default_factory=AnnotationConfig)
    split: ImageSplitConfig = Field(default_factory=ImageSplitConfig)
    model: CnnConfig = Field(default_factory=CnnConfig)
    hpo: HpoConfig = Field(
        default_factory=VISION_SEARCH.model_copy,
        description="Optuna search over the CNN's keras-tuner space from `model`; the best values override it",
    )
    gate: VisionGateConfig = Field(default_factory=VisionGateConfig)
    edge: TfliteConfig = Field(default_factory=TfliteConfig)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)

    _search_defaults = field_validator("hpo", mode="before")(lambda v: over_scenario_search(v, VISION_SEARCH))
    _scenario_builder = field_validator("hpo")(lambda hpo: require_builder(hpo, "visual-inspection"))

    def resolve_data(self, base: str | os.PathLike) -> VisualInspectionConfig:
        """The data folder: ``base`` (the --data folder or the config's folder); annotation paths resolved in it."""
        root = str(base) if is_s3_uri(base) else str(Path(base).resolve())
        exports = [a if is_s3_uri(a) or Path(a).is_absolute() else join_uri(root, a) for a in self.annotations]
        return self.model_copy(update={"annotations": exports, "data_root": root})
