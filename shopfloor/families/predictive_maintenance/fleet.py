"""Predictive maintenance across a fleet of sites: per-site labelling, thresholds, metrics, gate and report section.

One model reads every site's windows; what differs per site is resolved through ``shopfloor.common.fleet``'s
``site_section`` (the fleet's section with the site's overlay):

- labelling: a site's horizon and RUL cap (``site_labeling``);
- the alarm threshold: chosen on the site's validation windows with the site's operating point, like the fleet's
  (``site_thresholds``); a site whose validation windows lack failures or non-failures keeps the fleet's;
- evaluation: the test metrics of each site at its threshold, as ``site/<site>/<metric>`` (``evaluate_by_site``),
  and, when the config has ``sites:`` overlays, a gate check per site and metric against the site's minimums: a
  fleet that passes with one site below its minimum fails, and the check names the site.

Where the data names asset types (pump, compressor...), the test metrics of each type, at the threshold that
answers each of its windows, are ``asset_type/<type>/<metric>`` (``evaluate_by_asset_type``); measured and
reported, never gated. Both are one per-group computation (``group_metrics``) and one report table.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from shopfloor.common.fleet import fleet_schema, site_section
from shopfloor.families.predictive_maintenance.config import GateConfig, LabelingConfig
from shopfloor.families.shared import operating_threshold

if TYPE_CHECKING:
    from shopfloor.contracts.windows import LabelledWindows
    from shopfloor.families.base import StepInputs
    from shopfloor.families.predictive_maintenance.evaluation import Evaluation

__all__ = [
    "ASSET_TYPE_PREFIX",
    "SITE_PREFIX",
    "asset_type_metrics",
    "asset_type_report_html",
    "evaluate_by_asset_type",
    "evaluate_by_group",
    "evaluate_by_site",
    "group_metrics",
    "groups_card_markdown",
    "site_gate",
    "site_labeling",
    "site_metrics",
    "site_report_html",
    "site_thresholds",
]

SITE_PREFIX = "site/"
"""Per-site metrics are ``site/<site>/<metric>`` in the evaluation's metrics (the dashboard's metrics too)."""

ASSET_TYPE_PREFIX = "asset_type/"
"""Per-asset-type metrics are ``asset_type/<type>/<metric>``, beside the per-site ones."""

_GATE_RULES = (
    ("roc_auc", ">=", "min_roc_auc"),
    ("pr_auc", ">=", "min_pr_auc"),
    ("rul_mae_hours", "<=", "max_rul_mae_hours"),
)


def site_labeling(labeling: dict, sites: dict) -> dict[str, LabelingConfig]:
    """The labelling config of each site with an overlay (horizon, RUL cap over the fleet's ``labeling``)."""
    return {
        site: site_section(LabelingConfig, labeling, sites, site, "labeling", "pipeline parameter data_schema")
        for site in sorted(sites)
    }


def site_gate(gate: dict, sites: dict, site: str) -> GateConfig:
    """The gate (operating point and minimums) of one site: the fleet's ``gate`` with the site's overlay."""
    return site_section(GateConfig, gate, sites, site, "gate", "pipeline parameter data_schema")


def _named(group: np.ndarray) -> list[str]:
    """The named groups (sites, asset types) among windows, sorted; none for data without the column."""
    return sorted({str(s) for s in group} - {""})


def site_thresholds(validation: LabelledWindows, score: np.ndarray, inputs: StepInputs, fleet: dict) -> dict:
    """Each site's alarm threshold chosen on its own validation windows, with its operating point.

    ``fleet`` is the fleet's threshold (``operating_threshold`` over every validation window); a site whose
    validation windows lack failures or non-failures keeps its value, saying so.
    """
    _, sites = fleet_schema(inputs.data_schema)
    chosen = {}
    for site in _named(validation.sites):
        mine = validation.sites == site
        y, gate = validation.failure[mine], site_gate(inputs.gate, sites, site)
        if gate.operating_point != "fixed" and np.unique(y).size < 2:
            chosen[site] = {
                **{k: v for k, v in fleet.items() if k != "by_site"},
                "method": f"fleet's ({fleet['method']}): no failures and non-failures among the site's validation "
                "windows",
                "validation_windows": int(y.size),
            }
            continue
        chosen[site] = operating_threshold(
            y, score[mine], gate.operating_point, gate.decision_threshold, gate.target_recall, gate.miss_cost
        )
    return chosen


def group_metrics(evaluation: Evaluation, group: np.ndarray, threshold: np.ndarray) -> dict[str, dict[str, float]]:
    """Test metrics of each named group of windows (a site, an asset type), each window at its ``threshold``."""
    return {name: _window_metrics(evaluation, group == name, threshold) for name in _named(group)}


def _window_metrics(evaluation: Evaluation, mine: np.ndarray, threshold: np.ndarray) -> dict[str, float]:
    """The metrics of the ``mine`` test windows: ranking where both classes occur, RUL where known, alarms.

    ``threshold`` is one per test window; ``threshold`` is reported when the group's windows share one.
    """
    from shopfloor.families.predictive_maintenance.evaluation import (
        classification_metrics,
        false_alarms_per_asset_week,
        regression_metrics,
    )

    limits = threshold[mine]
    shared = np.unique(limits).size == 1
    at: float | np.ndarray = float(limits[0]) if shared else limits
    y, score = evaluation.failure_true[mine], evaluation.failure_score[mine]
    metrics = {"test_windows": float(y.size), "failures": float(y.sum()), "positive_rate": float(y.mean())}
    if shared:
        metrics["threshold"] = float(at)
    if np.unique(y).size == 2:
        metrics.update(classification_metrics(y, score, at))
    if (evaluation.rul_true[mine] >= 0).any():
        metrics.update(regression_metrics(evaluation.rul_true[mine], evaluation.rul_pred[mine]))
    metrics["false_alarms_per_asset_week"] = false_alarms_per_asset_week(
        y, score, at, evaluation.asset[mine], evaluation.end_time[mine]
    )
    return metrics


def site_metrics(evaluation: Evaluation, site: np.ndarray, operating: dict) -> dict[str, dict[str, float]]:
    """Test metrics of each site at its own threshold (the fleet's where it has none)."""
    by_site = operating.get("by_site") or {}
    threshold = np.array([float((by_site.get(str(name)) or operating)["value"]) for name in site], dtype=float)
    return group_metrics(evaluation, site, threshold)


def asset_type_metrics(evaluation: Evaluation, asset_type: np.ndarray) -> dict[str, dict[str, float]]:
    """Test metrics of each asset type, every window at the threshold that answered it (none without types)."""
    return group_metrics(evaluation, asset_type, evaluation.answering_thresholds)


def _prefixed(by_group: dict[str, dict[str, float]], prefix: str) -> dict[str, float]:
    """Per-group metrics as flat evaluation metrics: ``<prefix><group>/<metric>``."""
    return {f"{prefix}{name}/{key}": value for name, values in by_group.items() for key, value in values.items()}


def _site_checks(by_site: dict[str, dict[str, float]], inputs: StepInputs, sites: dict) -> tuple[list[dict], dict]:
    """Gate checks of every site against its own minimums, and the sites that could not be judged (and why)."""
    checks, not_judged = [], {}
    for name, metrics in sorted(by_site.items()):
        gate = site_gate(inputs.gate, sites, name)
        if "roc_auc" not in metrics:
            not_judged[name] = "its test windows hold no failures (or only failures): ROC-AUC and PR-AUC undefined"
            continue
        for metric, op, field in _GATE_RULES:
            if metric not in metrics:
                continue
            value, limit = metrics[metric], float(getattr(gate, field))
            passed = value >= limit if op == ">=" else value <= limit
            word = "meets" if passed else ("below" if op == ">=" else "above")
            checks.append(
                {
                    "metric": f"{SITE_PREFIX}{name}/{metric}",
                    "value": round(value, 6),
                    "op": op,
                    "threshold": limit,
                    "passed": passed,
                    "site": name,
                    "reason": f"site {name}: {metric} {value:.4g} {word} its {'minimum' if op == '>=' else 'maximum'} "
                    f"{limit:g}",
                }
            )
    return checks, not_judged


def evaluate_by_site(evaluation: Evaluation, windows: LabelledWindows, inputs: StepInputs) -> Evaluation:
    """The evaluation with each site's test metrics (``site/<site>/<metric>``) and, for a fleet config, its gate.

    Data without sites is returned as it was. With ``sites:`` overlays every site in the test split is gated
    against its own minimums (the fleet's where its overlay sets none); the fleet passes only if every site does.
    """
    site = windows.part("test").sites
    operating = evaluation.gate.get("operating_point") or {"value": evaluation.gate["decision_threshold"]}
    by_site = site_metrics(evaluation, site, operating)
    if not by_site:
        return evaluation
    metrics = {**evaluation.metrics, **_prefixed(by_site, SITE_PREFIX)}
    _, sites = fleet_schema(inputs.data_schema)
    gate = dict(evaluation.gate)
    if sites:
        checks, not_judged = _site_checks(by_site, inputs, sites)
        gate["checks"] = [*gate["checks"], *checks]
        gate["passed"] = all(check["passed"] for check in gate["checks"])
        gate["sites_not_judged"] = not_judged
        failing = sorted({c["site"] for c in checks if not c["passed"]})
        if failing:
            gate["reason"] = "; ".join(c["reason"] for c in checks if not c["passed"])
    return dataclasses.replace(evaluation, metrics=metrics, gate=gate)


def evaluate_by_asset_type(evaluation: Evaluation, windows: LabelledWindows) -> Evaluation:
    """The evaluation with each asset type's test metrics (``asset_type/<type>/<metric>``); the gate is unchanged.

    Data without asset types (no column, or '' for every test window) is returned as it was.
    """
    by_type = asset_type_metrics(evaluation, windows.part("test").asset_types)
    if not by_type:
        return evaluation
    return dataclasses.replace(evaluation, metrics={**evaluation.metrics, **_prefixed(by_type, ASSET_TYPE_PREFIX)})


def evaluate_by_group(evaluation: Evaluation, windows: LabelledWindows, inputs: StepInputs) -> Evaluation:
    """The evaluation by site (metrics, and the gate of a fleet config) and by asset type (metrics only)."""
    return evaluate_by_asset_type(evaluate_by_site(evaluation, windows, inputs), windows)


def _groups_in(metrics: dict[str, float], prefix: str) -> dict[str, dict[str, float]]:
    """The per-group metrics of an evaluation (``prefix``: sites or asset types), by group."""
    found: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if key.startswith(prefix):
            name, metric = key[len(prefix) :].rsplit("/", 1)
            found.setdefault(name, {})[metric] = value
    return dict(sorted(found.items()))


_COLUMNS: tuple[str, ...] = ("threshold", "test_windows", "failures", "positive_rate", "roc_auc", "pr_auc")
_COLUMNS += ("precision", "recall", "f1", "rul_mae_hours", "false_alarms_per_asset_week")


def _cell(values: dict[str, float], name: str) -> str:
    """One table cell: the metric, 'per site' for a group whose windows answer at their sites' thresholds, or n/a."""
    if name in values:
        return f"{values[name]:.4g}"
    return "per site" if name == "threshold" else "n/a"


def _group_table_html(by_group: dict[str, dict[str, float]], label: str, verdict: Callable[[str], str] | None) -> str:
    """An HTML table of each group's threshold and metrics, with a gate column when ``verdict`` judges groups."""
    names = (label, *_COLUMNS, *(("gate",) if verdict else ()))
    header = "".join(f"<th>{html.escape(c)}</th>" for c in names)
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{_cell(values, c)}</td>" for c in _COLUMNS)
        + (f"<td>{html.escape(verdict(name))}</td>" if verdict else "")
        + "</tr>"
        for name, values in by_group.items()
    )
    return f"<table><tr>{header}</tr>{rows}</table>"


def _group_bars_png(by_group: dict[str, dict[str, float]], title: str) -> str:
    """A bar plot of each group's ROC-AUC, PR-AUC and F1, with its alarm threshold where it has one (base64 PNG)."""
    from shopfloor.common.plots import figure_png

    def bars(ax) -> None:
        names, shown = list(by_group), ("roc_auc", "pr_auc", "f1")
        positions = np.arange(len(names))
        for offset, metric in enumerate(shown):
            heights = [by_group[name].get(metric, 0.0) for name in names]
            ax.bar(positions + (offset - 1) * 0.27, heights, width=0.27, label=metric)
        marked = [i for i, name in enumerate(names) if "threshold" in by_group[name]]
        ax.scatter(
            positions[marked],
            [by_group[names[i]]["threshold"] for i in marked],
            color="black",
            marker="_",
            s=400,
            label="alarm threshold",
            zorder=3,
        )
        ax.set(xticks=positions, xticklabels=names, ylim=(0, 1.05), title=title)
        ax.legend(loc="lower right", fontsize=7)

    return figure_png(bars)


def site_report_html(evaluation: Evaluation) -> str:
    """The report's "Sites" section: a table of each site's threshold, metrics and gate, and a bar plot ("" if none)."""
    from shopfloor.common.plots import figures_html

    by_site = _groups_in(evaluation.metrics, SITE_PREFIX)
    if not by_site:
        return ""
    verdicts: dict[str, list[bool]] = {}
    for check in evaluation.gate["checks"]:
        if "site" in check:
            verdicts.setdefault(check["site"], []).append(bool(check["passed"]))
    not_judged = evaluation.gate.get("sites_not_judged") or {}

    def verdict(name: str) -> str:
        if name in not_judged:
            return f"not judged: {not_judged[name]}"
        if name not in verdicts:
            return "not gated (no sites: overlays)"
        return "pass" if all(verdicts[name]) else "FAIL"

    plot = figures_html({"Metrics by site": _group_bars_png(by_site, "Held-out windows by site")})
    return (
        "<h2>Sites</h2><p>Each site's windows at its own alarm threshold (chosen on its validation windows).</p>"
        f"{_group_table_html(by_site, 'site', verdict)}{plot}"
    )


def asset_type_report_html(evaluation: Evaluation) -> str:
    """The report's "Asset types" section: each type's metrics at the threshold that answers, and a bar plot."""
    from shopfloor.common.plots import figures_html

    by_type = _groups_in(evaluation.metrics, ASSET_TYPE_PREFIX)
    if not by_type:
        return ""
    plot = figures_html({"Metrics by asset type": _group_bars_png(by_type, "Held-out windows by asset type")})
    return (
        "<h2>Asset types</h2><p>Each asset type's held-out windows at the alarm threshold that answers them (the "
        "model's; each site's where site models answer: 'per site'). Measured, not gated.</p>"
        f"{_group_table_html(by_type, 'asset type', None)}{plot}"
    )


_CARD_COLUMNS: tuple[str, ...] = ("test_windows", "failures", "roc_auc", "pr_auc", "precision", "recall", "f1")
_CARD_COLUMNS += ("threshold", "rul_mae_hours", "false_alarms_per_asset_week")


def groups_card_markdown(metrics: dict[str, float]) -> str:
    """The model card's "By site" and "By asset type" tables of the test metrics ("" for data with neither)."""
    sections = []
    for prefix, title, label in ((SITE_PREFIX, "By site", "site"), (ASSET_TYPE_PREFIX, "By asset type", "asset type")):
        by_group = _groups_in(metrics, prefix)
        if not by_group:
            continue
        lines = [f"| {label} | " + " | ".join(_CARD_COLUMNS) + " |", "|" + " --- |" * (len(_CARD_COLUMNS) + 1)]
        lines += [
            f"| {name} | " + " | ".join(_cell(v, c) for c in _CARD_COLUMNS) + " |" for name, v in by_group.items()
        ]
        sections.append(f"\n## {title} (test split)\n\n" + "\n".join(lines) + "\n")
    return "".join(sections)
