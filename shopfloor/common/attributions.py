"""Integrated gradients for the window models: which sensor, at which time step, moved the failure risk.

Shared by the ``explain`` step and the served explainer, so the dashboard and the live endpoint agree. No
attribution library works with our pins (shap's deep explainers do not support Keras 3, alibi changed to a
non-open licence, captum is PyTorch), and integrated gradients is short enough to own: it is exact for our
differentiable model and satisfies completeness (attributions sum to f(x) - f(baseline)), which we test.

The baseline is the "average plant": every reading at its training mean. A missing reading stays missing along
the whole path, so it gets no attribution and the model sees the same gaps it was trained to handle.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Attributions", "integrated_gradients", "mean_baseline"]


@dataclasses.dataclass(frozen=True)
class Attributions:
    """Per-reading attributions [n, window, features] with the scores they explain."""

    values: np.ndarray
    score: np.ndarray
    baseline_score: np.ndarray

    @property
    def per_feature(self) -> np.ndarray:
        """Attributions summed over the window: [n, features]."""
        return self.values.sum(axis=1)


def mean_baseline(mean: list[float], window: int) -> np.ndarray:
    """The 'average plant' window: each feature at its training mean, [window, features]."""
    return np.tile(np.asarray(mean, dtype=np.float32), (window, 1))


def integrated_gradients(
    model,
    x: np.ndarray,
    baseline: np.ndarray,
    output: str = "failure",
    steps: int = 32,
    chunk: int = 32,
) -> Attributions:
    """Attributions of ``model(x)[output]`` relative to ``baseline`` by the trapezoidal integrated-gradients rule.

    Windows are explained ``chunk`` at a time (each needs ``steps + 1`` forward and backward passes), so memory
    stays bounded and a server's other requests get the CPU between chunks; the result does not depend on it.
    """
    x = np.asarray(x, dtype=np.float32)
    parts = [_integrated_gradients(model, x[i : i + chunk], baseline, output, steps) for i in range(0, len(x), chunk)]
    if not parts:
        return _integrated_gradients(model, x, baseline, output, steps)
    return Attributions(
        values=np.concatenate([p.values for p in parts]),
        score=np.concatenate([p.score for p in parts]),
        baseline_score=np.concatenate([p.baseline_score for p in parts]),
    )


def _integrated_gradients(model, x: np.ndarray, baseline: np.ndarray, output: str, steps: int) -> Attributions:
    """Integrated gradients of one chunk of windows, all path points in one forward and backward pass."""
    import tensorflow as tf

    n, window, features = x.shape
    missing = np.isnan(x)
    base = np.where(missing, np.nan, np.broadcast_to(baseline, x.shape)).astype(np.float32)
    alphas = np.linspace(0.0, 1.0, steps + 1, dtype=np.float32).reshape(-1, 1, 1, 1)
    path = (base[None] + alphas * (x - base)[None]).reshape(-1, window, features)
    path_tensor = tf.convert_to_tensor(path)
    with tf.GradientTape() as tape:
        tape.watch(path_tensor)
        scores = tf.reshape(model(path_tensor, training=False)[output], (-1,))
    gradients = tape.gradient(scores, path_tensor).numpy().reshape(steps + 1, n, window, features)
    average = (gradients[:-1] + gradients[1:]).mean(axis=0) / 2.0
    values = np.nan_to_num((x - base) * average, nan=0.0)
    along_path = scores.numpy().reshape(steps + 1, n)
    return Attributions(values=values, score=along_path[-1], baseline_score=along_path[0])
