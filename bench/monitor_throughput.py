"""Drift-check throughput (rows per second, 20 features) next to a plain NumPy pass over the same data.

Builds training profiles once (``numeric_profile`` of a 20,000-row reference sample per feature: ten normal, ten
lognormal sensors), then times on one current array of ``--rows`` x 20 (1 % NaN) the median of ``--repeats``
runs of:

- ``detect_drift``: PSI, KS (statistic and p-value), Wasserstein and missing share for every feature;
- a plain NumPy pass: ``np.nanmean`` and ``np.nanstd`` over the whole array (axis 0) plus, per column,
  ``np.histogram`` of its finite values with the reference profile's 21 edges.

The ratio (drift check time / NumPy pass time) is the figure: what the drift statistics cost over reading the
data once and histogramming it.

    python bench/monitor_throughput.py [--rows 200000] [--repeats 5] [--short]

``--short`` (a quick check that it runs, for CI): 10,000 rows, one timed run each; same table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from shopfloor.common.profile import numeric_profile
from shopfloor.components.monitor.drift import detect_drift

FEATURES = 20
REFERENCE_ROWS = 20_000
MISSING_SHARE = 0.01


def sample(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Ten normal and ten lognormal sensors with different locations and scales, [rows, 20]."""
    columns = [
        rng.normal(10.0 * i, 1.0 + i, rows) if i % 2 == 0 else rng.lognormal(0.1 * i, 0.3 + 0.08 * i, rows)
        for i in range(FEATURES)
    ]
    return np.column_stack(columns)


def numpy_pass(data: np.ndarray, edges: list[np.ndarray]) -> None:
    """Per-column mean, std and a histogram with the reference edges: one plain read of the data."""
    np.nanmean(data, axis=0)
    np.nanstd(data, axis=0)
    for j, column_edges in enumerate(edges):
        column = data[:, j]
        np.histogram(column[np.isfinite(column)], bins=column_edges)


def median_seconds(work: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls, after one warm-up call."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--short", action="store_true", help="10,000 rows, one timed run each (CI)")
    args = parser.parse_args()
    if args.short:
        args.rows, args.repeats = 10_000, 1

    rng = np.random.default_rng(0)
    reference = sample(rng, REFERENCE_ROWS)
    names = [f"sensor_{j:02d}" for j in range(FEATURES)]
    columns = {name: numeric_profile(pd.Series(reference[:, j])) for j, name in enumerate(names)}
    edges = [np.asarray(columns[name]["histogram"]["edges"]) for name in names]

    current = sample(rng, args.rows)
    current[rng.random(current.shape) < MISSING_SHARE] = np.nan

    drift_s = median_seconds(lambda: detect_drift(current, names, columns), args.repeats)
    numpy_s = median_seconds(lambda: numpy_pass(current, edges), args.repeats)
    drifted = detect_drift(current, names, columns).drifted

    print(f"{args.rows} rows x {FEATURES} features, median of {args.repeats} runs ({len(drifted)} drifted)\n")
    print(f"{'pass':<44}{'seconds':>10}{'rows/s':>14}")
    print(f"{'detect_drift (PSI, KS, Wasserstein, missing)':<44}{drift_s:>10.4f}{args.rows / drift_s:>14,.0f}")
    print(f"{'numpy (nanmean, nanstd, histogram)':<44}{numpy_s:>10.4f}{args.rows / numpy_s:>14,.0f}")
    print(f"\nratio drift check / numpy pass: {drift_s / numpy_s:.2f}")


if __name__ == "__main__":
    main()
