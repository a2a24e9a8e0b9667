"""A published model as the edge runtime serves it: its TFLite export, its threshold, and the server's answers.

No TensorFlow: LiteRT runs the export (``shopfloor.contracts.edge``), NumPy applies the threshold, and the request
codecs are the full server's own (``shopfloor.contracts.request_codec``, ``image_request_codec``), so a request
gets the same answer, or the same 400 message, from both. What each kind answers (as ``serving/predictor.py``):

- predictive-maintenance: ``failure_probability``, ``fails_within_horizon`` (at the blessing's threshold), ``rul_hours``
- anomaly-detection: ``anomaly_score``, ``anomalous`` (at the trained threshold)
- visual-inspection: ``label``, ``defective``, ``defect_score``, ``probabilities``
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from shopfloor.common.images import image_statistics
from shopfloor.contracts import image_request_codec, request_codec
from shopfloor.contracts.edge import EDGE_DIR, EdgeModel, read_edge_info, verified_variant
from shopfloor.contracts.image_request_codec import ImageSpec
from shopfloor.contracts.request_codec import InvalidRequest, V2Request, WindowSpec

__all__ = ["ALARM_OUTPUTS", "KINDS", "ServedEdgeModel", "json_values", "model_folder"]

KINDS = ("predictive-maintenance", "anomaly-detection", "visual-inspection")
ALARM_OUTPUTS = {
    "predictive-maintenance": "fails_within_horizon",
    "anomaly-detection": "anomalous",
    "visual-inspection": "defective",
}
SCORE_OUTPUTS = {  # the served score of each kind, as the model family names it (its ``score_output``)
    "predictive-maintenance": "failure_probability",
    "anomaly-detection": "anomaly_score",
    "visual-inspection": "defect_score",
}
_MODEL_INFO = "shopfloor_model.json"
_BLESSING = "blessing.json"
_V2_DATATYPES = {"f": "FP32", "b": "BOOL", "U": "BYTES"}


def model_folder(folder: str | Path) -> Path:
    """The model folder inside ``folder``: itself, or its ``model/`` when it is a published version.

    Raises:
        FileNotFoundError: If neither holds ``shopfloor_model.json`` and an ``edge/`` export.
    """
    root = Path(folder)
    for candidate in (root, root / "model"):
        if (candidate / _MODEL_INFO).is_file() and (candidate / EDGE_DIR).is_dir():
            return candidate
    raise FileNotFoundError(f"{root}: no model with an edge export here (expected {_MODEL_INFO} and {EDGE_DIR}/)")


def json_values(values: np.ndarray) -> list:
    """An output array as JSON-ready lists: floats rounded to 6 decimals (as the full server answers)."""
    return values.round(6).tolist() if values.dtype.kind == "f" else values.tolist()


def _threshold(folder: Path, model_dir: Path, info: dict) -> float:
    """The alarm threshold: a published version's blessing, else the one training chose, else 0.5."""
    if info.get("model_type") == "predictive-maintenance":
        for candidate in (model_dir / _BLESSING, folder / _BLESSING, model_dir.parent / _BLESSING):
            if candidate.is_file():
                return float(json.loads(candidate.read_text())["gate"]["decision_threshold"])
    return float((info.get("threshold") or {}).get("value", 0.5))


class ServedEdgeModel:
    """One loaded model version: decode a request, score it with LiteRT, answer as the full server does."""

    def __init__(self, name: str, folder: str | Path, version: str, variant: str = "int8", max_batch: int = 1024):
        model_dir = model_folder(folder)
        self.name, self.version, self.folder = name, version, Path(folder)
        self.info: dict = json.loads((model_dir / _MODEL_INFO).read_text())
        self.kind: str = self.info.get("model_type", "predictive-maintenance")
        if self.kind not in KINDS:
            raise ValueError(f"{model_dir}: model_type {self.kind!r}, expected one of {', '.join(KINDS)}")
        edge_info = read_edge_info(model_dir / EDGE_DIR)
        if variant not in edge_info.get("variants", {}) and "float32" in edge_info.get("variants", {}):
            variant = "float32"  # int8 is not offered for this model (its record says why): float32 answers
        self.variant = variant
        self.model = EdgeModel(verified_variant(model_dir / EDGE_DIR, variant, edge_info))
        self.threshold = _threshold(self.folder, model_dir, self.info)
        self._lock = threading.Lock()  # one interpreter, one set of tensors
        self.spec: WindowSpec | ImageSpec
        if self.kind == "visual-inspection":
            width, height = self.info["image_size"]
            self.spec = ImageSpec(width, height, self.info["color_mode"], max_batch)
            self.classes = list(self.info["classes"])
            self.ok_index = self.classes.index(self.info["ok_class"])
        else:
            self.spec = WindowSpec(self.info["window"], self.info["features"], max_batch)

    @property
    def score_output(self) -> str:
        """The output whose distribution monitoring follows: failure probability, anomaly score or defect score."""
        return SCORE_OUTPUTS[self.kind]

    @property
    def alarm_output(self) -> str:
        """The boolean output that is the alarm: fails within horizon, anomalous or defective."""
        return ALARM_OUTPUTS[self.kind]

    def decode_v1(self, payload: Any) -> np.ndarray:
        """Inputs from a V1 body (``InvalidRequest`` naming the field when refused)."""
        if isinstance(self.spec, ImageSpec):
            return image_request_codec.decode_images_v1(payload, self.spec)
        return request_codec.decode_v1(payload, self.spec)

    def decode_v2(self, request: V2Request) -> np.ndarray:
        """Inputs from a V2 request (``InvalidRequest`` naming the field when refused)."""
        if isinstance(self.spec, ImageSpec):
            return image_request_codec.decode_images_v2(request, self.spec)
        return request_codec.decode_v2(request, self.spec)

    def outputs(self, inputs: np.ndarray) -> dict[str, np.ndarray]:
        """The served outputs for a batch, in the full server's order and types (float32, bool, text)."""
        with self._lock:
            raw = self.model.predict(inputs)
        if self.kind == "predictive-maintenance":
            probability = raw["failure_probability"].reshape(-1)
            return {
                "failure_probability": probability,
                "fails_within_horizon": probability >= self.threshold,
                "rul_hours": raw["rul_hours"].reshape(-1),
            }
        if self.kind == "anomaly-detection":
            score = raw["anomaly_score"].reshape(-1)
            return {"anomaly_score": score, "anomalous": score >= self.threshold}
        probabilities = raw["probabilities"]
        score = raw["defect_score"].reshape(-1)
        defects_only = probabilities.copy()
        defects_only[:, self.ok_index] = -np.inf
        decided = np.where(score >= self.threshold, defects_only.argmax(axis=1), self.ok_index)
        return {
            "label": np.array([self.classes[i] for i in decided]),
            "defective": decided != self.ok_index,
            "defect_score": score,
            "probabilities": probabilities,
        }

    def logged_inputs(self, inputs: np.ndarray) -> np.ndarray | list[dict]:
        """What the payload log keeps of the inputs: the windows, or a summary per image (as the full server)."""
        if self.kind != "visual-inspection":
            return inputs
        summary = []
        for image in inputs:
            statistics = {name: round(value, 3) for name, value in image_statistics(image).items()}
            summary.append({"sha256": hashlib.sha256(image.astype(np.uint8).tobytes()).hexdigest(), **statistics})
        return summary

    def input_types(self) -> list[dict]:
        """V2 metadata of the input."""
        if isinstance(self.spec, ImageSpec):
            return [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
        return [{"name": "window", "datatype": "FP32", "shape": [-1, self.spec.window, len(self.spec.features)]}]

    def output_types(self) -> list[dict]:
        """V2 metadata of the outputs, as the full server states them."""
        names = {
            "predictive-maintenance": [
                ("failure_probability", "FP32"),
                ("fails_within_horizon", "BOOL"),
                ("rul_hours", "FP32"),
            ],
            "anomaly-detection": [("anomaly_score", "FP32"), ("anomalous", "BOOL")],
            "visual-inspection": [("label", "BYTES"), ("defective", "BOOL"), ("defect_score", "FP32")],
        }[self.kind]
        types = [{"name": name, "datatype": datatype, "shape": [-1]} for name, datatype in names]
        if self.kind == "visual-inspection":
            types.append({"name": "probabilities", "datatype": "FP32", "shape": [-1, len(self.classes)]})
        return types

    def v1_answer(self, arrays: dict[str, np.ndarray]) -> dict:
        """The V1 answer: one object per input."""
        outputs = {name: json_values(values) for name, values in arrays.items()}
        rows = zip(*outputs.values(), strict=True)
        return {"predictions": [dict(zip(outputs, values, strict=True)) for values in rows]}

    def v2_answer(self, arrays: dict[str, np.ndarray], request_id: str) -> dict:
        """The V2 answer: one output tensor per array, FP32/BOOL/BYTES by its dtype, data flattened."""
        outputs = []
        for name, values in arrays.items():
            data = values.astype(np.float32) if values.dtype.kind == "f" else values
            flat = data.ravel().tolist()
            outputs.append(
                {"name": name, "shape": list(values.shape), "datatype": _V2_DATATYPES[values.dtype.kind], "data": flat}
            )
        return {"model_name": self.name, "model_version": self.version, "id": request_id, "outputs": outputs}


def check_request(condition: bool, message: str) -> None:
    """Refuse a request (HTTP 400) with ``message`` unless ``condition``."""
    if not condition:
        raise InvalidRequest(message)
