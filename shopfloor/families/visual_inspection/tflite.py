"""Edge export of the visual-inspection CNN: TensorFlow Lite, float32 and int8 post-training quantized.

Old edge PCs beside a line run LiteRT (``ai-edge-litert``), not TensorFlow. Both variants take the same raw pixels
(float32, 0-255) and return the same class probabilities (float32) as the Keras model; the quantized one stores
weights and computes activations in int8, calibrated on a seeded sample of training images, with float input and
output so clients need not know its quantization. The augmentation layers are traced in inference mode, so they
are absent from the edge model. Each variant is measured on the test split against the Keras model: accuracy of
the decision at the trained threshold, and agreement (same decided class as Keras).

Output layout of the ``edge`` artifact (a folder, written atomically):
  model_float32.tflite   float32 weights and activations
  model_int8.tflite      int8 weights and activations, float32 input/output (when ``quantize``)
  tflite.json            {"variants": {name: {file, bytes, sha256, quantization, accuracy, argmax_accuracy,
                         agreement, defect_recall, max_abs_probability_error}}, "keras": {accuracy, argmax_accuracy,
                         defect_recall}, "test_images", "threshold", "max_accuracy_drop", "within_tolerance",
                         "runtime"}
"""

from __future__ import annotations

import dataclasses

import numpy as np

from shopfloor.common.storage import atomic_output_dir, sha256_hex, write_json
from shopfloor.contracts.images import ImageSet
from shopfloor.families.visual_inspection.config import TfliteConfig
from shopfloor.families.visual_inspection.inference import TfliteRunner, decide, defect_scores
from shopfloor.families.visual_inspection.model import predict_probabilities

__all__ = [
    "TFLITE_INFO",
    "TfliteExport",
    "convert_tflite",
    "export_tflite",
    "representative_sample",
    "tflite_predict",
    "write_tflite",
]

TFLITE_INFO = "tflite.json"
_FILES = {"float32": "model_float32.tflite", "int8": "model_int8.tflite"}
_QUANTIZATION = {"float32": "none", "int8": "int8 weights and activations, float32 input and output"}


@dataclasses.dataclass(frozen=True)
class TfliteExport:
    """The converted flatbuffers by variant name and the record of their sizes and accuracies."""

    models: dict[str, bytes]
    info: dict


def representative_sample(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    """A seeded sample of at most ``count`` training images, calibrating the int8 activation ranges."""
    rng = np.random.default_rng(seed)
    return images[np.sort(rng.permutation(len(images))[: min(count, len(images))])]


def convert_tflite(model, representative: np.ndarray | None = None) -> bytes:
    """The model as a TFLite flatbuffer: float32, or int8-quantized when a representative sample is given."""
    import tensorflow as tf

    # from the Keras model (through a SavedModel, which freezes its variables): a concrete function of the model
    # left a variable read in the graph when the model had no random augmentation layer, and int8 calibration
    # cannot run one ("READ_VARIABLE failed to invoke")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if representative is not None:
        sample = representative.astype(np.float32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([sample[i : i + 1]] for i in range(len(sample)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def tflite_predict(content: bytes, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Class probabilities [n, classes] from a TFLite model (loaded for this call) for raw images."""
    return TfliteRunner(content).predict(images, batch_size)


def _measure(probabilities: np.ndarray, reference: np.ndarray, labels: np.ndarray, ok: int, threshold: float) -> dict:
    """Accuracy of the thresholded decision and of argmax, defect recall, and agreement with the reference."""
    decided, expected = decide(probabilities, ok, threshold), decide(reference, ok, threshold)
    defect = labels != ok
    rejected = defect_scores(probabilities, ok) >= threshold
    return {
        "accuracy": float((decided == labels).mean()),
        "argmax_accuracy": float((probabilities.argmax(axis=1) == labels).mean()),
        "defect_recall": float(rejected[defect].mean()) if defect.any() else 0.0,
        "agreement": float((decided == expected).mean()),
        "max_abs_probability_error": float(np.abs(probabilities - reference).max()),
    }


def export_tflite(model, images: ImageSet, threshold: float, config: TfliteConfig) -> TfliteExport:
    """Convert to float32 (and int8) TFLite and measure each against the Keras model on the test split."""
    import tensorflow as tf

    test = images.part("test")
    if test.images.shape[0] == 0:
        raise ValueError("the test split holds no images; add images or raise split.test_fraction")
    reference = predict_probabilities(model, test.images)
    ok = images.ok_index
    models = {"float32": convert_tflite(model)}
    if config.quantize:
        calibration = representative_sample(images.part("train").images, config.representative_images, config.seed)
        models["int8"] = convert_tflite(model, calibration)
    variants = {}
    for name, content in models.items():
        measured = _measure(tflite_predict(content, test.images), reference, test.labels, ok, threshold)
        variants[name] = {
            "file": _FILES[name],
            "bytes": len(content),
            "sha256": sha256_hex(content),
            "quantization": _QUANTIZATION[name],
            **measured,
        }
    keras_record = _measure(reference, reference, test.labels, ok, threshold)
    keras_record = {k: keras_record[k] for k in ("accuracy", "argmax_accuracy", "defect_recall")}
    worst = min(v["accuracy"] for v in variants.values())
    try:
        import ai_edge_litert  # noqa: F401

        runtime = "ai-edge-litert"
    except ImportError:
        runtime = f"tf.lite.Interpreter (tensorflow {tf.__version__})"
    info = {
        "variants": variants,
        "keras": keras_record,
        "test_images": int(test.labels.size),
        "threshold": float(threshold),
        "max_accuracy_drop": config.max_accuracy_drop,
        "within_tolerance": bool(keras_record["accuracy"] - worst <= config.max_accuracy_drop + 1e-12),
        "runtime": runtime,
    }
    return TfliteExport(models=models, info=info)


def write_tflite(export: TfliteExport, folder: str) -> None:
    """Write the TFLite variants and their record, atomically as one folder."""
    with atomic_output_dir(folder) as scratch:
        for name, content in export.models.items():
            (scratch / _FILES[name]).write_bytes(content)
        write_json(scratch / TFLITE_INFO, export.info)
