"""Anomaly-detector evaluation: alarms on the test part at the trained threshold, the gate, and the report.

Metrics: false-alarm rate over normal windows (always: it is what an operator feels first), and where the test
part holds abnormal windows, precision/recall/F1 at the threshold plus threshold-free ROC-AUC and PR-AUC of the
score. The gate checks the false-alarm rate, and F1 and recall where they are defined. The report plots the
reconstruction error over time with the threshold, for the held-out assets with the most abnormal windows.
"""

from __future__ import annotations

import dataclasses
import html

import numpy as np
from sklearn import metrics as skm

from shopfloor.common.plots import figure_png, figures_html, html_page
from shopfloor.contracts.windows import LabelledWindows
from shopfloor.families.anomaly_detection.config import AnomalyGateConfig
from shopfloor.families.learning import learning_curves_caption, learning_curves_png
from shopfloor.families.reporting import gate_summary, gate_table_html
from shopfloor.families.shared import roc_points

__all__ = [
    "AnomalyEvaluation",
    "anomaly_gate",
    "anomaly_metrics",
    "evaluate_detector",
    "render_anomaly_report",
    "render_anomaly_summary",
]


@dataclasses.dataclass(frozen=True)
class AnomalyEvaluation:
    """Test-part scores, labels and alarms, with the metrics and the gate's verdict."""

    metrics: dict[str, float]
    confusion_matrix: list[list[int]]
    roc: dict[str, list[float]] | None
    gate: dict
    threshold: float
    labels: np.ndarray
    scores: np.ndarray
    end_time: np.ndarray
    asset: np.ndarray


def anomaly_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """False-alarm and alarm rates; precision/recall/F1 with abnormal windows; ROC-AUC/PR-AUC with both classes."""
    alarms = scores >= threshold
    normal = labels == 0
    metrics = {
        "test_windows": float(labels.size),
        "abnormal_windows": float(labels.sum()),
        "alarm_rate": float(alarms.mean()) if labels.size else 0.0,
        "false_alarm_rate": float(alarms[normal].mean()) if normal.any() else 0.0,
    }
    if labels.any():
        metrics |= {
            "precision": float(skm.precision_score(labels, alarms, zero_division=0)),
            "recall": float(skm.recall_score(labels, alarms, zero_division=0)),
            "f1": float(skm.f1_score(labels, alarms, zero_division=0)),
        }
    if labels.any() and normal.any():
        metrics |= {
            "roc_auc": float(skm.roc_auc_score(labels, scores)),
            "pr_auc": float(skm.average_precision_score(labels, scores)),
        }
    return metrics


def anomaly_gate(metrics: dict[str, float], gate: AnomalyGateConfig, threshold: float) -> dict:
    """The gate: false-alarm rate always; F1 and recall where the test part has abnormal windows to find."""
    rules = [("false_alarm_rate", "<=", gate.max_false_alarm_rate)]
    if "f1" in metrics:
        rules += [("f1", ">=", gate.min_f1), ("recall", ">=", gate.min_recall)]
    checks = []
    for metric, op, limit in rules:
        value = metrics[metric]
        passed = value <= limit if op == "<=" else value >= limit
        checks.append({"metric": metric, "value": round(value, 6), "op": op, "threshold": limit, "passed": passed})
    return {"passed": all(c["passed"] for c in checks), "checks": checks, "decision_threshold": threshold}


def evaluate_detector(model, windows: LabelledWindows, threshold: float, gate: AnomalyGateConfig) -> AnomalyEvaluation:
    """Score the test part, raise alarms at ``threshold`` and apply the gate."""
    from shopfloor.families.anomaly_detection.model import anomaly_scores

    test = windows.part("test")
    if test.x.shape[0] == 0:
        raise ValueError("the test part holds no windows; lower labeling.window or raise labeling.test_fraction")
    labels = test.failure.astype(int)
    scores = anomaly_scores(model, test.x)
    metrics = anomaly_metrics(labels, scores, threshold)
    confusion = skm.confusion_matrix(labels, (scores >= threshold).astype(int), labels=[0, 1])
    return AnomalyEvaluation(
        metrics=metrics,
        confusion_matrix=confusion.astype(int).tolist(),
        roc=roc_points(labels, scores) if "roc_auc" in metrics else None,
        gate=anomaly_gate(metrics, gate, threshold),
        threshold=threshold,
        labels=labels,
        scores=scores,
        end_time=test.end_time,
        asset=test.asset,
    )


def _plots(
    evaluation: AnomalyEvaluation, history: dict[str, list[float]], stopping: dict | None = None
) -> dict[str, str]:
    """Every plot of the report, by title: error over time for up to three assets, histogram, ROC, learning curves."""
    threshold, labels, scores = evaluation.threshold, evaluation.labels, evaluation.scores
    abnormal_per_asset = {a: int(labels[evaluation.asset == a].sum()) for a in np.unique(evaluation.asset)}
    shown = sorted(abnormal_per_asset, key=lambda a: (-abnormal_per_asset[a], a))[:3]

    def timeline(asset: str):
        def draw(ax):
            mask = evaluation.asset == asset
            order = np.argsort(evaluation.end_time[mask])
            times = evaluation.end_time[mask][order].astype("datetime64[ns]")
            asset_scores = scores[mask][order]
            ax.plot(times, asset_scores, lw=0.8, label="reconstruction error")
            top = float(max(asset_scores.max(), threshold) * 1.1)
            ax.fill_between(times, 0, labels[mask][order] * top, color="red", alpha=0.15, step="mid", label="abnormal")
            ax.axhline(threshold, ls="--", color="black", label=f"threshold {threshold:.3g}")
            ax.set(title=f"Held-out {asset}", ylabel="error (standard units²)", ylim=(0, top))
            ax.tick_params(axis="x", labelrotation=30)
            ax.legend(loc="upper left", fontsize=7)

        return draw

    def histogram(ax):
        bins = np.histogram_bin_edges(scores, bins=50)
        ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label="normal", density=True)
        if labels.any():
            ax.hist(scores[labels == 1], bins=bins, alpha=0.6, color="red", label="abnormal", density=True)
        ax.axvline(threshold, ls="--", color="black", label="threshold")
        ax.set(xlabel="reconstruction error", ylabel="density", title="Score distribution (test)")
        ax.legend(fontsize=7)

    def roc(ax):
        assert evaluation.roc is not None  # drawn only when there is a curve
        ax.plot(evaluation.roc["fpr"], evaluation.roc["tpr"], label=f"AUC {evaluation.metrics['roc_auc']:.3f}")
        ax.plot([0, 1], [0, 1], "--", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
        ax.legend(loc="lower right")

    draws = {f"Reconstruction error over time: {a}": timeline(a) for a in shown}
    draws |= {"Score distribution": histogram}
    if evaluation.roc is not None:
        draws["ROC curve"] = roc
    plots = {
        title: figure_png(draw, size=(7.5, 3.6) if title.startswith("Reconstruction") else (5.2, 3.8))
        for title, draw in draws.items()
    }
    # the loss is the reconstruction error of normal windows: train vs validation is the whole story
    return plots | {learning_curves_caption(stopping): learning_curves_png(history, stopping)}


def detector_task(model_info: dict) -> str:
    """What the detector computes, in one line of the model card."""
    inputs = f"the last {model_info['window']} readings of {len(model_info['features'])} sensors"
    threshold = model_info["threshold"]
    return (
        f"anomaly score (autoencoder reconstruction error) of {inputs}; alarm at {threshold['value']:.4g} "
        f"({threshold['method']} on validation data)"
    )


def render_anomaly_report(
    evaluation: AnomalyEvaluation,
    history: dict[str, list[float]],
    model_name: str,
    comparison: str = "",
    stopping: dict | None = None,
) -> str:
    """A self-contained HTML report (plots inline) for the KFP dashboard's HTML viewer.

    ``comparison`` is the HTML table of the engines trained (autoencoder and classical challenger), if any.
    """
    body = f"""<h1>{html.escape(model_name)}: anomaly detection on the held-out period</h1>
<p>Alarm when the reconstruction error reaches {evaluation.threshold:.4g}.</p>
{gate_table_html(evaluation.gate, evaluation.metrics)}{comparison}
<h2>Plots</h2>{figures_html(_plots(evaluation, history, stopping))}"""
    return html_page(f"{model_name} evaluation", body)


def render_anomaly_summary(evaluation: AnomalyEvaluation, model_name: str) -> str:
    """A short Markdown summary for the dashboard's Markdown viewer."""
    detail = f"Alarm threshold {evaluation.threshold:.4g} (reconstruction error)."
    return gate_summary(evaluation.gate, model_name, detail)
