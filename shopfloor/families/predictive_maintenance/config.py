"""Config sections of predictive maintenance: window labelling, the window model, its gate, and the scenario.

The sections follow :mod:`shopfloor.common.config`: unknown keys are errors, and ``validated`` turns a bad value
into a one-line ``ConfigError`` naming the file and the dotted field.
"""

from __future__ import annotations

from typing import Literal

import pydantic
from pydantic import BaseModel, Field

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
from shopfloor.common.fleet import check_site_overlays, partial_section, site_overlay_model

__all__ = ["FleetConfig", "GateConfig", "LabelingConfig", "ModelConfig", "PredictiveMaintenanceConfig", "SiteOverlay"]


class LabelingConfig(StrictSection):
    """How readings become labelled windows: the failure horizon, window length and the asset split."""

    horizon_hours: float = Field(48.0, gt=0)
    window: int = Field(24, ge=2, le=1024, description="readings per window")
    stride: int = Field(2, ge=1, description="readings between window starts")
    rul_cap_hours: float = Field(240.0, gt=0, description="remaining useful life is clipped here")
    test_fraction: float = Field(0.25, gt=0, lt=1, description="share of assets held out for evaluation")
    validation_fraction: float = Field(0.2, gt=0, lt=1, description="share of training assets for early stopping")
    seed: int = 7


class ModelConfig(StrictSection):
    """Size and training schedule of the Keras model."""

    hidden_units: list[int] = Field(default_factory=lambda: [64, 32], min_length=1)
    conv_filters: int = Field(32, ge=0, description="0: no temporal convolution")
    kernel_size: int = Field(5, ge=1, description="readings the convolution looks at")
    dropout: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(
        1e-2, ge=0, lt=1, description="AdamW's decoupled weight decay (kernels shrink by learning_rate x this a step)"
    )
    learning_rate: float = Field(1e-3, gt=0)
    epochs: int = Field(15, ge=1)
    patience: int = Field(4, ge=1, description="epochs without validation PR-AUC improvement before stopping")
    batch_size: int = Field(256, ge=1)
    seed: int = 7


class GateConfig(StrictSection):
    """The alarm's operating point, chosen on the validation split, and the quality gate on the test split."""

    operating_point: Literal["best-f1", "target-recall", "min-cost", "fixed"] = Field(
        "best-f1",
        description="how the alarm threshold is chosen on validation windows: the best F1, the highest threshold "
        "reaching target_recall, the least miss_cost x missed + false alarms, or decision_threshold as given",
    )
    decision_threshold: float = Field(
        0.5, gt=0, lt=1, description="the threshold with operating_point: fixed, or when validation has no failures"
    )
    target_recall: float = Field(0.8, gt=0, le=1, description="operating_point target-recall: failures to catch")
    miss_cost: float = Field(
        10.0, gt=0, description="operating_point min-cost: a missed failure costs this many false alarms"
    )
    min_roc_auc: float = Field(0.85, ge=0, le=1)
    min_pr_auc: float = Field(0.5, ge=0, le=1)
    max_rul_mae_hours: float = Field(72.0, gt=0)
    challenger: Literal["lightgbm", "none"] = Field(
        "lightgbm",
        description="a classical model trained on the same split (gradient-boosted trees on window statistics); "
        "the better of it and the network on validation PR-AUC is evaluated, published and served",
    )


class FleetConfig(StrictSection):
    """How a fleet with a site column is modelled: one global model, a model per site, or the global one fine-tuned."""

    strategy: Literal["global", "per-site", "global-then-site"] = Field(
        "global",
        description="global: one model for every site; per-site: a model (network + challenger) per site on its own "
        "windows; global-then-site: the global model fine-tuned on each site's windows. The global model is always "
        "trained: it answers at the fleet's endpoint and for a site too small for a model of its own",
    )
    compare: bool = Field(
        False, description="also train the other strategies and show all of them side by side, site by site"
    )
    fine_tune_epochs: int = Field(5, ge=1, description="global-then-site: most epochs on a site's training windows")
    fine_tune_learning_rate: float = Field(
        0.1, gt=0, le=1, description="global-then-site: the learning rate as a share of the model's"
    )
    retrain_only: list[str] = Field(
        default_factory=list,
        description="a retrain of named sites (the monitor's retrain sets it): only these sites' models are fitted "
        "again, the other sites' models are kept unchanged from keep_models_from; the global model is always "
        "refitted. Empty: every site",
    )
    keep_models_from: str = Field(
        "", description="with retrain_only: the published model folder (path or s3://) keeping the other sites' models"
    )

    @pydantic.model_validator(mode="after")
    def _kept_models_have_a_source(self) -> FleetConfig:
        """A retrain of some sites must say where the others' models come from."""
        if self.retrain_only and not self.keep_models_from:
            raise ValueError("retrain_only needs keep_models_from (the published model folder)")
        return self


# What one site of a fleet may set differently (``sites:``); one model reads every site's windows, so the window
# length, stride and split stay the fleet's, and so do the model and its search.
SiteOverlay: type[BaseModel] = site_overlay_model(
    "PredictiveMaintenanceSite",
    {
        "labeling": partial_section(LabelingConfig, frozenset({"horizon_hours", "rul_cap_hours"})),
        "gate": partial_section(GateConfig),
        "monitor": partial_section(MonitorConfig),
        "deploy": partial_section(DeployConfig),
    },
)


class PredictiveMaintenanceConfig(SensorDataLocations, StrictSection):
    """A predictive-maintenance scenario: data layout, labeling, model and gate."""

    scenario: Literal["predictive-maintenance"] = "predictive-maintenance"
    model_name: str = Field("predictive-maintenance", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    data: DataConfig = Field(default_factory=DataConfig)
    labeling: LabelingConfig = Field(default_factory=LabelingConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    hpo: HpoConfig = Field(default_factory=HpoConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    fleet: FleetConfig = Field(default_factory=FleetConfig)
    sites: dict[str, SiteOverlay] = Field(  # type: ignore[valid-type]  # built by site_overlay_model
        default_factory=dict, description="per site (a value of the site column): what differs from the fleet"
    )

    _search_defaults = pydantic.field_validator("hpo", mode="before")(lambda v: over_scenario_search(v, HpoConfig()))
    _scenario_builder = pydantic.field_validator("hpo")(lambda hpo: require_builder(hpo, "predictive-maintenance"))
    _fleet = pydantic.field_validator("sites")(lambda sites, info: check_site_overlays(sites, info.data.get("data")))
