"""Labelled windows: the Dataset the sensor-model labellers write and training, search, evaluation read.

Layout of the ``windows`` Dataset (a folder):
  windows.npz : x float32 [n, window, features] (NaN = missing reading), failure int8 [n], rul float32 [n]
                (-1 = unknown), split int8 [n] (0 train, 1 validation, 2 test), asset str [n], end_time int64 [n]
                (ns since epoch, UTC), site str [n] (the asset's site; absent, or '' per window, when the data has
                no site column: folders written before sites existed load with no sites), asset_type str [n] (the
                asset's type, '' where unknown; absent without an asset-type column, and in folders written before
                asset types existed, which load with '' for every window)
  labels.json : features, window and what the labeller records (horizon, split assets, class balance...)
"""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

import numpy as np

from shopfloor.common.storage import atomic_output_dir, read_bytes, write_json

__all__ = [
    "LabelledWindows",
    "SPLITS",
    "load_windows",
    "write_windows",
]


SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class LabelledWindows:
    """Windows of sensor readings with their targets, split by asset."""

    x: np.ndarray
    failure: np.ndarray
    rul: np.ndarray
    split: np.ndarray
    asset: np.ndarray
    end_time: np.ndarray
    features: list[str]
    info: dict
    site: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=str))
    asset_type: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=str))

    @property
    def sites(self) -> np.ndarray:
        """The site of every window ('' where the data has no sites), one per window whatever was stored."""
        return _per_window(self.site, self.failure.size)

    @property
    def asset_types(self) -> np.ndarray:
        """The asset type of every window ('' where unknown), one per window whatever was stored.

        A slice that rebuilt the windows without slicing ``asset_type`` too reads as unknown, never misaligned.
        """
        return _per_window(self.asset_type, self.failure.size)

    def select(self, keep: np.ndarray) -> LabelledWindows:
        """The windows ``keep`` (a mask or indices) selects, every per-window array sliced alike."""
        return dataclasses.replace(
            self,
            x=self.x[keep],
            failure=self.failure[keep],
            rul=self.rul[keep],
            split=self.split[keep],
            asset=self.asset[keep],
            end_time=self.end_time[keep],
            site=self.sites[keep],
            asset_type=self.asset_types[keep] if self.asset_type.size else self.asset_type,
        )

    def part(self, name: str) -> LabelledWindows:
        """The windows of one split ('train', 'validation' or 'test')."""
        return self.select(self.split == SPLITS.index(name))


def _per_window(values: np.ndarray, size: int) -> np.ndarray:
    """A stored per-window string array, or '' for every window when none (or a stale one) was stored."""
    return values if values.size == size else np.full(size, "", dtype=str)


def write_windows(windows: LabelledWindows, folder: str) -> None:
    """Write the windows folder (npz + labels.json) atomically."""
    arrays: dict[str, Any] = {  # Any: numpy's stub types a **mapping against allow_pickle
        "x": windows.x,
        "failure": windows.failure,
        "rul": windows.rul,
        "split": windows.split,
        "asset": windows.asset,
        "end_time": windows.end_time,
    }
    if windows.site.size:  # data without a site column writes no site array, as before sites existed
        arrays["site"] = windows.site.astype(str)
    if windows.asset_type.size:  # likewise without an asset-type column
        arrays["asset_type"] = windows.asset_types.astype(str)
    with atomic_output_dir(folder) as scratch:
        np.savez_compressed(scratch / "windows.npz", **arrays)
        write_json(scratch / "labels.json", windows.info)


def load_windows(folder: str) -> LabelledWindows:
    """Read a windows folder written by ``write_windows`` (no pickled objects are loaded)."""
    info = json.loads(read_bytes(f"{folder}/labels.json"))
    with np.load(io.BytesIO(read_bytes(f"{folder}/windows.npz")), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return LabelledWindows(features=info["features"], info=info, **arrays)
