"""Example request bodies built from real held-out windows, so a first curl shows a meaningful answer."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from shopfloor.common.storage import atomic_write_bytes
from shopfloor.serving.codec import finite_or_none

if TYPE_CHECKING:
    from shopfloor.contracts.windows import LabelledWindows

__all__ = ["example_windows", "write_example_requests", "write_image_requests"]


def example_windows(windows: LabelledWindows, count: int = 2) -> np.ndarray:
    """Test windows for examples: a positive one where the signal is clearest, and the first quiet one.

    The positive one ends the first run of positive windows: just before the first failure, or deep in an anomaly.
    """
    test = windows.part("test")
    positive = test.failure == 1
    run_ends = np.flatnonzero(positive & ~np.r_[positive[1:], False])
    picks = [int(run_ends[0]) if run_ends.size else 0, int(np.argmax(~positive))][:count]
    return test.x[picks]


def write_example_requests(windows, prefix: Path) -> dict[str, Path]:
    """Write ``<prefix>-v1.json`` and ``<prefix>-v2.json`` request bodies; return their paths."""
    batch = example_windows(windows)
    v1 = {"instances": finite_or_none(batch)}
    v2 = {
        "inputs": [
            {
                "name": "window",
                "datatype": "FP32",
                "shape": list(batch.shape),
                "data": finite_or_none(batch.reshape(-1)),
            }
        ]
    }
    return _write_bodies(v1, v2, prefix)


def _write_bodies(v1: dict, v2: dict, prefix: Path) -> dict[str, Path]:
    """Write the two request bodies next to each other; return their paths."""
    paths = {"v1": Path(f"{prefix}-v1.json"), "v2": Path(f"{prefix}-v2.json")}
    for name, body in (("v1", v1), ("v2", v2)):
        atomic_write_bytes(paths[name], json.dumps(body).encode())
    return paths


def write_image_requests(files: list[bytes], prefix: Path) -> dict[str, Path]:
    """Write V1 (``image_bytes.b64``) and V2 (``BYTES``) request bodies for encoded image files."""
    encoded = [base64.b64encode(data).decode() for data in files]
    v1 = {"instances": [{"image_bytes": {"b64": data}} for data in encoded]}
    v2 = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(encoded)], "data": encoded}]}
    return _write_bodies(v1, v2, prefix)
