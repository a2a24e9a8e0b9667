"""TFLite export of any family's Keras model, measured against Keras: right or absent.

A family describes what it exports (:class:`EdgeTarget`): the Keras model, its input, a function turning the
model's outputs into the served outputs *in the graph* (so the edge runtime does no TensorFlow math), how a
served answer becomes decisions, and the test split to measure on. :func:`export_edge` then

1. builds an inference-only copy of the model: random augmentation and dropout layers (identity at inference)
   are left out, so no random-generator state variable is traced into the graph;
2. converts a Keras model of the served outputs (through a SavedModel, which freezes the variables): ``float32``, and
   ``int8`` when ``quantize`` (images: weights and activations, calibrated on a seeded sample of training inputs;
   windows: weights only, since a quantized input cannot carry the NaN that marks a missing reading);
3. runs each variant on the test split and keeps it only within tolerance of Keras: float32 within
   ``1e-3 * max(1, |keras|)`` on every output, int8 within ``max_accuracy_drop`` of Keras' accuracy, neither with
   a non-finite answer where Keras has none. A variant that fails to convert or to agree is absent, with one
   line ``no edge export: <variant>: <reason>`` and its reason in the record's ``missing``.

The layout written is :mod:`shopfloor.contracts.edge`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import Field

from shopfloor.common.config import StrictSection
from shopfloor.common.progress import report_progress
from shopfloor.common.storage import atomic_output_dir, sha256_hex, write_json
from shopfloor.contracts.edge import EDGE_INFO, VARIANT_FILES, EdgeModel
from shopfloor.contracts.windows import LabelledWindows

__all__ = [
    "EdgeConfig",
    "EdgeExport",
    "EdgeTarget",
    "convert",
    "export_edge",
    "inference_copy",
    "no_export",
    "representative_sample",
    "served_model",
    "window_target",
    "write_edge",
]

FLOAT32_TOLERANCE = 1e-3
_RANDOM_LAYERS = (
    "Dropout",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
)
_QUANTIZATION = {
    "none": "none",
    "full": "int8 weights and activations, float32 input and output",
    "dynamic": "int8 weights, float32 activations, input and output",
}


class EdgeConfig(StrictSection):
    """The edge export: which TFLite variants to write and how far the quantized one may fall behind."""

    quantize: bool = Field(True, description="also write the int8 post-training quantized variant")
    representative_images: int = Field(
        100, ge=1, le=10000, description="training inputs (images or windows) calibrating int8 ranges"
    )
    max_accuracy_drop: float = Field(0.03, ge=0, le=1, description="quantized vs. Keras accuracy on the test split")
    seed: int = 7


@dataclasses.dataclass(frozen=True)
class EdgeTarget:
    """What a family exports and how its answers are judged.

    ``served`` maps the Keras model's outputs (a tensor or a dict of tensors) to the served outputs with Keras ops
    (it is applied to the functional model's symbolic outputs);
    ``decide`` maps served outputs (NumPy) to one decision per input; ``labels`` are the test split's true
    decisions (accuracy is measured where given); ``measure`` adds family metrics of served outputs against Keras'.
    """

    kind: str
    model: Any
    input_name: str
    served: Callable[[Any], dict[str, Any]]
    decide: Callable[[dict[str, np.ndarray]], np.ndarray]
    test_inputs: np.ndarray
    calibration: np.ndarray
    labels: np.ndarray | None = None
    int8: Literal["full", "dynamic"] = "full"
    measure: Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], dict[str, float]] | None = None
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class EdgeExport:
    """The published flatbuffers by variant name and the record of their sizes, agreement and what is missing."""

    models: dict[str, bytes]
    info: dict


def representative_sample(inputs: np.ndarray, count: int, seed: int) -> np.ndarray:
    """A seeded sample of at most ``count`` training inputs, calibrating the int8 activation ranges."""
    rng = np.random.default_rng(seed)
    return inputs[np.sort(rng.permutation(len(inputs))[: min(count, len(inputs))])]


def inference_copy(model: Any) -> Any:
    """The model without its random layers (augmentation, dropout: identity at inference), sharing its weights."""
    import keras

    def without_randomness(layer: Any) -> Any:
        name = type(layer).__name__
        if name.startswith("Random") or name in _RANDOM_LAYERS:
            return keras.layers.Identity(name=layer.name)
        return layer  # the same layer object: its weights are shared, not copied

    return keras.models.clone_model(model, clone_function=without_randomness)


def served_model(target: EdgeTarget, inference_only: bool = True) -> Any:
    """A Keras model of the served outputs: the model (without its random layers) and ``served`` on top."""
    import keras

    model = inference_copy(target.model) if inference_only else target.model
    return keras.Model(model.inputs, target.served(model.output), name=f"{model.name}_served")


def convert(target: EdgeTarget, quantization: Literal["none", "full", "dynamic"], calibration: np.ndarray) -> bytes:
    """One TFLite flatbuffer of the target's served outputs.

    Converted from the inference-only Keras model, which the converter exports as a SavedModel first (freezing
    the variables): a traced function of the full model kept random-generator state as variables, which int8
    calibration cannot read (``READ_VARIABLE failed``) and float32 read as NaN.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(served_model(target))
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "full":
        sample = calibration.astype(np.float32)
        converter.representative_dataset = lambda: ([sample[i : i + 1]] for i in range(len(sample)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return bytes(converter.convert())


def _keras_outputs(target: EdgeTarget, batch_size: int = 256) -> dict[str, np.ndarray]:
    """The served outputs of the Keras model itself (random layers and all, at inference) on the test split."""
    model = served_model(target, inference_only=False)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(target.test_inputs), batch_size):
        batch = target.test_inputs[start : start + batch_size].astype(np.float32)
        for name, value in model(batch, training=False).items():
            parts.setdefault(name, []).append(np.asarray(value, np.float32))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def _first_line(error: BaseException) -> str:
    """An exception as one short line (converter errors run to pages)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = next((line for line in lines if "error" in line.lower()), lines[0] if lines else type(error).__name__)
    return f"{type(error).__name__}: {text[:300]}"


def _measured(target: EdgeTarget, outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict:
    """Agreement of decisions with Keras, max abs error per output, accuracy where labels are known."""
    record: dict[str, Any] = {
        "agreement": float((target.decide(outputs) == target.decide(reference)).mean()),
        "max_abs_error": max(float(np.nanmax(np.abs(outputs[k] - reference[k]), initial=0.0)) for k in reference),
    }
    if target.labels is not None:
        record["accuracy"] = float((target.decide(outputs) == target.labels).mean())
    if target.measure is not None:
        record.update(target.measure(outputs, reference))
    return record


def _problem(
    variant: str,
    outputs: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    record: dict,
    keras_record: dict,
    config: EdgeConfig,
) -> str | None:
    """Why a variant is outside tolerance, or None when it is within."""
    for name, expected in reference.items():
        got = outputs.get(name)
        if got is None or got.shape != expected.shape:
            return f"output {name}: shape {None if got is None else list(got.shape)}, Keras {list(expected.shape)}"
        if (~np.isfinite(got) & np.isfinite(expected)).any():
            return f"output {name}: non-finite answers (NaN/inf) where Keras answers numbers"
    if variant == "float32":
        for name, expected in reference.items():
            error = float(np.nanmax(np.abs(outputs[name] - expected), initial=0.0))
            bound = FLOAT32_TOLERANCE * max(1.0, float(np.nanmax(np.abs(expected), initial=0.0)))
            if error > bound:
                return f"output {name}: max abs error {error:.3g} vs Keras, tolerance {bound:.3g}"
        return None
    if "accuracy" in record and keras_record["accuracy"] - record["accuracy"] > config.max_accuracy_drop + 1e-12:
        return (
            f"test accuracy {record['accuracy']:.4f} vs Keras {keras_record['accuracy']:.4f}, "
            f"more than max_accuracy_drop {config.max_accuracy_drop} lower"
        )
    if "accuracy" not in record and record["agreement"] < 1.0 - config.max_accuracy_drop:
        return f"decisions agree with Keras on {record['agreement']:.4f} of the test split"
    return None


def _runtime_name() -> str:
    """Which interpreter measured the variants."""
    from importlib.metadata import version

    return f"ai-edge-litert {version('ai-edge-litert')}"


def export_edge(target: EdgeTarget, config: EdgeConfig) -> EdgeExport:
    """Convert to float32 (and int8) TFLite and keep each variant only within tolerance of Keras on the test split.

    Never raises for a conversion or a disagreement: that variant is left out and its reason recorded.
    """
    if len(target.test_inputs) == 0:
        raise ValueError("the test split is empty: the edge export cannot be measured")
    reference = _keras_outputs(target)
    keras_record = _measured(target, reference, reference)
    wanted: dict[str, Literal["none", "full", "dynamic"]] = {"float32": "none"}
    if config.quantize:
        wanted["int8"] = target.int8
    calibration = representative_sample(target.calibration, config.representative_images, config.seed)
    models: dict[str, bytes] = {}
    variants: dict[str, dict] = {}
    missing: dict[str, str] = {}
    for variant, quantization in wanted.items():
        try:
            content = convert(target, quantization, calibration)
            outputs = EdgeModel(content).predict(target.test_inputs)
        except Exception as exc:  # a converter or interpreter failure is a missing variant, not a failed training
            missing[variant] = f"conversion failed: {_first_line(exc)}"
        else:
            record = _measured(target, outputs, reference)
            problem = _problem(variant, outputs, reference, record, keras_record, config)
            if problem is None:
                models[variant] = content
                variants[variant] = {
                    "file": VARIANT_FILES[variant],
                    "bytes": len(content),
                    "sha256": sha256_hex(content),
                    "quantization": _QUANTIZATION[quantization],
                    **record,
                }
            else:
                missing[variant] = f"outside tolerance: {problem}"
        if variant in missing:
            report_progress(f"no edge export: {variant}: {missing[variant]}")
    sample = target.test_inputs
    info = {
        "kind": target.kind,
        "input": {"name": target.input_name, "shape": [None, *sample.shape[1:]], "dtype": "float32"},
        "outputs": sorted(reference),
        "variants": variants,
        "missing": missing,
        "keras": {k: v for k, v in keras_record.items() if k not in ("agreement", "max_abs_error")},
        "test_inputs": int(len(sample)),
        "max_accuracy_drop": config.max_accuracy_drop,
        "tolerance": {
            "float32": f"|tflite - keras| <= {FLOAT32_TOLERANCE:g} * max(1, max |keras|) on every output",
            "int8": f"test accuracy at most {config.max_accuracy_drop} below Keras' (decision agreement where no "
            "labels), no NaN where Keras answers",
        },
        "within_tolerance": not missing,
        "runtime": _runtime_name(),
        **target.extra,
    }
    return EdgeExport(models=models, info=info)


def no_export(engine: str) -> dict:
    """The edge record of a model a classical engine answers: no variant, each missing for that reason."""
    from shopfloor.contracts.edge import VARIANTS

    why = f"the classical challenger ({engine}) answers; only Keras models are exported to TFLite"
    return {"variants": {}, "missing": dict.fromkeys(VARIANTS, why)}


def write_edge(export: EdgeExport, folder: str) -> None:
    """Write the published variants and their record, atomically as one folder."""
    with atomic_output_dir(folder) as scratch:
        for name, content in export.models.items():
            (scratch / VARIANT_FILES[name]).write_bytes(content)
        write_json(scratch / EDGE_INFO, export.info)


def window_target(
    kind: str,
    model: Any,
    windows: LabelledWindows,
    served: Callable[[Any], dict[str, Any]],
    score_output: str,
    threshold: float,
) -> EdgeTarget:
    """What a window model exports: its served outputs in the graph, an alarm where ``score_output >= threshold``.

    Measured on the test split (the validation split where the test one is empty); int8 quantizes weights only,
    since a quantized input cannot carry the NaN of a missing reading.
    """
    part = next((windows.part(p) for p in ("test", "validation", "train") if len(windows.part(p).x)), None)
    if part is None:
        raise ValueError("no windows to measure the edge export on")

    def decided(outputs: dict[str, np.ndarray]) -> np.ndarray:
        return outputs[score_output] >= threshold

    return EdgeTarget(
        kind=kind,
        model=model,
        input_name="window",
        served=served,
        decide=decided,
        test_inputs=part.x.astype(np.float32),
        calibration=windows.part("train").x,
        labels=part.failure.astype(bool),
        int8="dynamic",
        extra={"threshold": float(threshold), "score_output": score_output},
    )
