"""The KServe model for shopfloor window models: V1 and V2 prediction, explanations, payload logging.

One ``kserve.Model`` subclass serves both roles of an InferenceService (predictor and explainer): KServe
upstream dropped its Alibi explainers, so ``explain`` is ours (integrated gradients, shared with the
``explain`` step). Every answered request is handed to the payload logger, which never slows or fails it.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shopfloor.common.attributions import integrated_gradients, mean_baseline
from shopfloor.common.errors import ShopfloorError
from shopfloor.common.images import image_statistics
from shopfloor.contracts.edge import EdgeModel, verified_variant
from shopfloor.contracts.model_artifact import BLESSING_FILE, load_model_info, resolve_model_dir
from shopfloor.families.classical import load_scoring_model
from shopfloor.families.registry import ModelKind, family
from shopfloor.families.visual_inspection.inference import (
    LAST_CONV,
    decide,
    defect_scores,
    gradcam,
    heatmap_png,
)
from shopfloor.serving._kserve import InferOutput, InferRequest, InferResponse, InvalidInput, Model
from shopfloor.serving.codec import WindowSpec, decode_v1, decode_v2
from shopfloor.serving.image_codec import ImageSpec, decode_images_v1, decode_images_v2
from shopfloor.serving.metrics import batch_observer, observe_outputs
from shopfloor.serving.offload import BoundedPool, MicroBatcher

__all__ = ["DEFAULT_MAX_BATCH", "AnomalyWindowModel", "ImageModel", "WindowModel", "model_class"]

DEFAULT_MAX_BATCH = 1024
_V2_DATATYPES = {"f": "FP32", "b": "BOOL", "U": "BYTES"}


def _v2_data(values: np.ndarray) -> np.ndarray:
    """An output array as kserve's V2 encoder takes it: text (BYTES) as UTF-8 bytes objects, floats as FP32."""
    if values.dtype.kind == "U":
        return np.array([v.encode() for v in values.tolist()], dtype=object)
    return values.astype(np.float32) if values.dtype.kind == "f" else values


def _json_values(values: np.ndarray) -> list:
    """An output array as JSON-ready lists: floats rounded to 6 decimals, booleans as is."""
    return values.round(6).tolist() if values.dtype.kind == "f" else values.tolist()


def _decision_threshold(folder: Path, info: dict) -> float:
    """The alarm threshold: a published version's blessing, else the one training chose on validation, else 0.5."""
    for candidate in (folder / BLESSING_FILE, folder.parent / BLESSING_FILE):
        if candidate.is_file():
            return float(json.loads(candidate.read_text())["gate"]["decision_threshold"])
    return float((info.get("threshold") or {}).get("value", 0.5))


def _compiled(keras_model, window: int, features: int):
    """The model's forward pass as one traced graph for any batch size: ~0.3 ms instead of ~4 ms eager."""
    import tensorflow as tf

    signature = [tf.TensorSpec([None, window, features], tf.float32)]
    return tf.function(lambda windows: keras_model(windows, training=False), input_signature=signature)


class WindowModel(Model):
    """A predictive-maintenance model over sensor windows, served by ``kserve.ModelServer`` or our app."""

    spec: WindowSpec  # the input the loaded model expects: set by load()

    def __init__(
        self,
        name: str,
        model_dir: str | Path,
        *,
        model_version: str = "",
        payload_logger=None,
        max_batch: int = DEFAULT_MAX_BATCH,
        explain_steps: int = 32,
        explain_workers: int = 1,
        explain_waiting: int = 2,
    ):
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.model_version = model_version
        self.payload_logger = payload_logger
        self.max_batch = max_batch
        self.explain_steps = explain_steps
        self.explain_pool = BoundedPool(f"{name}-explain", workers=explain_workers, waiting=explain_waiting)
        self._explain_call: Callable[..., Any] = self.explain_now
        self._batcher: MicroBatcher | None = None  # made on the first predict, inside the server's event loop
        self.keras_model: Any = None  # a keras.Model once loaded (keras has no type information)
        self.info: dict = {}
        self.threshold = 0.5
        self.site_models: list[WindowModel] = []  # a fleet's per-site models, served beside it as NAME-<site>

    def load(self) -> bool:
        """Load the Keras model and its description; the model is ready once this returns."""
        folder = resolve_model_dir(self.model_dir)
        self.info = load_model_info(folder)
        self.keras_model = load_scoring_model(folder)  # the engine training chose: the network or its challenger
        self._infer = (
            _compiled(self.keras_model, self.info["window"], len(self.info["features"]))
            if self.info.get("engine", "keras") == "keras"
            else self.keras_model  # a classical engine scores a batch in NumPy or its library: nothing to trace
        )
        self.spec = WindowSpec(self.info["window"], self.info["features"], self.max_batch)
        self.threshold = _decision_threshold(self.model_dir, self.info)
        self.model_version = self.model_version or self.model_dir.name
        self._score(np.zeros((1, self.spec.window, len(self.spec.features)), np.float32))  # warm the graph
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict]:
        """V2 metadata: one FP32 window tensor."""
        return [{"name": "window", "datatype": "FP32", "shape": [-1, self.spec.window, len(self.spec.features)]}]

    def get_output_types(self) -> list[dict]:
        """V2 metadata: failure probability, the alarm at the gate's threshold, remaining useful life."""
        return [
            {"name": "failure_probability", "datatype": "FP32", "shape": [-1]},
            {"name": "fails_within_horizon", "datatype": "BOOL", "shape": [-1]},
            {"name": "rul_hours", "datatype": "FP32", "shape": [-1]},
        ]

    def _score(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Failure probabilities and RUL hours; a direct call, not ``predict()``, for low per-request latency."""
        outputs = self._infer(windows)
        return np.asarray(outputs["failure"]).reshape(-1), np.asarray(outputs["rul"]).reshape(-1)

    def _outputs(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """The answer for a batch, one array per output of ``get_output_types`` (float32 or bool)."""
        probability, rul = self._score(windows)
        return {
            "failure_probability": probability.astype(np.float32),
            "fails_within_horizon": probability >= self.threshold,
            "rul_hours": rul.astype(np.float32),
        }

    def _decode(self, payload: dict | InferRequest) -> np.ndarray:
        """Windows from either protocol."""
        return decode_v2(payload, self.spec) if isinstance(payload, InferRequest) else decode_v1(payload, self.spec)

    def _log(self, payload: dict | InferRequest, headers: dict | None, windows: np.ndarray, outputs: dict) -> None:
        """Hand the pair to the payload logger (non-blocking; it never raises)."""
        self._record(payload, headers, windows, outputs)

    def _record(
        self, payload: dict | InferRequest, headers: dict | None, inputs: np.ndarray | list[dict], outputs: dict
    ) -> None:
        """Hand the inputs as logged (windows, or a summary per image) and the outputs to the payload logger."""
        if self.payload_logger is None:
            return
        request_id = (headers or {}).get("x-request-id") or getattr(payload, "id", None) or uuid.uuid4().hex
        protocol = "v1" if not isinstance(payload, InferRequest) else "grpc" if payload.from_grpc else "v2"
        self.payload_logger.record(request_id, protocol, inputs, outputs)

    async def predict(
        self, payload: dict | InferRequest, headers: dict[str, str] | None = None
    ) -> dict | InferResponse:
        """Score a request's windows together with other waiting requests' (``MicroBatcher``), off the event loop."""
        windows = self._decode(payload)
        if self._batcher is None:
            self._batcher = MicroBatcher(self.name, self._outputs, self.max_batch, on_batch=batch_observer(self.name))
        return self._answer(payload, headers, windows, await self._batcher.score(windows))

    def predict_now(self, payload: dict | InferRequest, headers: dict[str, str] | None = None) -> dict | InferResponse:
        """Score a request's windows right here, in the caller's thread (scripts and tests; the server batches)."""
        windows = self._decode(payload)
        return self._answer(payload, headers, windows, self._outputs(windows))

    def _answer(
        self, payload: dict | InferRequest, headers: dict | None, windows: np.ndarray, arrays: dict[str, np.ndarray]
    ) -> dict | InferResponse:
        """Log the pair, count it in the metrics and answer: V1 ``predictions`` (one object per window), V2 tensors."""
        observe_outputs(self.name, arrays)  # served scores and alarms (``serving.metrics``)
        outputs = {name: _json_values(values) for name, values in arrays.items()}
        self._log(payload, headers, windows, outputs)
        if not isinstance(payload, InferRequest):
            return {
                "predictions": [
                    dict(zip(outputs, values, strict=True)) for values in zip(*outputs.values(), strict=True)
                ]
            }
        return self._v2_response(payload, arrays)

    def _v2_response(
        self, request: InferRequest, arrays: dict[str, np.ndarray], parameters: dict | None = None
    ) -> InferResponse:
        """A V2 response with one output tensor per named array (FP32, BOOL or BYTES by the array's dtype)."""
        return InferResponse(
            model_name=self.name,
            model_version=self.model_version,
            response_id=request.id or uuid.uuid4().hex,
            parameters=parameters,
            infer_outputs=[
                InferOutput(name, list(values.shape), _V2_DATATYPES[values.dtype.kind], data=_v2_data(values))
                for name, values in arrays.items()
            ],
        )

    def explanation(self, windows: np.ndarray) -> dict:
        """Attributions of the failure probability, per reading and per feature (see ``explanation_method``)."""
        if hasattr(self.keras_model, "attributions"):  # the classical challenger: exact tree SHAP per sensor
            result = self.keras_model.attributions(windows)
        else:
            baseline = mean_baseline(self.info["normalization"]["mean"], self.spec.window)
            result = integrated_gradients(self.keras_model, windows, baseline, steps=self.explain_steps)
        return {
            "attributions": result.values,
            "feature_attributions": result.per_feature,
            "failure_probability": result.score,
            "baseline_probability": result.baseline_score,
        }

    def explanation_method(self) -> dict[str, str]:
        """How answers are explained: integrated gradients from the training mean, or the trees' exact SHAP."""
        if hasattr(self.keras_model, "attributions"):
            return {"method": "tree-shap", "baseline": "expected value of the trees"}
        return {"method": "integrated-gradients", "baseline": "training mean"}

    async def explain(
        self, payload: dict | InferRequest, headers: dict[str, str] | None = None
    ) -> dict | InferResponse:
        """Explain a batch in the model's bounded pool, off the event loop (503 when the pool is full)."""
        return await self.explain_pool.run(self._explain_call, payload, headers)

    def explain_in_a_process(self, threads: int = 1) -> None:
        """From now on explain in a worker process of its own, so predicts never wait (``serving.explain_process``).

        Call after ``load``: the worker loads the same folder, version and settings.
        """
        from shopfloor.serving.explain_process import ExplainProcess, explain_in_worker

        waiting = self.explain_pool.capacity - 1
        self.explain_pool = BoundedPool(self.explain_pool.name, 1, waiting, executor=ExplainProcess(self, threads))
        self._explain_call = explain_in_worker

    def explain_now(self, payload: dict | InferRequest, headers: dict[str, str] | None = None) -> dict | InferResponse:
        """Explain a batch: V1 answers ``explanations`` with features ranked, V2 output tensors."""
        windows = self._decode(payload)
        found = self.explanation(windows)
        features = self.spec.features
        if isinstance(payload, InferRequest):
            parameters = {
                **self.explanation_method(),
                "features": json.dumps(features),
            }
            return self._v2_response(payload, {k: np.asarray(v, np.float32) for k, v in found.items()}, parameters)
        explanations = []
        for i in range(len(windows)):
            per_feature = dict(zip(features, found["feature_attributions"][i].round(6).tolist(), strict=True))
            explanations.append(
                {
                    "failure_probability": round(float(found["failure_probability"][i]), 6),
                    "baseline_probability": round(float(found["baseline_probability"][i]), 6),
                    "feature_attributions": per_feature,
                    "top_features": sorted(per_feature, key=lambda f: abs(per_feature[f]), reverse=True)[:3],
                    "attributions": found["attributions"][i].round(6).tolist(),
                }
            )
        return {
            **self.explanation_method(),
            "features": features,
            "explanations": explanations,
        }


class AnomalyWindowModel(WindowModel):
    """An anomaly detector over sensor windows: the score, the alarm, and which sensors the model failed on.

    The autoencoder's output is the score (reconstruction error in standard units), so no gradients are needed
    to explain it: the explanation is the error per sensor, the sensors the window disagrees with normal
    operation on.
    """

    def load(self) -> bool:
        """Load the detector like any window model; its alarm threshold comes with the model, not the gate."""
        super().load()
        self.threshold = float(self.info["threshold"]["value"])
        return self.ready

    def get_output_types(self) -> list[dict]:
        """V2 metadata: the anomaly score and the alarm at the trained threshold."""
        return [
            {"name": "anomaly_score", "datatype": "FP32", "shape": [-1]},
            {"name": "anomalous", "datatype": "BOOL", "shape": [-1]},
        ]

    def _errors(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores [n] and per-sensor errors [n, features] in one forward pass."""
        outputs = self._infer(windows)
        return np.asarray(outputs["score"]).reshape(-1), np.asarray(outputs["feature_errors"])

    def _score(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores and per-sensor errors (the warm-up in ``load`` calls this)."""
        return self._errors(windows)

    def _outputs(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """The anomaly score and whether it reaches the threshold, per window."""
        score, _ = self._errors(windows)
        return {"anomaly_score": score.astype(np.float32), "anomalous": score >= self.threshold}

    def explanation(self, windows: np.ndarray) -> dict:
        """Reconstruction error per sensor (the score is their reading-weighted mean)."""
        score, per_feature = self._errors(windows)
        return {"anomaly_score": score, "feature_errors": per_feature}

    def explain_now(self, payload: dict | InferRequest, headers: dict[str, str] | None = None) -> dict | InferResponse:
        """Explain a batch: V1 answers ``explanations`` with sensors ranked by error, V2 output tensors."""
        windows = self._decode(payload)
        found = self.explanation(windows)
        features = self.spec.features
        if isinstance(payload, InferRequest):
            parameters = {"method": "reconstruction-error", "features": json.dumps(features)}
            return self._v2_response(payload, {k: np.asarray(v, np.float32) for k, v in found.items()}, parameters)
        explanations = []
        for score, errors in zip(found["anomaly_score"], found["feature_errors"], strict=True):
            per_feature = dict(zip(features, errors.round(6).tolist(), strict=True))
            explanations.append(
                {
                    "anomaly_score": round(float(score), 6),
                    "anomalous": bool(score >= self.threshold),
                    "feature_errors": per_feature,
                    "top_features": sorted(per_feature, key=lambda name: per_feature[name], reverse=True)[:3],
                }
            )
        return {
            "method": "reconstruction-error",
            "threshold": self.threshold,
            "features": features,
            "explanations": explanations,
        }


class ImageModel(WindowModel):
    """A part-inspection CNN: encoded images (or pixels) in; class, defect decision, score and probabilities out.

    Explanations are Grad-CAM heatmaps on the last convolution, the same as the explain step's report, as an
    array and as a PNG overlay an operator can look at before giving feedback.
    """

    # The images the loaded model expects. Not a WindowSpec: every WindowModel method that reads the spec
    # (load, get_input_types, _decode, explanation, explain) is overridden here.
    spec: ImageSpec  # type: ignore[assignment]

    def load(self) -> bool:
        """Load the CNN, its classes, image spec and the defect threshold chosen on validation data."""
        import tensorflow as tf

        folder = resolve_model_dir(self.model_dir)
        self.info = load_model_info(folder)
        self.keras_model = load_scoring_model(folder)  # the engine training chose: the CNN or its challenger
        width, height = self.info["image_size"]
        self.spec = ImageSpec(width, height, self.info["color_mode"], self.max_batch)
        if self.runtime == "keras" and self.info.get("engine", "keras") != "keras":
            self._infer = self.keras_model.predict  # the trees score a batch at once: nothing to trace
        elif self.runtime == "keras":
            signature = [tf.TensorSpec([None, height, width, self.spec.channels], tf.float32)]
            forward = tf.function(lambda images: self.keras_model(images, training=False), input_signature=signature)
            self._infer = forward
        else:  # what an edge PC runs: the float32 or int8 TFLite export next to the model (explanations stay Keras)
            export = folder / "edge" / f"model_{self.runtime.removeprefix('tflite-')}.tflite"
            if not export.is_file():
                expected = f"the {self.runtime} export that train-inspector writes"
                raise ShopfloorError(str(export), "missing", field="runtime", expected=expected)
            edge_model = EdgeModel(verified_variant(export.parent, self.runtime.removeprefix("tflite-")))
            self._infer = lambda images: edge_model.predict(images)["probabilities"]
        self.classes = list(self.info["classes"])
        self.ok_index = self.classes.index(self.info["ok_class"])
        self.threshold = float(self.info["threshold"]["value"])
        self.model_version = self.model_version or self.model_dir.name
        self._infer(np.zeros((1, height, width, self.spec.channels), np.float32))  # warm the graph
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict]:
        """V2 metadata: encoded images (BYTES), or UINT8 pixels [n, height, width, channels]."""
        return [{"name": "image", "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict]:
        """V2 metadata: decided class, defect decision and score, class probabilities (in ``classes`` order)."""
        return [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "defective", "datatype": "BOOL", "shape": [-1]},
            {"name": "defect_score", "datatype": "FP32", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(self.classes)]},
        ]

    def _decode(self, payload: dict | InferRequest) -> np.ndarray:
        """Images from either protocol."""
        if isinstance(payload, InferRequest):
            return decode_images_v2(payload, self.spec)
        return decode_images_v1(payload, self.spec)

    def _outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Decide each image at the threshold: ok, or its most probable defect."""
        probabilities = np.asarray(self._infer(images))
        decided = decide(probabilities, self.ok_index, self.threshold)
        score = defect_scores(probabilities, self.ok_index)
        return {
            "label": np.array([self.classes[i] for i in decided]),
            "defective": decided != self.ok_index,
            "defect_score": score.astype(np.float32),
            "probabilities": probabilities.astype(np.float32),
        }

    def _log(self, payload: dict | InferRequest, headers: dict | None, images: np.ndarray, outputs: dict) -> None:
        """Log a summary of each image (content hash of its pixels, brightness, contrast, sharpness), not the pixels."""
        summary = []
        for image in images:  # the statistics ingest profiles: the drift monitor compares the two
            statistics = {name: round(value, 3) for name, value in image_statistics(image).items()}
            summary.append({"sha256": hashlib.sha256(image.astype(np.uint8).tobytes()).hexdigest(), **statistics})
        self._record(payload, headers, summary, outputs)

    def explanation(self, images: np.ndarray) -> dict:
        """Grad-CAM heatmaps [n, height, width] in 0-1 for the decided class of each image."""
        decided = self._outputs(images)
        index = np.array([self.classes.index(label) for label in decided["label"]])
        if hasattr(self.keras_model, "evidence"):  # the classical challenger: tree SHAP per image block
            return {**decided, "heatmaps": self.keras_model.evidence(images)[0]}
        cams = gradcam(self.keras_model, images, class_index=index)
        return {**decided, "heatmaps": cams.heatmaps}

    feedback_uri: str = ""  # the model store feedback is written to; '' = feedback is refused
    runtime: str = "keras"  # keras | tflite-float32 | tflite-int8: what answers predict

    def feedback(self, body: dict, operator: str) -> dict:
        """Record ``operator``'s verdict on an explanation (right, wrong-region, wrong-label + the right label).

        ``body`` is the validated request (``server.FeedbackBody``); the image is named by its file
        (``image_bytes.b64``, hashed as ingest hashes files) or by ``image_sha256``. The answer names the record,
        not where the store keeps it.
        """
        from shopfloor.contracts.feedback import new_feedback, record_feedback

        if not self.feedback_uri:
            raise InvalidInput("feedback is not enabled on this server (start it with --feedback-uri)")
        encoded = (body.get("image_bytes") or {}).get("b64")
        digest = body.get("image_sha256") or ""
        if encoded:
            try:
                digest = hashlib.sha256(base64.b64decode(encoded, validate=True)).hexdigest()
            except (ValueError, TypeError):
                raise InvalidInput("image_bytes.b64: not base64") from None
        try:
            record = new_feedback(
                self.name,
                self.model_version,
                digest,
                body["verdict"],
                operator,
                self.classes,
                corrected_label=body.get("corrected_label") or None,
                note=body.get("note", ""),
                request_id=body.get("request_id", ""),
            )
        except ShopfloorError as exc:
            raise InvalidInput(f"{exc.field or 'feedback'}: {exc.problem} (expected {exc.expected})") from None
        record_feedback(self.feedback_uri, record)
        return {"id": record.id, "image_sha256": digest, "operator": record.operator}

    def explain_now(self, payload: dict | InferRequest, headers: dict[str, str] | None = None) -> dict | InferResponse:
        """Explain a batch: V1 answers heatmaps (rows of 0-1 values) and PNG overlays, V2 output tensors."""
        images = self._decode(payload)
        found = self.explanation(images)
        if isinstance(payload, InferRequest):
            arrays = {"label": found["label"], "heatmaps": found["heatmaps"].astype(np.float32)}
            return self._v2_response(payload, arrays, {"method": "grad-cam", "layer": LAST_CONV})
        return {
            "method": "grad-cam",
            "layer": LAST_CONV,
            "explanations": [
                {
                    "label": str(found["label"][i]),
                    "defect_score": round(float(found["defect_score"][i]), 6),
                    "heatmap": found["heatmaps"][i].round(3).tolist(),
                    "overlay_png": heatmap_png(images[i], found["heatmaps"][i]),
                }
                for i in range(len(images))
            ],
        }


def model_class(model_dir: str | Path) -> type[WindowModel]:
    """The served class for a model folder: the one its family (the ``model_type`` it records) names."""
    model_type = load_model_info(model_dir).get("model_type", ModelKind.PREDICTIVE_MAINTENANCE.value)
    location = family(model_type).served_model
    if not location:
        raise ShopfloorError(str(model_dir), f"model family {model_type!r} has no served model", field="model_type")
    module_name, _, name = location.partition(":")
    served: type[WindowModel] = getattr(importlib.import_module(module_name), name)
    return served
