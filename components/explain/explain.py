"""Explanation logic: the registered model family explains the trained model on the held-out data.

The same for every family: the family says what drives its score (integrated gradients for the window model, the
error per sensor for the autoencoder, Grad-CAM for the inspection CNN); this step loads the model, writes the
report and the dashboard's summary, and returns the global importances the wrapper logs as metrics.
"""

from __future__ import annotations

import dataclasses

from shopfloor.common.progress import report_progress
from shopfloor.common.storage import atomic_write_bytes
from shopfloor.contracts.model_artifact import load_model_info
from shopfloor.families.base import ExplainRequest, StepInputs
from shopfloor.families.classical import load_scoring_model
from shopfloor.families.registry import family

__all__ = ["ExplanationPaths", "run_explain"]


@dataclasses.dataclass(frozen=True)
class ExplanationPaths:
    """Where the step's file outputs go."""

    report: str
    summary: str


def run_explain(
    family_key: str,
    data_path: str,
    model_dir: str,
    inputs: StepInputs,
    request: ExplainRequest,
    outputs: ExplanationPaths,
) -> dict[str, float]:
    """Explain the family's trained model on its data artifact; write report and summary, return importances."""
    chosen = family(family_key)
    explained = chosen.explain(load_scoring_model(model_dir), load_model_info(model_dir), data_path, inputs, request)
    atomic_write_bytes(outputs.report, explained.report.encode())
    atomic_write_bytes(outputs.summary, explained.summary.encode())
    report_progress(explained.progress)
    return dict(explained.importance)
