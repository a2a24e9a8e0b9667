"""Performance once labels arrive: the served answers joined with what really happened, against the test metrics.

Drift says the inputs changed; only labels say the model got worse. Labels arrive late (a failure is known only
once the horizon has passed; an anomaly once someone inspected the asset), from the maintenance system or an
operator, as a table keyed by the served request: ``request_id`` (the ``x-request-id`` header or V2 ``id`` the
payload log records), ``index`` (the window's position in that request's batch; 0 when omitted) and ``label``
(1 = failed within the horizon / abnormal, 0 = not). The monitor joins them with the logged scores, computes
the metrics the quality gate used at test time, and calls the model degraded when one of them fell by more than
``max_performance_drop``, given at least ``min_labels`` labelled windows.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from shopfloor.common.errors import DataValidationError
from shopfloor.common.storage import read_bytes

__all__ = ["LABEL_COLUMNS", "Performance", "labelled_scores", "measure_performance", "read_labels"]

LABEL_COLUMNS = ("request_id", "index", "label")
_COMPARED = ("roc_auc", "pr_auc", "f1", "recall")


@dataclasses.dataclass(frozen=True)
class Performance:
    """Metrics on the labelled served windows, next to the same metrics at test time."""

    labelled: int
    unmatched: int
    metrics: dict[str, float]
    reference: dict[str, float]
    max_drop: float
    min_labels: int

    @property
    def drops(self) -> dict[str, float]:
        """How far each metric known at test time fell (positive = worse)."""
        return {k: self.reference[k] - self.metrics[k] for k in _COMPARED if k in self.metrics and k in self.reference}

    @property
    def degraded(self) -> bool:
        """Enough labels, and some metric fell by more than ``max_drop``."""
        return self.labelled >= self.min_labels and any(d > self.max_drop for d in self.drops.values())

    @property
    def summary(self) -> str:
        """One phrase for reports and decisions."""
        if self.labelled < self.min_labels:
            return f"performance: {self.labelled} labelled windows, fewer than the {self.min_labels} needed"
        compared = ", ".join(f"{k} {self.metrics[k]:.3f} (test {self.reference[k]:.3f})" for k in self.drops)
        verdict = "DEGRADED" if self.degraded else "holding"
        return f"performance {verdict} on {self.labelled} labelled windows: {compared or 'no comparable metric'}"


def read_labels(uri: str) -> pd.DataFrame:
    """The labels table (CSV or Parquet) with ``request_id``, ``index`` (optional) and a 0/1 ``label``."""
    from shopfloor.common.tables import read_table

    table = read_table(uri, read_bytes(uri))
    if "index" not in table.columns:
        table["index"] = 0
    for column in LABEL_COLUMNS:
        if column not in table.columns:
            raise DataValidationError(
                uri, f"no column '{column}'", field=column, expected=f"columns {', '.join(LABEL_COLUMNS)}"
            )
    labels = pd.to_numeric(table["label"], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataValidationError(
            uri, f"row {row + 1}: label {table['label'].iloc[row]!r}", field="label", expected="0 or 1"
        )
    return pd.DataFrame(
        {
            "request_id": table["request_id"].astype(str),
            "index": table["index"].astype(int),
            "label": labels.astype(int),
        }
    )


def labelled_scores(records: list, labels: pd.DataFrame, score_output: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Labels and served scores of the windows both know, and how many labels matched no logged window."""
    scores = {}
    for record in records:
        outputs = record.outputs if isinstance(record.outputs, dict) else {}
        for index, score in enumerate(outputs.get(score_output, [])):
            scores[(record.id, index)] = float(score)
    keys = list(zip(labels["request_id"], labels["index"], strict=True))
    matched = [i for i, key in enumerate(keys) if key in scores]
    y = labels["label"].to_numpy()[matched]
    served = np.array([scores[keys[i]] for i in matched], dtype=float)
    return y, served, len(keys) - len(matched)


def measure_performance(
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    reference: dict[str, float],
    max_drop: float,
    min_labels: int,
    unmatched: int = 0,
) -> Performance:
    """Recall, precision and F1 at the alarm threshold, and ROC-AUC/PR-AUC where both classes occur.

    scikit-learn is imported here, not with the module: a drift check without labels never needs it.
    """
    from sklearn import metrics as skm

    metrics: dict[str, float] = {}
    alarms = scores >= threshold
    if y.any():
        metrics |= {
            "precision": float(skm.precision_score(y, alarms, zero_division=0)),
            "recall": float(skm.recall_score(y, alarms, zero_division=0)),
            "f1": float(skm.f1_score(y, alarms, zero_division=0)),
        }
    if y.any() and not y.all():
        metrics |= {
            "roc_auc": float(skm.roc_auc_score(y, scores)),
            "pr_auc": float(skm.average_precision_score(y, scores)),
        }
    return Performance(
        labelled=int(y.size),
        unmatched=unmatched,
        metrics=metrics,
        reference=reference,
        max_drop=max_drop,
        min_labels=min_labels,
    )
