"""Example request bodies built from real held-out windows, so a first curl shows a meaningful answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from components.common.storage import atomic_write_bytes
from serving.codec import finite_or_none

__all__ = ["example_windows", "write_example_requests"]


def example_windows(windows, count: int = 2) -> np.ndarray:  # noqa: ANN001 - LabelledWindows
    """Test windows for examples: the first failing one and the first quiet one."""
    test = windows.part("test")
    picks = [int(np.argmax(test.failure == 1)), int(np.argmax(test.failure == 0))][:count]
    return test.x[picks]


def write_example_requests(windows, prefix: Path) -> dict[str, Path]:  # noqa: ANN001
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
    paths = {"v1": Path(f"{prefix}-v1.json"), "v2": Path(f"{prefix}-v2.json")}
    for name, body in (("v1", v1), ("v2", v2)):
        atomic_write_bytes(paths[name], json.dumps(body).encode())
    return paths
