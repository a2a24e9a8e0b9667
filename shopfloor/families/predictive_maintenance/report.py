"""The predictive-maintenance evaluation report (HTML with embedded plots) and its Markdown summary.

Operators read plots, not numbers: the report shows ROC and PR curves, the confusion matrix, predicted vs. true
remaining useful life, the training curves and one held-out asset's failure probability over time.
"""

from __future__ import annotations

import html

import numpy as np

from shopfloor.common.plots import figure_png, figures_html, html_page
from shopfloor.families.learning import learning_curves_caption, learning_curves_png
from shopfloor.families.predictive_maintenance.evaluation import Evaluation
from shopfloor.families.predictive_maintenance.fleet import asset_type_report_html, site_report_html
from shopfloor.families.reporting import gate_summary, gate_table_html

__all__ = [
    "render_report",
    "render_summary",
]


def _plots(
    evaluation: Evaluation, history: dict[str, list[float]], threshold: float, stopping: dict | None = None
) -> dict[str, str]:
    """Every plot of the report, by title; ``stopping`` is the model's early-stopping record (the restored epoch)."""
    from sklearn import metrics as skm

    y, score = evaluation.failure_true, evaluation.failure_score

    def roc(ax):
        ax.plot(evaluation.roc["fpr"], evaluation.roc["tpr"], label=f"AUC {evaluation.metrics['roc_auc']:.3f}")
        ax.plot([0, 1], [0, 1], "--", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
        ax.legend(loc="lower right")

    def pr(ax):
        precision, recall, _ = skm.precision_recall_curve(y, score)
        ax.plot(recall, precision, label=f"AP {evaluation.metrics['pr_auc']:.3f}")
        ax.axhline(float(np.mean(y)), ls="--", color="grey", label="base rate")
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
        ax.legend(loc="lower left")

    def confusion(ax):
        matrix = np.array(evaluation.confusion_matrix)
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", color="black")
        ax.set(
            xticks=[0, 1],
            yticks=[0, 1],
            xticklabels=["ok", "fails"],
            yticklabels=["ok", "fails"],
            xlabel="predicted",
            ylabel="actual",
            title=f"Confusion matrix at threshold {threshold}",
        )

    def rul(ax):
        known = evaluation.rul_true >= 0
        ax.scatter(evaluation.rul_true[known], evaluation.rul_pred[known], s=4, alpha=0.3)
        top = float(max(evaluation.rul_true.max(), 1.0))
        ax.plot([0, top], [0, top], "--", color="grey")
        ax.set(xlabel="true RUL (h)", ylabel="predicted RUL (h)", title="Remaining useful life")

    def timeline(ax):
        positives = {a: int(y[evaluation.asset == a].sum()) for a in np.unique(evaluation.asset)}
        asset = max(sorted(positives), key=lambda a: positives[a])
        mask = evaluation.asset == asset
        order = np.argsort(evaluation.end_time[mask])
        times = evaluation.end_time[mask][order].astype("datetime64[ns]")
        ax.plot(times, score[mask][order], label="P(fail within horizon)")
        ax.fill_between(times, 0, y[mask][order], color="red", alpha=0.15, step="mid", label="fails within horizon")
        ax.axhline(threshold, ls="--", color="grey")
        ax.set(title=f"Held-out asset {asset}", ylim=(0, 1))
        ax.tick_params(axis="x", labelrotation=30)
        ax.legend(loc="upper left", fontsize=7)

    draws = {
        "ROC curve": roc,
        "Precision-recall": pr,
        "Confusion matrix": confusion,
        "Remaining useful life": rul,
        "Failure probability over time": timeline,
    }
    plots = {title: figure_png(draw) for title, draw in draws.items()}
    return plots | {learning_curves_caption(stopping): learning_curves_png(history, stopping, "failure_pr_auc")}


def model_task(model_info: dict) -> str:
    """What the model predicts, in one line of the model card."""
    inputs = f"the last {model_info['window']} readings of {len(model_info['features'])} sensors"
    return (
        f"probability of failure within {model_info['horizon_hours']} h and remaining useful life "
        f"(capped at {model_info['rul_cap_hours']} h) from {inputs}"
    )


def render_report(
    evaluation: Evaluation,
    history: dict[str, list[float]],
    model_name: str,
    comparison: str = "",
    stopping: dict | None = None,
) -> str:
    """A self-contained HTML report (plots inline) for the KFP dashboard's HTML viewer.

    ``comparison`` is the HTML table of the engines trained (network and classical challenger), if any;
    ``stopping`` the network's early-stopping record, marked on its learning curves.
    """
    threshold = evaluation.gate["decision_threshold"]
    body = f"""<h1>{html.escape(model_name)}: evaluation on held-out assets</h1>
{gate_table_html(evaluation.gate, evaluation.metrics)}{comparison}
<h2>Alarm</h2><p>{html.escape(operating_sentence(evaluation))}</p>{site_report_html(evaluation)}
{asset_type_report_html(evaluation)}
<h2>Plots</h2>{figures_html(_plots(evaluation, history, threshold, stopping))}"""
    return html_page(f"{model_name} evaluation", body)


def operating_sentence(evaluation: Evaluation) -> str:
    """Where the alarm fires and what it costs: the threshold, how it was chosen, test recall and false alarms."""
    fixed = {"method": "fixed", "value": evaluation.gate["decision_threshold"]}
    point = evaluation.gate.get("operating_point") or fixed
    m = evaluation.metrics
    chosen = f"chosen on the validation windows for {point['method']}" if "validation_windows" in point else "fixed"
    return (
        f"The alarm fires at P(failure) >= {point['value']:.3f} ({chosen}). On the held-out assets it catches "
        f"{m['recall']:.0%} of the windows before a failure at precision {m['precision']:.0%} (F1 {m['f1']:.3f}), "
        f"with {m.get('false_alarms_per_asset_week', float('nan')):.2f} false alarms per asset and week."
    )


def render_summary(evaluation: Evaluation, model_name: str) -> str:
    """A short Markdown summary for the dashboard's Markdown viewer."""
    detail = f"{operating_sentence(evaluation)} RUL RMSE {evaluation.metrics['rul_rmse_hours']:.1f} h."
    return gate_summary(evaluation.gate, model_name, detail)
