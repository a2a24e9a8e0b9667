"""Custom Keras objects shared by training and serving, registered so ``safe_mode`` loading finds them.

Normalization lives inside the model (no train/serve skew): raw sensor windows go in, with NaN for a missing
reading or a sensor the site does not have; the layer standardizes with the training statistics, zeroes the
gaps and appends a mask channel so the network can tell "missing" from "average".
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["MaskedStandardization", "ReconstructionError", "mean_of_output", "masked_mae"]


@keras.saving.register_keras_serializable(package="shopfloor")
class MaskedStandardization(keras.layers.Layer):
    """Standardize features with fixed statistics; output [standardized, present-mask] on the last axis."""

    def __init__(self, mean: list[float], std: list[float], **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) if v > 0 else 1.0 for v in std]

    def call(self, inputs):  # noqa: D102
        present = ops.logical_not(ops.isnan(inputs))
        standardized = (inputs - ops.convert_to_tensor(self.mean)) / ops.convert_to_tensor(self.std)
        filled = ops.where(present, standardized, ops.zeros_like(standardized))
        return ops.concatenate([filled, ops.cast(present, filled.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):  # noqa: D102
        return (*input_shape[:-1], input_shape[-1] * 2)

    def get_config(self) -> dict:  # noqa: D102
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package="shopfloor")
def masked_mae(y_true, y_pred):
    """Mean absolute error over targets >= 0; a negative target means "unknown" and is ignored."""
    y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), ops.shape(y_pred))
    known = ops.cast(y_true >= 0, y_pred.dtype)
    return ops.sum(ops.abs(y_true - y_pred) * known) / ops.maximum(ops.sum(known), 1.0)


@keras.saving.register_keras_serializable(package="shopfloor")
class ReconstructionError(keras.layers.Layer):
    """Autoencoder error in standard units, over present readings only: per window and per feature.

    Inputs: ``[MaskedStandardization output [n, w, 2f], reconstruction [n, w, f]]``. Outputs
    ``{"score": [n], "feature_errors": [n, f]}``: the mean squared error of the window and of each sensor, so the
    served model answers both "how abnormal" and "which sensor" without a separate explainer.
    """

    def call(self, inputs):  # noqa: D102
        standardized, reconstruction = inputs
        features = ops.shape(reconstruction)[-1]
        values, present = standardized[..., :features], standardized[..., features:]
        squared = ops.square(values - reconstruction) * present
        per_feature = ops.sum(squared, axis=1) / ops.maximum(ops.sum(present, axis=1), 1.0)
        score = ops.sum(squared, axis=(1, 2)) / ops.maximum(ops.sum(present, axis=(1, 2)), 1.0)
        return {"score": score, "feature_errors": per_feature}

    def compute_output_shape(self, input_shape):  # noqa: D102
        batch, _, features = input_shape[1]
        return {"score": (batch,), "feature_errors": (batch, features)}


@keras.saving.register_keras_serializable(package="shopfloor")
def mean_of_output(y_true, y_pred):
    """The mean of the model's output, ignoring the target: trains a model whose output is its own loss."""
    del y_true
    return ops.mean(y_pred)
