"""Labelled windows: the Dataset the sensor-model labellers write and training, search, evaluation read.

Layout of the ``windows`` Dataset (a folder):
  windows.npz : x float32 [n, window, features] (NaN = missing reading), failure int8 [n], rul float32 [n]
                (-1 = unknown), split int8 [n] (0 train, 1 validation, 2 test), asset str [n], end_time int64 [n]
                (ns since epoch, UTC)
  labels.json : features, window and what the labeller records (horizon, split assets, class balance...)
"""

from __future__ import annotations

import dataclasses
import io
import json

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
        )


def write_windows(windows: LabelledWindows, folder: str) -> None:
    """Write the windows folder (npz + labels.json) atomically."""
    with atomic_output_dir(folder) as scratch:
        np.savez_compressed(
            scratch / "windows.npz",
            x=windows.x,
            failure=windows.failure,
            rul=windows.rul,
            split=windows.split,
            asset=windows.asset,
            end_time=windows.end_time,
        )
        write_json(scratch / "labels.json", windows.info)


def load_windows(folder: str) -> LabelledWindows:
    """Read a windows folder written by ``write_windows`` (no pickled objects are loaded)."""
    info = json.loads(read_bytes(f"{folder}/labels.json"))
    with np.load(io.BytesIO(read_bytes(f"{folder}/windows.npz")), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return LabelledWindows(features=info["features"], info=info, **arrays)
