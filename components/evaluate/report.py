"""The evaluation report (HTML with embedded plots), its Markdown summary, and the model card.

Operators read plots, not numbers: the report shows ROC and PR curves, the confusion matrix, predicted vs. true
remaining useful life, the training curves and one held-out asset's failure probability over time. The model
card is the traceability record plants need for every model they run: the data it saw (source URIs, content
hashes, profile), the code version, hyperparameters, metrics and the quality gate's verdict.
"""

from __future__ import annotations

import datetime as dt
import html

import numpy as np

from shopfloor.common.plots import figure_png, figures_html, html_page
from shopfloor.components.evaluate.evaluator import Evaluation

__all__ = ["gate_rows", "gate_summary", "gate_table_html", "render_model_card", "render_report", "render_summary"]


def _plots(evaluation: Evaluation, history: dict[str, list[float]], threshold: float) -> dict[str, str]:
    """Every plot of the report, by title."""
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

    def curves(ax):
        for name in ("loss", "val_loss"):
            if name in history:
                ax.plot(history[name], label=name)
        ax.set(xlabel="epoch", ylabel="loss", title="Training")
        ax.legend()

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
        "Training curves": curves,
        "Failure probability over time": timeline,
    }
    return {title: figure_png(draw) for title, draw in draws.items()}


def gate_rows(gate: dict) -> list[tuple[str, str, str, str]]:
    """Gate checks as (metric, value, rule, verdict) rows."""
    return [
        (c["metric"], f"{c['value']:.4g}", f"{c['op']} {c['threshold']}", "pass" if c["passed"] else "FAIL")
        for c in gate["checks"]
    ]


def gate_summary(gate: dict, model_name: str, detail: str) -> str:
    """The dashboard's Markdown summary: heading, gate table, and one line of what the model decides with."""
    lines = [
        f"# {model_name}: quality gate {'passed' if gate['passed'] else 'FAILED'}",
        "",
        "| metric | value | rule | verdict |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {m} | {v} | {r} | {d} |" for m, v, r, d in gate_rows(gate)]
    return "\n".join([*lines, "", detail]) + "\n"


def card_results(hyperparameters: dict, metrics: dict[str, float], gate: dict) -> str:
    """The model card's hyperparameter, metric and quality-gate tables (Markdown), the same for every model type."""
    hyper = "\n".join(f"| {k} | {v} |" for k, v in sorted(hyperparameters.items()))
    metric_rows = "\n".join(f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items()))
    checks = "\n".join(f"| {m} | {v} | {r} | {d} |" for m, v, r, d in gate_rows(gate))
    return f"""## Hyperparameters
| name | value |
| --- | --- |
{hyper}

## Metrics (test split)
| metric | value |
| --- | --- |
{metric_rows}

## Quality gate
| metric | value | rule | verdict |
| --- | --- | --- | --- |
{checks}
"""


def gate_table_html(gate: dict, metrics: dict[str, float]) -> str:
    """The verdict line and the gate and metric tables every evaluation report starts with."""
    verdict = "PASSED - deployable" if gate["passed"] else "FAILED - not deployable"
    metric_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.4g}</td></tr>" for k, v in sorted(metrics.items()))
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in gate_rows(gate)
    )
    return f"""<p class="{"pass" if gate["passed"] else "fail"}"><b>Quality gate {verdict}</b></p>
<h2>Quality gate</h2><table><tr><th>metric</th><th>value</th><th>rule</th><th>verdict</th></tr>{rows}</table>
<h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>{metric_rows}</table>"""


def render_report(evaluation: Evaluation, history: dict[str, list[float]], model_name: str) -> str:
    """A self-contained HTML report (plots inline) for the KFP dashboard's HTML viewer."""
    threshold = evaluation.gate["decision_threshold"]
    body = f"""<h1>{html.escape(model_name)}: evaluation on held-out assets</h1>
{gate_table_html(evaluation.gate, evaluation.metrics)}
<h2>Plots</h2>{figures_html(_plots(evaluation, history, threshold))}"""
    return html_page(f"{model_name} evaluation", body)


def render_summary(evaluation: Evaluation, model_name: str) -> str:
    """A short Markdown summary for the dashboard's Markdown viewer."""
    detail = (
        f"F1 {evaluation.metrics['f1']:.3f} at threshold {evaluation.gate['decision_threshold']}, "
        f"RUL RMSE {evaluation.metrics['rul_rmse_hours']:.1f} h."
    )
    return gate_summary(evaluation.gate, model_name, detail)


def _task(model_info: dict) -> str:
    """What the model predicts, in one line of the model card."""
    inputs = f"the last {model_info['window']} readings of {len(model_info['features'])} sensors"
    if model_info.get("model_type") == "anomaly-detection":
        threshold = model_info["threshold"]
        return (
            f"anomaly score (autoencoder reconstruction error) of {inputs}; alarm at {threshold['value']:.4g} "
            f"({threshold['method']} on validation data)"
        )
    return (
        f"probability of failure within {model_info['horizon_hours']} h and remaining useful life "
        f"(capped at {model_info['rul_cap_hours']} h) from {inputs}"
    )


def render_model_card(
    model_name: str,
    model_version: str,
    model_info: dict,
    profile: dict,
    labels: dict,
    evaluation,
    created: dt.datetime | None = None,
) -> str:
    """The model card: data, code, hyperparameters, metrics and gate verdict of one model version."""
    created = created or dt.datetime.now(dt.UTC)
    versions = model_info.get("versions", {})
    sources = profile.get("sources", {})
    source_rows = [f"| {name} | `{s['uri']}` | `{s['sha256']}` | {s['bytes']} |" for name, s in sorted(sources.items())]
    feature_rows = []
    for name in model_info["features"]:
        column = profile["sensors"]["columns"].get(name, {})
        feature_rows.append(
            f"| {name} | {column.get('mean')} | {column.get('std')} | {column.get('min')} | "
            f"{column.get('max')} | {column.get('missing')} |"
        )
    time_column = profile["sensors"]["columns"].get("timestamp", {})
    balance = "\n".join(
        f"| {k} | {v['windows']} | {v['positives']} | {v['positive_rate']} |"
        for k, v in labels["class_balance"].items()
    )
    return f"""# Model card: {model_name} {model_version}

- **Created:** {created.strftime("%Y-%m-%dT%H:%M:%SZ")}
- **Task:** {_task(model_info)}
- **Quality gate:** {"PASSED (deployable)" if evaluation.gate["passed"] else "FAILED (not deployable)"}
- **Code:** shopfloor {versions.get("shopfloor", "?")} (git {versions.get("git_commit") or "unknown"}),
  TensorFlow {versions.get("tensorflow", "?")}, Keras {versions.get("keras", "?")}

## Data
| table | source | sha256 | bytes |
| --- | --- | --- | --- |
{chr(10).join(source_rows)}

{profile["sensors"]["rows"]} readings of {profile.get("assets", "?")} assets from {time_column.get("min")} to
{time_column.get("max")}; events by type: {profile.get("events", {}).get("by_type", {})}.

| feature | mean | std | min | max | missing |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(feature_rows)}

## Labels and split ({labels.get("split", "by asset")})
| split | windows | {"abnormal" if labels.get("target") == "anomaly" else "failing within horizon"} | rate |
| --- | --- | --- | --- |
{balance}

Test assets: {", ".join(labels["assets"]["test"])}

{card_results(model_info["hyperparameters"], evaluation.metrics, evaluation.gate)}"""
