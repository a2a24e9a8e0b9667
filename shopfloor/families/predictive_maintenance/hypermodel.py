"""Model builders: each declares its search space once, in keras-tuner's ``hp`` API, and builds the model.

A builder is a ``keras_tuner.HyperModel`` so keras-tuner's own tuners can run it unchanged (``bench/hpo``
compares them); ``space(hp)`` maps the hyperparameters onto the train step's ``ModelConfig``, so the best
values are exactly what the train step consumes.
"""

from __future__ import annotations

import keras_tuner as kt

from shopfloor.common.hyperparameters import fitting_kernels, in_space
from shopfloor.families.predictive_maintenance.config import ModelConfig
from shopfloor.families.predictive_maintenance.model import build_model
from shopfloor.families.registry import ModelKind

__all__ = ["PredictiveMaintenanceHyperModel"]

KERNEL_SIZES = [3, 5, 7]
WEIGHT_DECAYS = [0.0, 1e-3, 1e-2, 1e-1]


class PredictiveMaintenanceHyperModel(kt.HyperModel):
    """The failure/RUL window model with a searchable size, convolution and schedule."""

    def __init__(
        self, window: int, features: int, mean: list[float], std: list[float], rul_cap_hours: float, base: ModelConfig
    ):
        super().__init__(name=ModelKind.PREDICTIVE_MAINTENANCE.value)
        self.window, self.features = window, features
        self.mean, self.std, self.rul_cap_hours = mean, std, rul_cap_hours
        self.base = base

    def space(self, hp: kt.HyperParameters) -> ModelConfig:
        """Declare the search space and return the model config these values choose."""
        conv_filters = hp.Choice("conv_filters", [0, 16, 32, 64])
        with hp.conditional_scope("conv_filters", [16, 32, 64]):
            kernel_size = hp.Choice("kernel_size", fitting_kernels(KERNEL_SIZES, self.window))
        layers = hp.Int("dense_layers", 1, 3)
        units = []
        for index in range(3):
            with hp.conditional_scope("dense_layers", list(range(index + 1, 4))):
                value = hp.Int(f"units_{index}", 16, 128, step=16)
            if index < layers:
                units.append(value)
        return self.base.model_copy(
            update={
                "conv_filters": conv_filters,
                "kernel_size": kernel_size or self.base.kernel_size,
                "hidden_units": units,
                "dropout": hp.Float("dropout", 0.0, 0.5, step=0.1),
                "weight_decay": hp.Choice(
                    "weight_decay", WEIGHT_DECAYS, default=in_space(self.base.weight_decay, WEIGHT_DECAYS)
                ),
                "learning_rate": hp.Float("learning_rate", 1e-4, 1e-2, sampling="log"),
                "batch_size": hp.Choice("batch_size", [128, 256, 512]),
            }
        )

    def build(self, hp: kt.HyperParameters):
        """The compiled Keras model for these hyperparameters."""
        return build_model(self.window, self.features, self.mean, self.std, self.rul_cap_hours, self.space(hp))

    def fit(self, hp: kt.HyperParameters, model, *args, **kwargs):
        """Fit with the searched batch size (keras-tuner calls this too)."""
        return model.fit(*args, batch_size=hp.get("batch_size"), **kwargs)
