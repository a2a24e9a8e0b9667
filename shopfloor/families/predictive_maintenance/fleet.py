"""Predictive maintenance across a fleet of sites: per-site labelling, thresholds, metrics, gate and report section.

One model reads every site's windows; what differs per site is resolved through ``shopfloor.common.fleet``'s
``site_section`` (the fleet's section with the site's overlay):

- labelling: a site's horizon and RUL cap (``site_labeling``);
- the alarm threshold: chosen on the site's validation windows with the site's operating point, like the fleet's
  (``site_thresholds``); a site whose validation windows lack failures or non-failures keeps the fleet's;
- evaluation: the test metrics of each site at its threshold, as ``site/<site>/<metric>`` (``evaluate_by_site``),
  and, when the config has ``sites:`` overlays, a gate check per site and metric against the site's minimums: a
  fleet that passes with one site below its minimum fails, and the check names the site.
"""

from __future__ import annotations

import dataclasses
import html
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
    "SITE_PREFIX",
    "evaluate_by_site",
    "site_gate",
    "site_labeling",
    "site_metrics",
    "site_report_html",
    "site_thresholds",
]

SITE_PREFIX = "site/"
"""Per-site metrics are ``site/<site>/<metric>`` in the evaluation's metrics (the dashboard's metrics too)."""

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


def _named_sites(site: np.ndarray) -> list[str]:
    """The sites among windows, sorted; none for data without a site column."""
    return sorted({str(s) for s in site} - {""})


def site_thresholds(validation: LabelledWindows, score: np.ndarray, inputs: StepInputs, fleet: dict) -> dict:
    """Each site's alarm threshold chosen on its own validation windows, with its operating point.

    ``fleet`` is the fleet's threshold (``operating_threshold`` over every validation window); a site whose
    validation windows lack failures or non-failures keeps its value, saying so.
    """
    _, sites = fleet_schema(inputs.data_schema)
    chosen = {}
    for site in _named_sites(validation.sites):
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


def site_metrics(evaluation: Evaluation, site: np.ndarray, operating: dict) -> dict[str, dict[str, float]]:
    """Test metrics of each site at its own threshold (the fleet's where it has none)."""
    from shopfloor.families.predictive_maintenance.evaluation import (
        classification_metrics,
        false_alarms_per_asset_week,
        regression_metrics,
    )

    by_site = operating.get("by_site") or {}
    found = {}
    for name in _named_sites(site):
        mine = site == name
        threshold = float((by_site.get(name) or operating)["value"])
        y, score = evaluation.failure_true[mine], evaluation.failure_score[mine]
        metrics: dict[str, float] = {
            "threshold": threshold,
            "test_windows": float(y.size),
            "positive_rate": float(y.mean()),
        }
        if np.unique(y).size == 2:
            metrics.update(classification_metrics(y, score, threshold))
        if (evaluation.rul_true[mine] >= 0).any():
            metrics.update(regression_metrics(evaluation.rul_true[mine], evaluation.rul_pred[mine]))
        metrics["false_alarms_per_asset_week"] = false_alarms_per_asset_week(
            y, score, threshold, evaluation.asset[mine], evaluation.end_time[mine]
        )
        found[name] = metrics
    return found


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
    metrics = dict(evaluation.metrics)
    for name, values in by_site.items():
        metrics.update({f"{SITE_PREFIX}{name}/{key}": value for key, value in values.items()})
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


def _sites_in(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """The per-site metrics of an evaluation, by site."""
    found: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if key.startswith(SITE_PREFIX):
            name, metric = key[len(SITE_PREFIX) :].rsplit("/", 1)
            found.setdefault(name, {})[metric] = value
    return dict(sorted(found.items()))


def site_report_html(evaluation: Evaluation) -> str:
    """The report's "Sites" section: a table of each site's threshold, metrics and gate, and a bar plot ("" if none)."""
    from shopfloor.common.plots import figure_png, figures_html

    by_site = _sites_in(evaluation.metrics)
    if not by_site:
        return ""
    verdicts: dict[str, list[bool]] = {}
    for check in evaluation.gate["checks"]:
        if "site" in check:
            verdicts.setdefault(check["site"], []).append(bool(check["passed"]))
    not_judged = evaluation.gate.get("sites_not_judged") or {}
    columns: tuple[str, ...] = ("threshold", "test_windows", "positive_rate", "roc_auc", "pr_auc", "precision")
    columns += ("recall", "f1")
    columns += ("rul_mae_hours", "false_alarms_per_asset_week")

    def cell(values: dict[str, float], name: str) -> str:
        return f"{values[name]:.4g}" if name in values else "n/a"

    def verdict(name: str) -> str:
        if name in not_judged:
            return f"not judged: {not_judged[name]}"
        if name not in verdicts:
            return "not gated (no sites: overlays)"
        return "pass" if all(verdicts[name]) else "FAIL"

    header = "".join(f"<th>{html.escape(c)}</th>" for c in ("site", *columns, "gate"))
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{cell(values, c)}</td>" for c in columns)
        + f"<td>{html.escape(verdict(name))}</td></tr>"
        for name, values in by_site.items()
    )

    def bars(ax) -> None:
        names, shown = list(by_site), ("roc_auc", "pr_auc", "f1")
        positions = np.arange(len(names))
        for offset, metric in enumerate(shown):
            heights = [by_site[name].get(metric, 0.0) for name in names]
            ax.bar(positions + (offset - 1) * 0.27, heights, width=0.27, label=metric)
        ax.scatter(
            positions,
            [by_site[name]["threshold"] for name in names],
            color="black",
            marker="_",
            s=400,
            label="alarm threshold",
            zorder=3,
        )
        ax.set(xticks=positions, xticklabels=names, ylim=(0, 1.05), title="Held-out windows by site")
        ax.legend(loc="lower right", fontsize=7)

    return (
        "<h2>Sites</h2><p>Each site's windows at its own alarm threshold (chosen on its validation windows).</p>"
        f"<table><tr>{header}</tr>{rows}</table>{figures_html({'Metrics by site': figure_png(bars)})}"
    )
