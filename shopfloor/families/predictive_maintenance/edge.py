"""Edge export of the failure/RUL window model: ``failure_probability`` and ``rul_hours`` in the graph."""

from __future__ import annotations

from typing import Any

from shopfloor.contracts.windows import LabelledWindows
from shopfloor.families.edge_export import EdgeConfig, EdgeExport, export_edge, window_target
from shopfloor.families.registry import ModelKind

__all__ = ["export_window_model"]


def _served(outputs: Any) -> dict[str, Any]:
    """The server's outputs from the model's heads, one value per window."""
    from keras import ops

    return {
        "failure_probability": ops.reshape(outputs["failure"], (-1,)),
        "rul_hours": ops.reshape(outputs["rul"], (-1,)),
    }


def export_window_model(model: Any, windows: LabelledWindows, threshold: float, config: EdgeConfig) -> EdgeExport:
    """TFLite variants of the model, each published only within tolerance of Keras on the test split."""
    target = window_target(
        ModelKind.PREDICTIVE_MAINTENANCE.value, model, windows, _served, "failure_probability", threshold
    )
    return export_edge(target, config)
