"""Config sections of anomaly detection: labelling abnormal windows, the autoencoder, its gate, and the scenario.

The sections follow :mod:`shopfloor.common.config`: unknown keys are errors, and ``validated`` turns a bad value
into a one-line ``ConfigError`` naming the file and the dotted field.
"""

from __future__ import annotations

from typing import Literal

import pydantic
from pydantic import Field

from shopfloor.common.config import (
    DataConfig,
    DeployConfig,
    HpoConfig,
    MonitorConfig,
    SensorDataLocations,
    StrictSection,
    over_scenario_search,
    require_builder,
)

__all__ = [
    "ANOMALY_SEARCH",
    "AnomalyDetectionConfig",
    "AnomalyGateConfig",
    "AnomalyLabelingConfig",
    "AutoencoderConfig",
]


ANOMALY_SEARCH = HpoConfig(builder="anomaly-detection", trials=8, max_epochs=10)


class AnomalyLabelingConfig(StrictSection):
    """How readings become windows for anomaly detection: window length and a chronological split per asset.

    A reading is abnormal from ``before_hours`` before an anomaly event (``data.failure_values``) until
    ``after_hours`` after it; a window is abnormal if any of its readings is. Each asset's history is cut in
    time order (train, then validation, then test), so one machine's data is enough and no future leaks back.
    """

    window: int = Field(24, ge=2, le=1024, description="readings per window")
    stride: int = Field(2, ge=1, description="readings between window starts")
    before_hours: float = Field(12.0, ge=0, description="readings this long before an event are abnormal")
    after_hours: float = Field(0.0, ge=0, description="readings this long after an event are abnormal")
    validation_fraction: float = Field(0.2, gt=0, lt=1, description="share of each asset's time for validation")
    test_fraction: float = Field(0.25, gt=0, lt=1, description="share of each asset's time held out for evaluation")


class AutoencoderConfig(StrictSection):
    """Size and training schedule of the window autoencoder, and how its alarm threshold is chosen."""

    conv_filters: int = Field(32, ge=1, description="filters of the encoder's temporal convolutions")
    kernel_size: int = Field(5, ge=1, description="readings each convolution looks at")
    latent_units: int = Field(16, ge=1, description="size of the bottleneck a window is squeezed through")
    dropout: float = Field(0.0, ge=0, lt=1, description="on the encoder's features before the bottleneck")
    weight_decay: float = Field(
        1e-2, ge=0, lt=1, description="AdamW's decoupled weight decay (kernels shrink by learning_rate x this a step)"
    )
    learning_rate: float = Field(1e-3, gt=0)
    epochs: int = Field(30, ge=1)
    patience: int = Field(4, ge=1, description="epochs without validation-loss improvement before stopping")
    batch_size: int = Field(128, ge=1)
    threshold: Literal["auto", "best-f1", "percentile"] = Field(
        "auto", description="auto: best F1 on validation where it holds abnormal windows, else the percentile"
    )
    threshold_percentile: float = Field(99.0, gt=0, lt=100, description="of normal validation windows' errors")
    seed: int = 7


class AnomalyGateConfig(StrictSection):
    """The anomaly detector's quality gate on the test split."""

    min_f1: float = Field(0.5, ge=0, le=1, description="checked where the test split holds abnormal windows")
    min_recall: float = Field(0.4, ge=0, le=1, description="share of abnormal test windows that raise an alarm")
    max_false_alarm_rate: float = Field(0.05, gt=0, le=1, description="share of normal test windows flagged")
    challenger: Literal["pca", "none"] = Field(
        "pca",
        description="a classical detector fitted on the same normal windows (PCA reconstruction error); the better "
        "of it and the autoencoder on validation PR-AUC is evaluated, published and served",
    )


class AnomalyDetectionConfig(SensorDataLocations, StrictSection):
    """An anomaly-detection scenario: an autoencoder on normal operation, a threshold, a gate."""

    scenario: Literal["anomaly-detection"] = "anomaly-detection"
    model_name: str = Field("anomaly-detection", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    data: DataConfig = Field(default_factory=DataConfig)
    labeling: AnomalyLabelingConfig = Field(default_factory=AnomalyLabelingConfig)
    model: AutoencoderConfig = Field(default_factory=AutoencoderConfig)
    hpo: HpoConfig = Field(
        default_factory=ANOMALY_SEARCH.model_copy,
        description="Optuna search over the autoencoder's space from `model`; needs anomalies in the validation period",
    )
    gate: AnomalyGateConfig = Field(default_factory=AnomalyGateConfig)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)

    _search_defaults = pydantic.field_validator("hpo", mode="before")(lambda v: over_scenario_search(v, ANOMALY_SEARCH))
    _scenario_builder = pydantic.field_validator("hpo")(lambda hpo: require_builder(hpo, "anomaly-detection"))
