"""Plots for HTML reports: matplotlib rendered headless to inline PNG, so a report is one self-contained file."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

__all__ = ["figure_png"]


def figure_png(draw: Callable, size: tuple[float, float] = (5.2, 3.8)) -> str:
    """Render a function that draws on a matplotlib axis to a base64 PNG for an ``<img src="data:...">``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=size, dpi=90)
    draw(axis)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()
