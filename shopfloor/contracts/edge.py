"""The edge export of a model, as training writes it and the edge runtime reads it (no TensorFlow here).

Every model family exports its Keras model as TensorFlow Lite next to the model (``<model>/edge/``), with the
preprocessing and the served scores inside the graph, so LiteRT (``ai-edge-litert``) answers what the full server
answers with NumPy alone doing the thresholds. Layout of the ``edge`` folder (written atomically):

  model_float32.tflite   float32 weights and activations
  model_int8.tflite      int8 (images: weights and activations; windows: weights), float32 inputs and outputs
  tflite.json            {"kind", "input": {name, shape, dtype}, "outputs": [...], "variants": {name: {file, bytes,
                         sha256, quantization, ...measured}}, "missing": {name: reason}, "keras": {...},
                         "tolerance": {variant: text}, "max_accuracy_drop", "within_tolerance", "runtime", ...}

A variant is in ``variants`` only when its outputs were within the stated tolerance of Keras on the test split;
one that failed to convert or to agree is absent, with its reason in ``missing``.

The model's signature (``serving_default``) takes one float32 input named as ``input.name`` and returns the outputs
named in ``outputs``: ``failure_probability``/``rul_hours``, ``anomaly_score``/``feature_errors`` or
``probabilities``/``defect_score``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "EDGE_DIR",
    "EDGE_INFO",
    "VARIANTS",
    "VARIANT_FILES",
    "EdgeModel",
    "edge_card_section",
    "read_edge_info",
    "verified_variant",
]

EDGE_DIR = "edge"
EDGE_INFO = "tflite.json"
VARIANTS: tuple[str, ...] = ("float32", "int8")
VARIANT_FILES = {"float32": "model_float32.tflite", "int8": "model_int8.tflite"}


def read_edge_info(edge_folder: str | Path) -> dict:
    """The export record ``tflite.json`` of an edge folder."""
    return json.loads((Path(edge_folder) / EDGE_INFO).read_text())


def verified_variant(edge_folder: str | Path, variant: str, info: dict | None = None) -> bytes:
    """The flatbuffer of one variant, checked against the sha256 its record states.

    Raises:
        ValueError: If the variant is not published (naming why, when the record says) or its bytes differ.
    """
    info = info if info is not None else read_edge_info(edge_folder)
    record = info.get("variants", {}).get(variant)
    if record is None:
        reason = info.get("missing", {}).get(variant, "not exported")
        raise ValueError(f"edge variant {variant}: not published ({reason})")
    content = (Path(edge_folder) / record["file"]).read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    if digest != record["sha256"]:
        raise ValueError(f"edge variant {variant}: {record['file']} has sha256 {digest}, expected {record['sha256']}")
    return content


def _interpreter(content: bytes) -> Any:
    """A LiteRT interpreter (``ai-edge-litert``: what an edge PC runs, and what measures the exports)."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=content)


class EdgeModel:
    """A loaded edge export: float32 inputs in, its named float32 outputs out (batches resized as needed).

    Not thread-safe: one interpreter holds one set of tensors; callers serialize ``predict``.
    """

    def __init__(self, content: bytes):
        self.interpreter = _interpreter(content)
        details = self.interpreter.get_signature_list()["serving_default"]
        self.input_name: str = details["inputs"][0]
        self.output_names: list[str] = list(details["outputs"])
        self._runner = self.interpreter.get_signature_runner("serving_default")

    def predict(self, inputs: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
        """Every output for a batch of raw inputs, computed ``batch_size`` at a time."""
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.output_names}
        values = np.asarray(inputs, dtype=np.float32)
        for start in range(0, len(values), batch_size):
            answer = self._runner(**{self.input_name: values[start : start + batch_size]})
            for name in self.output_names:
                parts[name].append(np.asarray(answer[name], dtype=np.float32))
        if not len(values):
            return {name: np.zeros((0,), np.float32) for name in self.output_names}
        return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def edge_card_section(edge: dict) -> str:
    """The model card's section on the edge export: each variant's size and agreement, and what is missing and why."""
    if not edge:
        return "## Edge variants (TFLite)\nNo edge export was made for this model.\n"
    rows = []
    for name, record in edge.get("variants", {}).items():
        accuracy = record.get("accuracy")
        shown = f"{accuracy:.4f}" if isinstance(accuracy, float) else "-"
        rows.append(
            f"| {name} | {record['bytes']:,} | {record.get('quantization', '')} | {shown} | "
            f"{record.get('agreement', float('nan')):.4f} | {record.get('max_abs_error', float('nan')):.3g} |"
        )
    for name, reason in edge.get("missing", {}).items():
        rows.append(f"| {name} | missing | {reason} | - | - | - |")
    keras_accuracy = edge.get("keras", {}).get("accuracy")
    keras_text = f"; Keras accuracy {keras_accuracy:.4f}" if isinstance(keras_accuracy, float) else ""
    tolerance = "; ".join(f"{k}: {v}" for k, v in edge.get("tolerance", {}).items())
    return (
        f"## Edge variants (TFLite, test split{keras_text})\n"
        f"Tolerance against Keras: {tolerance or 'as recorded'}. A variant outside it is not published.\n\n"
        "| variant | bytes | quantization | accuracy | agreement with Keras | max abs error |\n"
        "| --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n"
    )
