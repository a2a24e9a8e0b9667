"""Helpers for the model builders' keras-tuner spaces: defaults taken from the configured model.

A builder's space defaults to the base config's values where the space holds them, so the defaults *are* the
configured model (the search's first trial); where the space does not hold a value, keras-tuner's own default
(the first choice, the minimum) applies. Nothing here imports keras-tuner.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["fitting_kernels", "grid", "in_range", "in_space"]


def in_space(value: object, values: Iterable[object], allowed: bool = True) -> object | None:
    """The element of ``values`` equal to ``value`` (floats within 1e-9), or None; None also when not ``allowed``."""
    if not allowed:
        return None
    for candidate in values:
        if isinstance(candidate, float) and isinstance(value, int | float) and not isinstance(value, bool):
            if math.isclose(candidate, value, abs_tol=1e-9):
                return candidate
        elif candidate == value and type(candidate) is type(value):
            return candidate
    return None


def in_range(value: float, low: float, high: float) -> float | None:
    """``value`` if ``low <= value <= high`` (a continuous hyperparameter holds it), else None."""
    return value if low <= value <= high else None


def grid(low: float, high: float, step: float) -> Sequence[float]:
    """The values of a stepped float hyperparameter, as keras-tuner computes them (``low + k * step``)."""
    return [low + k * step for k in range(int(round((high - low) / step)) + 1)]


def fitting_kernels(kernel_sizes: Sequence[int], window: int) -> list[int]:
    """The kernel sizes a space may offer for windows of ``window`` readings: those that fit, else the window itself.

    A short window narrows the search instead of refusing it (a kernel of 7 on 2 readings is mostly padding).
    """
    return [k for k in kernel_sizes if k <= window] or [window]
