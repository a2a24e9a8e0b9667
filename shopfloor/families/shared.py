"""What more than one family computes the same way: feature statistics, window stacking, class balance, ROC."""

from __future__ import annotations

import numpy as np

from shopfloor.contracts.windows import SPLITS, LabelledWindows

__all__ = [
    "class_balance",
    "feature_statistics",
    "final_metrics",
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
