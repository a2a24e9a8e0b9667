"""Training logic: the registered model family trains on the data artifact and writes the model folder.

Output layout of the ``model`` artifact (``shopfloor.contracts.model_artifact``): ``model.keras``, ``saved_model/``
and ``shopfloor_model.json`` (with ``model_type``, the family's key), plus what the family adds (the image family's
``edge/`` TFLite exports). The ``history`` artifact holds the per-epoch curves as JSON.
"""

from __future__ import annotations

from shopfloor.common.storage import write_json
from shopfloor.families.base import StepInputs, Trained
from shopfloor.families.registry import family

__all__ = ["run_train"]


def run_train(
    family_key: str, data_path: str, hyperparameters: dict, inputs: StepInputs, model_dir: str, history_path: str
) -> Trained:
    """Train the family's model; write the model folder and its history. Returns curves, metadata and metrics."""
    chosen = family(family_key)
    trained = chosen.train(data_path, hyperparameters, inputs, model_dir)
    write_json(history_path, trained.history)
    return Trained(trained.history, {"model_type": str(chosen.key), **trained.metadata}, trained.metrics)
