"""Data profiles: per-column statistics of a table, kept as the reference that drift monitoring compares to.

A profile is a plain JSON document (sorted keys, rounded floats) so two runs on the same data write the same
bytes and a model card can quote it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["HISTOGRAM_BINS", "QUANTILES", "numeric_profile", "profile_table"]

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 20


def _number(value: float) -> float | None:
    """A JSON-safe float rounded to 6 significant digits, or None for NaN/inf."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


def _histogram_edges(present: np.ndarray) -> np.ndarray:
    """``HISTOGRAM_BINS`` equal bins over the values; one bin when their spread is below float64's resolution.

    A constant reading of 2**48 has bins narrower than the spacing of floats there; numpy refuses those.
    """
    try:
        return np.histogram_bin_edges(present, bins=HISTOGRAM_BINS)
    except ValueError:
        low, high = float(present.min()), float(present.max())
        return np.array([np.nextafter(low, -np.inf), np.nextafter(high, np.inf)])


def numeric_profile(values: pd.Series) -> dict:
    """Count, missing share, moments, quantiles and a fixed-bin histogram of one numeric column."""
    numbers = values.dropna().to_numpy(dtype=float)
    present = numbers[np.isfinite(numbers)]
    summary: dict = {
        "count": int(present.size),
        "missing": int(values.isna().sum()),
        "kind": "numeric",
        "non_finite": int(numbers.size - present.size),
    }
    if present.size == 0:
        return summary
    edges = _histogram_edges(present)
    counts, _ = np.histogram(present, bins=edges)
    summary.update(
        mean=_number(present.mean()),
        std=_number(present.std(ddof=1) if present.size > 1 else 0.0),
        min=_number(present.min()),
        max=_number(present.max()),
        quantiles={
            f"p{round(q * 100):02d}": _number(v)
            for q, v in zip(QUANTILES, np.quantile(present, QUANTILES), strict=True)
        },
        histogram={"edges": [_number(e) for e in edges], "counts": counts.astype(int).tolist()},
    )
    return summary


def _categorical_profile(values: pd.Series, top: int = 20) -> dict:
    """Count, missing and the most frequent values of a text/id column."""
    counts = values.dropna().astype(str).value_counts().sort_index(kind="stable")
    counts = counts.sort_values(ascending=False, kind="stable").head(top)
    return {
        "count": int(values.notna().sum()),
        "missing": int(values.isna().sum()),
        "kind": "categorical",
        "distinct": int(values.nunique(dropna=True)),
        "top": {str(k): int(v) for k, v in counts.items()},
    }


def profile_table(frame: pd.DataFrame, numeric_columns: list[str]) -> dict:
    """Profile every column: numeric statistics for ``numeric_columns``, value counts for the rest."""
    columns = {}
    for name in frame.columns:
        series = frame[name]
        if name in numeric_columns:
            columns[name] = numeric_profile(series)
        elif pd.api.types.is_datetime64_any_dtype(series):
            columns[name] = {
                "count": int(series.notna().sum()),
                "missing": int(series.isna().sum()),
                "kind": "timestamp",
                "min": series.min().isoformat() if series.notna().any() else None,
                "max": series.max().isoformat() if series.notna().any() else None,
            }
        else:
            columns[name] = _categorical_profile(series)
    return {"rows": int(len(frame)), "columns": columns}
