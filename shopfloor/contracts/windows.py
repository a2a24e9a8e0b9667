"""Labelled windows: the Dataset the sensor-model labellers write and training, search, evaluation read.

Layout of the ``windows`` Dataset (a folder):
  windows.npz : x float32 [n, window, features] (NaN = missing reading), failure int8 [n], rul float32 [n]
                (-1 = unknown), split int8 [n] (0 train, 1 validation, 2 test), asset str [n], end_time int64 [n]
                (ns since epoch, UTC), site str [n] (the asset's site; absent, or '' per window, when the data has
                no site column: folders written before sites existed load with no sites)
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

    @property
    def sites(self) -> np.ndarray:
        """The site of every window ('' where the data has no sites), one per window whatever was stored."""
        return self.site if self.site.size == self.failure.size else np.full(self.failure.size, "", dtype=str)

    def part(self, name: str) -> LabelledWindows:
        """The windows of one split ('train', 'validation' or 'test')."""
        keep = self.split == SPLITS.index(name)
        return dataclasses.replace(
            self,
            x=self.x[keep],
            failure=self.failure[keep],
            rul=self.rul[keep],
            split=self.split[keep],
            asset=self.asset[keep],
            end_time=self.end_time[keep],
            site=self.sites[keep],
        )


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
    with atomic_output_dir(folder) as scratch:
        np.savez_compressed(scratch / "windows.npz", **arrays)
        write_json(scratch / "labels.json", windows.info)


def load_windows(folder: str) -> LabelledWindows:
    """Read a windows folder written by ``write_windows`` (no pickled objects are loaded)."""
    info = json.loads(read_bytes(f"{folder}/labels.json"))
    with np.load(io.BytesIO(read_bytes(f"{folder}/windows.npz")), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return LabelledWindows(features=info["features"], info=info, **arrays)
