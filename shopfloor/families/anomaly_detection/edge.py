"""Edge export of the autoencoder: the ``anomaly_score`` (and error per sensor) computed in the graph."""

from __future__ import annotations

from typing import Any

from shopfloor.contracts.windows import LabelledWindows
from shopfloor.families.edge_export import EdgeConfig, EdgeExport, export_edge, window_target
from shopfloor.families.registry import ModelKind

__all__ = ["export_detector"]


def _served(outputs: Any) -> dict[str, Any]:
    """The server's outputs: the reconstruction error of the window (the score) and of each sensor."""
    return {"anomaly_score": outputs["score"], "feature_errors": outputs["feature_errors"]}


def export_detector(model: Any, windows: LabelledWindows, threshold: float, config: EdgeConfig) -> EdgeExport:
    """TFLite variants of the detector, each published only within tolerance of Keras on the test split."""
    target = window_target(ModelKind.ANOMALY_DETECTION.value, model, windows, _served, "anomaly_score", threshold)
    return export_edge(target, config)
