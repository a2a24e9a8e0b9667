"""Labeling logic: sensor readings + failure events -> windows labelled "fails within H" and remaining useful life.

For each asset, the reading at the end of a window is labelled with the time to the asset's next failure
(RUL, clipped at ``rul_cap_hours``) and whether that failure lies within ``horizon_hours``. After the last
failure the future is censored: a window is still negative if the asset ran at least ``horizon_hours`` more
without failing, and its RUL is known to be at least the observed remaining time (exact if that reaches the
cap, otherwise unknown and marked -1 so training ignores it). Windows that span a failure mix two lives of the
asset and are dropped. Assets, not rows, are split into train/validation/test so no asset leaks across.

Output layout of the ``windows`` Dataset (a folder):
  windows.npz : x float32 [n, window, features] (NaN = missing reading), failure int8 [n], rul float32 [n]
                (-1 = unknown), split int8 [n] (0 train, 1 validation, 2 test), asset str [n], end_time int64 [n]
                (ns since epoch, UTC)
                , site str [n] (with a site column), asset_type str [n] (with an asset-type column; '' = unknown)
  labels.json : features, window, horizon_hours, rul_cap_hours, failure_values, split assets, class balance and,
                with sites, each site's horizon, RUL cap and windows per split; with asset types, each type's windows
                and failing windows per split
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from shopfloor.common.errors import DataValidationError
from shopfloor.common.fleet import ASSET_TYPE_COLUMN
from shopfloor.contracts.windows import SPLITS, LabelledWindows
from shopfloor.families.predictive_maintenance.config import LabelingConfig
from shopfloor.families.shared import class_balance, window_stack

__all__ = [
    "label_windows",
    "split_assets",
]

_HOUR_NS = 3_600_000_000_000


def _asset_targets(times: np.ndarray, failures: np.ndarray, config: LabelingConfig) -> tuple[np.ndarray, ...]:
    """Per reading: failure-within-horizon (-1 unknown), RUL in hours (-1 unknown), and the life index."""
    next_index = np.searchsorted(failures, times, side="left")
    has_next = next_index < failures.size
    next_failure = failures[np.minimum(next_index, failures.size - 1)] if failures.size else times
    hours_to_failure = (next_failure - times) / _HOUR_NS
    hours_observed = (times[-1] - times) / _HOUR_NS
    within = np.where(
        has_next, hours_to_failure <= config.horizon_hours, np.where(hours_observed >= config.horizon_hours, 0, -1)
    ).astype(np.int8)
    rul = np.where(
        has_next,
        np.minimum(hours_to_failure, config.rul_cap_hours),
        np.where(hours_observed >= config.rul_cap_hours, config.rul_cap_hours, -1.0),
    )
    return within, rul.astype(np.float32), next_index


def split_assets(assets: list[str], positives: dict[str, int], config: LabelingConfig) -> dict[str, list[str]]:
    """Assign assets to train/validation/test at random (seeded), making sure test and train see failures."""
    if len(assets) < 3:
        raise DataValidationError(
            "sensors",
            f"only {len(assets)} asset(s)",
            field="asset_id",
            expected="at least 3 assets, so that train, validation and test differ",
        )
    rng = np.random.default_rng(config.seed)
    order = [assets[i] for i in rng.permutation(len(assets))]
    failing = [a for a in order if positives.get(a, 0) > 0]
    others = [a for a in order if positives.get(a, 0) == 0]
    if len(failing) < 2:
        raise DataValidationError(
            "events",
            f"failures on only {len(failing)} asset(s)",
            field="event_type",
            expected="failures on at least 2 assets, so both training and test see some",
        )
    n_test = min(max(1, round(config.test_fraction * len(assets))), len(assets) - 2)
    n_test_failing = min(max(1, round(config.test_fraction * len(failing))), n_test, len(failing) - 1)
    test = failing[:n_test_failing] + others[: n_test - n_test_failing]
    kept_for_train = failing[n_test_failing]  # train must see failures too
    candidates = [a for a in order if a not in test and a != kept_for_train]
    n_validation = min(max(1, round(config.validation_fraction * (len(candidates) + 1))), len(candidates))
    validation = candidates[:n_validation]
    train = [kept_for_train, *candidates[n_validation:]]
    return {"train": sorted(train), "validation": sorted(validation), "test": sorted(test)}


def label_windows(
    sensors: pd.DataFrame,
    events: pd.DataFrame,
    features: list[str],
    failure_values: list[str],
    config: LabelingConfig,
    source: str = "events",
    site_configs: Mapping[str, LabelingConfig] | None = None,
) -> LabelledWindows:
    """Build labelled windows from canonical sensor and event tables (as written by ingest).

    With a ``site`` column every window records its asset's site, with an ``asset_type`` column its asset's type
    ('' where unknown), so evaluation can report by site and by type. ``site_configs`` (a fleet config's sites, maybe
    none with an overlay) labels an asset of a site in it with that site's horizon and RUL cap (window and stride
    stay ``config``'s: one model), and splits each site's assets on their own, so that every site is in train,
    validation and test and can be thresholded and gated.
    """
    failures = events[events["event_type"].isin(failure_values)]
    if failures.empty:
        kinds = ", ".join(sorted(events["event_type"].astype(str).unique())) or "none"
        raise DataValidationError(
            source,
            f"no failure events (event types found: {kinds})",
            field="failure_values",
            expected=f"events whose type is one of {failure_values}",
        )
    fail_times = {
        a: np.sort(g["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64))
        for a, g in failures.groupby("asset_id")
    }
    keys = ("x", "failure", "rul", "asset", "end_time", "site", "asset_type")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    has_sites, has_types = "site" in sensors.columns, ASSET_TYPE_COLUMN in sensors.columns
    for asset, group in sensors.groupby("asset_id", sort=True):
        times = group["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        if times.size < config.window:
            continue
        site = str(group["site"].iloc[0]) if has_sites else ""
        targets = (site_configs or {}).get(site, config)
        within, rul, life = _asset_targets(times, fail_times.get(asset, np.array([], dtype=np.int64)), targets)
        values = group[features].to_numpy(dtype=np.float32)
        ends = np.arange(config.window - 1, times.size, config.stride)
        starts = ends - (config.window - 1)
        keep = (within[ends] >= 0) & (life[starts] == life[ends])
        ends, starts = ends[keep], starts[keep]
        parts["x"].append(window_stack(values, starts, config.window))
        parts["failure"].append(within[ends])
        parts["rul"].append(rul[ends])
        parts["asset"].append(np.full(ends.size, asset, dtype=object))
        parts["end_time"].append(times[ends])
        parts["site"].append(np.full(ends.size, site, dtype=object))
        parts["asset_type"].append(np.full(ends.size, _asset_type(group) if has_types else "", dtype=object))
    if not parts["x"] or sum(p.shape[0] for p in parts["x"]) == 0:
        raise DataValidationError(
            "sensors",
            "no asset has enough readings for one window",
            field="labeling.window",
            expected=f"at least {config.window} readings per asset",
        )
    stacked = {k: np.concatenate(v) for k, v in parts.items()}
    positives = pd.Series(stacked["failure"]).groupby(stacked["asset"]).sum().astype(int).to_dict()
    # pandas-stubs key to_dict() by Hashable; the keys here are the asset ids (str)
    if site_configs is None:
        assignment = split_assets(sorted(positives), positives, config)  # type: ignore[arg-type]
    else:
        assignment = _split_by_site(stacked["asset"], stacked["site"], positives, config)  # type: ignore[arg-type]
    split = np.zeros(stacked["failure"].size, dtype=np.int8)
    for index, name in enumerate(SPLITS):
        split[np.isin(stacked["asset"], assignment[name])] = index
    info = {
        "features": features,
        "window": config.window,
        "stride": config.stride,
        "horizon_hours": config.horizon_hours,
        "rul_cap_hours": config.rul_cap_hours,
        "failure_values": failure_values,
        "assets": assignment,
        "class_balance": class_balance(stacked["failure"], split),
        "unknown_rul": int((stacked["rul"] < 0).sum()),
        **_site_info(stacked["site"], stacked["failure"], split, config, site_configs or {}),
        **_asset_type_info(stacked["asset_type"], stacked["failure"], split),
    }
    return LabelledWindows(
        x=stacked["x"],
        failure=stacked["failure"],
        rul=stacked["rul"],
        split=split,
        asset=stacked["asset"].astype(str),
        end_time=stacked["end_time"],
        features=features,
        info=info,
        site=stacked["site"].astype(str) if has_sites else np.zeros(0, dtype=str),
        asset_type=stacked["asset_type"].astype(str) if has_types else np.zeros(0, dtype=str),
    )


def _asset_type(readings: pd.DataFrame) -> str:
    """An asset's type: the first non-empty value of its readings' type column ('' when none says)."""
    named = readings[ASSET_TYPE_COLUMN].dropna().astype(str).str.strip()
    named = named[named != ""]
    return str(named.iloc[0]) if not named.empty else ""


def _split_by_site(
    asset: np.ndarray, site: np.ndarray, positives: dict[str, int], config: LabelingConfig
) -> dict[str, list[str]]:
    """``split_assets`` within each site, joined; a site too small to split is an error naming it."""
    site_of = dict(zip(asset.tolist(), site.tolist(), strict=True))
    joined: dict[str, list[str]] = {name: [] for name in SPLITS}
    for name in sorted(set(site_of.values())):
        mine = sorted(a for a, s in site_of.items() if s == name)
        try:
            parts = split_assets(mine, {a: positives.get(a, 0) for a in mine}, config)
        except DataValidationError as exc:
            raise DataValidationError(
                exc.source, f"site '{name}': {exc.problem}", field=exc.field, expected=exc.expected
            ) from None
        for part, assets in parts.items():
            joined[part] = sorted([*joined[part], *assets])
    return joined


def _site_info(
    site: np.ndarray,
    failure: np.ndarray,
    split: np.ndarray,
    config: LabelingConfig,
    site_configs: Mapping[str, LabelingConfig],
) -> dict:
    """What labels.json records of the sites: horizon, RUL cap, windows and failing ones per split ({} without)."""
    names = sorted({str(s) for s in site} - {""})
    if not names:
        return {}
    by_site = {}
    for name in names:
        mine = site == name
        targets = site_configs.get(name, config)
        by_site[name] = {
            "horizon_hours": targets.horizon_hours,
            "rul_cap_hours": targets.rul_cap_hours,
            **_split_counts(mine, failure, split),
        }
    return {"sites": by_site}


def _split_counts(mine: np.ndarray, failure: np.ndarray, split: np.ndarray) -> dict[str, dict[str, int]]:
    """How many of the ``mine`` windows each split holds, and how many of them fail within the horizon."""
    return {
        "windows": {part: int((mine & (split == index)).sum()) for index, part in enumerate(SPLITS)},
        "failing": {part: int(failure[mine & (split == index)].sum()) for index, part in enumerate(SPLITS)},
    }


def _asset_type_info(asset_type: np.ndarray, failure: np.ndarray, split: np.ndarray) -> dict:
    """labels.json's record of the asset types: each known type's windows and failing ones per split (none: {})."""
    names = sorted({str(t) for t in asset_type} - {""})
    return {"asset_types": {name: _split_counts(asset_type == name, failure, split) for name in names}} if names else {}
