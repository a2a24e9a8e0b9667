"""Explanation logic: integrated gradients over held-out windows, summarized for operators.

Global importance is the mean absolute attribution per sensor over a sample of test windows (which sensors
drive the risk at all); the signed mean says in which direction. Per-window explanations are shown for the
cases an operator asks about: the most confident alarm, a false alarm, a missed failure and a quiet window.
"""

from __future__ import annotations

import dataclasses
import html

import numpy as np

from shopfloor.common.attributions import Attributions, integrated_gradients, mean_baseline
from shopfloor.common.plots import figure_png, figures_html, html_page
from shopfloor.contracts.windows import LabelledWindows

__all__ = [
    "INTEGRATED_GRADIENTS",
    "TREE_SHAP",
    "Explanation",
    "explain_windows",
    "render_explain_report",
    "render_explain_summary",
    "sample_windows",
]

INTEGRATED_GRADIENTS = "integrated gradients"
TREE_SHAP = "tree SHAP (the classical challenger; per sensor, spread evenly over the window)"


@dataclasses.dataclass(frozen=True)
class Explanation:
    """Attributions for a sample of test windows, with global importances and the showcased cases."""

    features: list[str]
    attributions: Attributions
    labels: np.ndarray
    assets: np.ndarray
    importance: dict[str, float]
    direction: dict[str, float]
    cases: dict[str, int]
    method: str = "integrated gradients"


def sample_windows(labels: np.ndarray, scores: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices to explain: every positive up to half the budget (highest risk first), the rest at random."""
    rng = np.random.default_rng(seed)
    positives = np.flatnonzero(labels == 1)
    positives = positives[np.argsort(-scores[positives], kind="stable")][: size // 2]
    rest = np.setdiff1d(np.arange(labels.size), positives)
    chosen = np.concatenate([positives, rng.choice(rest, size=min(size - positives.size, rest.size), replace=False)])
    return np.sort(chosen)


def _cases(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, int]:
    """Positions (in the sample) of the showcased cases that exist in it."""
    alarm = scores >= threshold
    groups = {
        "most confident alarm": labels.astype(bool) & alarm,
        "false alarm": ~labels.astype(bool) & alarm,
        "missed failure": labels.astype(bool) & ~alarm,
        "quiet window": ~labels.astype(bool) & ~alarm,
    }
    cases = {}
    for name, mask in groups.items():
        if mask.any():
            pick = np.argmax if name in ("most confident alarm", "false alarm") else np.argmin
            candidates = np.flatnonzero(mask)
            cases[name] = int(candidates[pick(scores[candidates])])
    return cases


def explain_windows(
    model,
    windows: LabelledWindows,
    model_info: dict,
    *,
    sample_size: int = 256,
    threshold: float = 0.5,
    steps: int = 32,
    seed: int = 7,
) -> Explanation:
    """Explain a sample of the test split with integrated gradients against the training-mean baseline."""
    test = windows.part("test")
    scores = np.asarray(model(test.x, training=False)["failure"]).reshape(-1)
    chosen = sample_windows(test.failure, scores, sample_size, seed)
    if hasattr(model, "attributions"):  # the classical challenger answers: exact tree SHAP, per sensor
        result, method = model.attributions(test.x[chosen]), TREE_SHAP
    else:
        baseline = mean_baseline(model_info["normalization"]["mean"], test.x.shape[1])
        result, method = integrated_gradients(model, test.x[chosen], baseline, steps=steps), INTEGRATED_GRADIENTS
    per_feature = result.per_feature
    importance = dict(zip(windows.features, np.abs(per_feature).mean(axis=0).round(6).tolist(), strict=True))
    direction = dict(zip(windows.features, per_feature.mean(axis=0).round(6).tolist(), strict=True))
    return Explanation(
        features=windows.features,
        attributions=result,
        labels=test.failure[chosen],
        assets=test.asset[chosen],
        importance=importance,
        direction=direction,
        cases=_cases(test.failure[chosen], result.score, threshold),
        method=method,
    )


_BASELINES = {
    INTEGRATED_GRADIENTS: 'an "average plant" baseline (every sensor at its training mean)',
    TREE_SHAP: "the trees' expected risk over the training windows",
}


def _ranked(explanation: Explanation) -> list[str]:
    """Features from most to least important."""
    return sorted(explanation.importance, key=lambda name: explanation.importance[name], reverse=True)


def render_explain_report(explanation: Explanation, model_name: str) -> str:
    """HTML: global importance bars and a time x sensor heatmap for each showcased case."""
    ranked = _ranked(explanation)

    def bars(ax):
        values = [explanation.importance[f] for f in ranked][::-1]
        colours = ["#b22" if explanation.direction[f] > 0 else "#26b" for f in ranked][::-1]
        ax.barh(ranked[::-1], values, color=colours)
        ax.set(xlabel="mean |attribution| to failure probability", title="Which sensors drive the risk")

    def heatmap(index: int, title: str):
        def draw(ax):
            values = explanation.attributions.values[index].T
            limit = float(np.abs(values).max()) or 1.0
            image = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set(
                yticks=range(len(explanation.features)),
                yticklabels=explanation.features,
                xlabel="reading in window (oldest to newest)",
                title=f"{title}: {explanation.assets[index]}, P(fail)={explanation.attributions.score[index]:.2f}",
            )
            ax.figure.colorbar(image, ax=ax, fraction=0.04)

        return draw

    figures = {"Global importance": figure_png(bars)}
    figures.update({f"{name}": figure_png(heatmap(index, name)) for name, index in explanation.cases.items()})
    rows = "".join(
        f"<tr><td>{html.escape(f)}</td><td>{explanation.importance[f]:.4g}</td>"
        f"<td>{'raises' if explanation.direction[f] > 0 else 'lowers'}</td></tr>"
        for f in ranked
    )
    body = f"""<h1>{html.escape(model_name)}: why the model raises failure risk</h1>
<p>{html.escape(explanation.method.capitalize())} on {explanation.attributions.values.shape[0]} held-out windows,
against {_BASELINES[explanation.method]}. Red: pushes the risk up; blue: pushes it down.</p>
<table><tr><th>sensor</th><th>mean |attribution|</th><th>on average</th></tr>{rows}</table>
{figures_html(figures)}"""
    return html_page(f"{model_name} explanations", body)


def render_explain_summary(explanation: Explanation, model_name: str) -> str:
    """Markdown for the dashboard: the sensors ranked by importance."""
    lines = [
        f"# {model_name}: sensors that drive the failure risk",
        "",
        "| sensor | importance | on average |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {f} | {explanation.importance[f]:.4g} | {'raises' if explanation.direction[f] > 0 else 'lowers'} risk |"
        for f in _ranked(explanation)
    ]
    return "\n".join(lines) + "\n"
