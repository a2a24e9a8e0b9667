"""What every family's evaluation reports the same way: the gate's verdict (table, summary) and the model card.

The model card is the traceability record plants need for every model they run: the data it saw (source URIs,
content hashes, profile), the code version, hyperparameters, metrics and the quality gate's verdict.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING

from shopfloor.contracts.edge import edge_card_section

if TYPE_CHECKING:
    from shopfloor.families.base import EvaluationResult, ModelRecord

__all__ = [
    "card_results",
    "engine_rows",
    "engines_card_section",
    "engines_html",
    "gate_rows",
    "gate_summary",
    "gate_table_html",
    "render_model_card",
]


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


def engine_rows(record: ModelRecord, metrics: dict[str, float], names: tuple[str, ...]) -> list[list[str]]:
    """One row per engine trained (the one that answers first): validation score, then test ``names``.

    Empty for a model trained without a challenger. Each engine is measured at its own alarm threshold, chosen on
    the same validation split, so thresholded metrics compare fairly.
    """
    challenger = record.model_info.get("challenger")
    if not challenger or not record.alternatives:
        return []
    chosen = challenger["chosen"]
    rows = []
    for engine, found in {chosen: metrics, **record.alternatives}.items():
        label = f"{engine} (answers)" if engine == chosen else engine
        validation = challenger["validation"].get(engine, float("nan"))
        rows.append([label, f"{validation:.4f}", *(f"{found[name]:.4g}" if name in found else "-" for name in names)])
    return rows


def engines_card_section(record: ModelRecord, metrics: dict[str, float], names: tuple[str, ...]) -> str:
    """The model card's comparison of the network and its classical challenger (empty without one)."""
    rows = engine_rows(record, metrics, names)
    if not rows:
        return ""
    metric = record.model_info["challenger"]["metric"]
    header = f"| engine | {metric} | " + " | ".join(f"test {name}" for name in names) + " |"
    lines = [header, "|" + " --- |" * (len(names) + 2), *("| " + " | ".join(row) + " |" for row in rows)]
    return (
        "\n## Network vs classical challenger\nBoth trained on the same split; the better on validation answers "
        "(the network on a tie).\n\n" + "\n".join(lines) + "\n"
    )


def engines_html(record: ModelRecord, metrics: dict[str, float], names: tuple[str, ...]) -> str:
    """The HTML report's comparison of the network and its classical challenger (empty without one)."""
    rows = engine_rows(record, metrics, names)
    if not rows:
        return ""
    metric = html.escape(record.model_info["challenger"]["metric"])
    header = "".join(f"<th>test {html.escape(name)}</th>" for name in names)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return (
        "<h2>Network vs classical challenger</h2><p>Both trained on the same split; the better on validation "
        f"answers (the network on a tie).</p><table><tr><th>engine</th><th>{metric}</th>{header}</tr>{body}</table>"
    )


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


def render_model_card(
    record: ModelRecord,
    labels: dict,
    evaluation: EvaluationResult,
    task: str,
    created: dt.datetime | None = None,
) -> str:
    """The model card: data, code, hyperparameters, metrics and gate verdict of one model version.

    ``task`` is the family's one line of what the model predicts from what.
    """
    model_name, model_version = record.model_name, record.version
    model_info, profile = record.model_info, record.profile
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
- **Task:** {task}
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

{card_results(model_info["hyperparameters"], evaluation.metrics, evaluation.gate)}
{edge_card_section(model_info.get("edge", {}))}"""
