"""Evaluation logic: metrics on the held-out assets and the quality gate (the "blessing" that gates deploy).

Classification: ROC-AUC, PR-AUC (average precision), precision/recall/F1 and the confusion matrix at the
configured decision threshold. Regression: MAE and RMSE of remaining useful life over windows whose RUL is
known. The gate compares each metric with its threshold from the config and passes only if all pass.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn import metrics as skm

from shopfloor.contracts.windows import LabelledWindows
from shopfloor.families.predictive_maintenance.config import GateConfig
from shopfloor.families.shared import roc_points

__all__ = [
    "Evaluation",
    "classification_metrics",
    "evaluate_model",
    "false_alarms_per_asset_week",
    "predict",
    "quality_gate",
    "regression_metrics",
]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Everything the report, the model card and the KFP metrics artifacts need."""

    metrics: dict[str, float]
    confusion_matrix: list[list[int]]
    roc: dict[str, list[float]]
    gate: dict
    failure_true: np.ndarray
    failure_score: np.ndarray
    rul_true: np.ndarray
    rul_pred: np.ndarray
    end_time: np.ndarray
    asset: np.ndarray
    window_threshold: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))

    @property
    def answering_thresholds(self) -> np.ndarray:
        """The threshold each test window was alarmed at (its site's where site models answer; else the gate's)."""
        if self.window_threshold.size == self.failure_score.size:
            return self.window_threshold
        return np.full(self.failure_score.size, float(self.gate["decision_threshold"]))


def predict(model, x: np.ndarray, batch_size: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Failure probabilities and RUL predictions (hours) for a batch of windows."""
    outputs = model.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(outputs["failure"]).reshape(-1), np.asarray(outputs["rul"]).reshape(-1)


def classification_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float | np.ndarray) -> dict[str, float]:
    """Threshold-free (ROC-AUC, PR-AUC) and thresholded (precision, recall, F1) metrics for one class.

    ``threshold`` is one value, or one per window (a fleet whose sites answer with models of their own).
    """
    if np.unique(y_true).size < 2:
        raise ValueError("the test split holds only one class; ROC-AUC is undefined")
    predicted = (score >= threshold).astype(int)
    return {
        "roc_auc": float(skm.roc_auc_score(y_true, score)),
        "pr_auc": float(skm.average_precision_score(y_true, score)),
        "precision": float(skm.precision_score(y_true, predicted, zero_division=0)),
        "recall": float(skm.recall_score(y_true, predicted, zero_division=0)),
        "f1": float(skm.f1_score(y_true, predicted, zero_division=0)),
        "positive_rate": float(np.mean(y_true)),
        "test_windows": float(y_true.size),
    }


def regression_metrics(rul_true: np.ndarray, rul_pred: np.ndarray) -> dict[str, float]:
    """MAE and RMSE (hours) of remaining useful life, over the windows whose RUL is known."""
    known = rul_true >= 0
    errors = rul_pred[known] - rul_true[known]
    return {
        "rul_mae_hours": float(np.mean(np.abs(errors))),
        "rul_rmse_hours": float(np.sqrt(np.mean(errors**2))),
        "rul_known_windows": float(known.sum()),
    }


def quality_gate(metrics: dict[str, float], gate: GateConfig, operating: dict) -> dict:
    """Compare metrics with the gate's thresholds; the model is deployable only if every check passes."""
    rules = [
        ("roc_auc", ">=", gate.min_roc_auc),
        ("pr_auc", ">=", gate.min_pr_auc),
        ("rul_mae_hours", "<=", gate.max_rul_mae_hours),
    ]
    checks = []
    for metric, op, threshold in rules:
        value = metrics[metric]
        passed = value >= threshold if op == ">=" else value <= threshold
        checks.append({"metric": metric, "value": round(value, 6), "op": op, "threshold": threshold, "passed": passed})
    return {
        "passed": all(c["passed"] for c in checks),
        "checks": checks,
        "decision_threshold": float(operating["value"]),
        "operating_point": operating,
    }


_WEEK_NS = 7 * 24 * 3600 * 10**9


def false_alarms_per_asset_week(
    failure: np.ndarray, score: np.ndarray, threshold: float | np.ndarray, asset: np.ndarray, end_time: np.ndarray
) -> float:
    """Alarms raised for no failure, per asset and week of test data: each run of alarmed windows counts once.

    Overlapping windows would count one alarm many times; an operator sees an alarm go on, not its windows.
    """
    false_alarms, weeks = 0, 0.0
    limit = np.broadcast_to(np.asarray(threshold, dtype=float), score.shape)
    for name in np.unique(asset):
        mine = np.flatnonzero(asset == name)
        order = mine[np.argsort(end_time[mine], kind="stable")]
        alarmed, labels = score[order] >= limit[order], failure[order]
        edges = np.diff(np.concatenate([[0], alarmed.astype(int), [0]]))  # +1 where an alarm goes on, -1 off
        runs = zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
        false_alarms += sum(1 for on, off in runs if not labels[on:off].any())
        span_ns = int(end_time[order[-1]]) - int(end_time[order[0]])  # ns since epoch, as the windows store time
        weeks += max(span_ns / _WEEK_NS, 1 / 7)
    return false_alarms / weeks if weeks else 0.0


def evaluate_model(
    model, windows: LabelledWindows, gate: GateConfig, operating: dict, site_thresholds: bool = False
) -> Evaluation:
    """Score the test split at the operating point's threshold (training chose it) and apply the quality gate.

    ``site_thresholds``: each window at its site's threshold (``operating["by_site"]``, the fleet's for a site
    without one), as a fleet whose sites answer with models of their own alarms.
    """
    test = windows.part("test")
    threshold: float | np.ndarray = float(operating["value"])
    if site_thresholds:
        by_site = operating.get("by_site") or {}
        threshold = np.array([float((by_site.get(str(s)) or operating)["value"]) for s in test.sites])
    score, rul_pred = predict(model, test.x)
    metrics = {
        **classification_metrics(test.failure, score, threshold),
        **regression_metrics(test.rul, rul_pred),
        "false_alarms_per_asset_week": false_alarms_per_asset_week(
            test.failure, score, threshold, test.asset, test.end_time
        ),
    }
    confusion = skm.confusion_matrix(test.failure, (score >= threshold).astype(int), labels=[0, 1])
    return Evaluation(
        metrics=metrics,
        confusion_matrix=confusion.astype(int).tolist(),
        roc=roc_points(test.failure, score),
        gate=quality_gate(metrics, gate, operating),
        failure_true=test.failure,
        failure_score=score,
        rul_true=test.rul,
        rul_pred=rul_pred,
        end_time=test.end_time,
        asset=test.asset,
        window_threshold=np.broadcast_to(np.asarray(threshold, dtype=float), score.shape).copy(),
    )
