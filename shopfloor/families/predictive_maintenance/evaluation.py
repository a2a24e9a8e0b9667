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


def predict(model, x: np.ndarray, batch_size: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Failure probabilities and RUL predictions (hours) for a batch of windows."""
    outputs = model.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(outputs["failure"]).reshape(-1), np.asarray(outputs["rul"]).reshape(-1)


def classification_metrics(y_true: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """Threshold-free (ROC-AUC, PR-AUC) and thresholded (precision, recall, F1) metrics for one class."""
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


def quality_gate(metrics: dict[str, float], gate: GateConfig) -> dict:
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
    return {"passed": all(c["passed"] for c in checks), "checks": checks, "decision_threshold": gate.decision_threshold}


def evaluate_model(model, windows: LabelledWindows, gate: GateConfig) -> Evaluation:
    """Score the test split and apply the quality gate."""
    test = windows.part("test")
    score, rul_pred = predict(model, test.x)
    metrics = {
        **classification_metrics(test.failure, score, gate.decision_threshold),
        **regression_metrics(test.rul, rul_pred),
    }
    confusion = skm.confusion_matrix(test.failure, (score >= gate.decision_threshold).astype(int), labels=[0, 1])
    return Evaluation(
        metrics=metrics,
        confusion_matrix=confusion.astype(int).tolist(),
        roc=roc_points(test.failure, score),
        gate=quality_gate(metrics, gate),
        failure_true=test.failure,
        failure_score=score,
        rul_true=test.rul,
        rul_pred=rul_pred,
        end_time=test.end_time,
        asset=test.asset,
    )
