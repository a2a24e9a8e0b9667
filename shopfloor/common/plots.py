"""Plots for HTML reports: matplotlib rendered headless to inline PNG, so a report is one self-contained file."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable

__all__ = ["figure_png", "figure_to_png", "figures_html", "html_page"]


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


def figure_to_png(figure) -> str:
    """Render an existing matplotlib figure to a base64 PNG and close it."""
    import matplotlib.pyplot as plt

    figure.set_size_inches(6.4, 4.2)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


_STYLE = (
    "body{font-family:sans-serif;margin:1.5em} table{border-collapse:collapse} td,th{border:1px solid #ccc;"
    "padding:3px 8px} figure{display:inline-block;margin:6px} .pass{color:#060} .fail{color:#b00} "
    "tr.drift{background:#fdd}"
)


def figures_html(pngs: dict[str, str]) -> str:
    """Inline ``<figure>`` elements for base64 PNGs, captioned with their titles."""
    return "".join(
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{png}"/>'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
        for title, png in pngs.items()
    )


def html_page(title: str, body: str) -> str:
    """A self-contained HTML report page (the KFP dashboard's HTML viewer shows it as is)."""
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )
