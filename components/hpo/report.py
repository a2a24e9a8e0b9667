"""The HPO report: optimization history, parameter importances and parallel coordinates, from Optuna's plots."""

from __future__ import annotations

import html
import json
import warnings
from collections.abc import Callable
from typing import Any

import optuna

from shopfloor.common.plots import figure_to_png, figures_html, html_page
from shopfloor.components.hpo.search import SearchSummary

__all__ = ["render_hpo_report"]


def _plots(study: optuna.Study) -> dict[str, str]:
    """Optuna's matplotlib plots as PNGs; a plot the study cannot support yet (too few trials) is left out."""
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as optuna_plots

    makers: dict[str, Callable[[optuna.Study], Any]] = {
        "Optimization history": optuna_plots.plot_optimization_history,
        "Parameter importances": optuna_plots.plot_param_importances,
        "Parallel coordinates": optuna_plots.plot_parallel_coordinate,
    }
    figures = {}
    for title, make in makers.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axis = make(study)
        except (ValueError, RuntimeError, ZeroDivisionError):
            continue
        axis = axis.flat[0] if hasattr(axis, "flat") else axis
        figures[title] = figure_to_png(axis.figure)
    return figures


def render_hpo_report(study: optuna.Study, summary: SearchSummary, chosen: dict, model_name: str) -> str:
    """A self-contained HTML page: the budget, what each trial did, the best configuration and the plots."""
    states = ", ".join(f"{count} {state.lower()}" for state, count in sorted(summary.by_state.items()))
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(json.dumps(v))}</td></tr>" for k, v in sorted(chosen.items())
    )
    body = f"""<h1>{html.escape(model_name)}: hyperparameter search</h1>
<p>Study <code>{html.escape(study.study_name)}</code>: {summary.requested} trials requested; {states}
({summary.retried} retried after a worker stopped, {summary.surplus} surplus closed unrun).
Best {html.escape(study.user_attrs.get("objective", "score"))} <b>{summary.best_value:.4f}</b>.</p>
<h2>Configuration handed to training</h2><table><tr><th>hyperparameter</th><th>value</th></tr>{rows}</table>
<h2>Plots</h2>{figures_html(_plots(study))}"""
    return html_page(f"{model_name} hyperparameter search", body)
