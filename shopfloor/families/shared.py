"""What more than one family computes the same way: feature statistics, window stacking, class balance, ROC."""

from __future__ import annotations

import numpy as np

from shopfloor.contracts.windows import SPLITS, LabelledWindows

__all__ = [
    "average_precision",
    "class_balance",
    "feature_statistics",
    "final_metrics",
    "operating_threshold",
    "roc_points",
    "split_rates",
    "window_stack",
]


def feature_statistics(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-feature mean and std over every reading of the training windows, ignoring missing ones."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    present = ~np.isnan(flat)
    counts = present.sum(axis=0)
    sums = np.where(present, flat, 0.0).sum(axis=0)
    mean = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    squares = np.where(present, (flat - mean) ** 2, 0.0).sum(axis=0)
    std = np.sqrt(np.divide(squares, counts - 1, out=np.ones_like(sums), where=counts > 1))
    return mean.tolist(), np.where(std > 0, std, 1.0).tolist()


def roc_points(y_true: np.ndarray, score: np.ndarray, points: int = 101) -> dict[str, list[float]]:
    """ROC curve thinned to at most ``points`` entries, with finite thresholds (KFP stores it as JSON)."""
    from sklearn import metrics as skm  # scikit-learn only where a curve is computed, not in labelling

    fpr, tpr, thresholds = skm.roc_curve(y_true, score)
    thresholds = np.where(np.isfinite(thresholds), thresholds, float(np.max(score)))  # sklearn's first is inf
    keep = np.unique(np.linspace(0, fpr.size - 1, min(points, fpr.size)).round().astype(int))
    return {
        "fpr": fpr[keep].round(6).tolist(),
        "tpr": tpr[keep].round(6).tolist(),
        "thresholds": thresholds[keep].round(6).tolist(),
    }


def window_stack(values: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """Windows [n, window, features] of a [readings, features] array, starting at ``starts``, as one copy."""
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # [readings, features, window]
    return np.ascontiguousarray(view[starts].transpose(0, 2, 1))


def class_balance(failure: np.ndarray, split: np.ndarray) -> dict:
    """Windows, positives and positive rate per split, so an imbalance is visible before training."""
    balance = {}
    for index, name in enumerate(SPLITS):
        labels = failure[split == index]
        positives = int(labels.sum())
        balance[name] = {
            "windows": int(labels.size),
            "positives": positives,
            "positive_rate": round(positives / labels.size, 4) if labels.size else 0.0,
        }
    return balance


def final_metrics(history: dict[str, list[float]]) -> dict[str, float]:
    """The last epoch's value of every training curve, as the dashboard's ``final_<name>`` metrics."""
    return {f"final_{name}": values[-1] for name, values in sorted(history.items())}


def split_rates(windows: LabelledWindows) -> str:
    """The positive (failing or abnormal) share of each split, for the label step's one-line summary."""
    return ", ".join(f"{k} {v['positive_rate']:.1%}" for k, v in windows.info["class_balance"].items())


def average_precision(y_true: np.ndarray, score: np.ndarray) -> float:
    """PR-AUC (average precision) of ``score`` for the positive class; NaN when only one class is present."""
    from sklearn.metrics import average_precision_score

    if np.unique(y_true).size < 2:
        return float("nan")
    return float(average_precision_score(y_true, score))


def operating_threshold(
    y_true: np.ndarray,
    score: np.ndarray,
    method: str,
    fixed: float,
    target_recall: float = 0.8,
    miss_cost: float = 10.0,
) -> dict:
    """The alarm threshold for an operating point, chosen on (validation) windows, with what it achieves there.

    ``best-f1``: the highest F1; ``target-recall``: the highest threshold still catching ``target_recall`` of the
    failures; ``min-cost``: the fewest ``miss_cost`` x missed failures + false alarms; ``fixed``: ``fixed``. With no
    failures (or only failures) among the windows there is nothing to choose by: ``fixed``, saying so.
    """
    positives = int(np.sum(y_true == 1))
    if method == "fixed" or positives == 0 or positives == y_true.size:
        chosen = float(fixed)
        method = "fixed" if method == "fixed" else "fixed (no failures and non-failures to choose by)"
    else:
        candidates = np.unique(score)
        predicted = score[None, :] >= candidates[:, None]  # one row per candidate threshold
        caught = (predicted & (y_true[None, :] == 1)).sum(axis=1)
        false_alarms = (predicted & (y_true[None, :] == 0)).sum(axis=1)
        recall = caught / positives
        precision = np.divide(caught, caught + false_alarms, out=np.zeros(len(candidates)), where=caught > 0)
        if method == "best-f1":
            f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(len(candidates)), where=caught > 0)
            best = int(np.argmax(f1))
        elif method == "target-recall":
            reaching = np.flatnonzero(recall >= target_recall)
            best = int(reaching[-1]) if reaching.size else 0
        else:  # min-cost
            best = int(np.argmin(miss_cost * (positives - caught) + false_alarms))
        chosen = float(candidates[best])
    alarms = score >= chosen
    caught_n = int(np.sum(alarms & (y_true == 1)))
    flagged = int(np.sum(alarms))
    return {
        "method": method,
        "value": chosen,
        "validation_recall": caught_n / positives if positives else 0.0,
        "validation_precision": caught_n / flagged if flagged else 0.0,
        "validation_windows": int(y_true.size),
    }
