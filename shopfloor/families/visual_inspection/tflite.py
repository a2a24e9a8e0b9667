"""Edge export of the visual-inspection CNN: TFLite float32 and int8, through the shared export.

The exported graph takes raw pixels (float32, 0-255) and returns what the server scores from: the class
``probabilities`` and the ``defect_score`` 1 - P(ok); the edge runtime decides at the threshold with NumPy. The
int8 variant stores weights and computes activations in int8, calibrated on a seeded sample of training images.
Each variant is measured on the test split against Keras (accuracy of the decision at the threshold, argmax
accuracy, defect recall, agreement) and published only within tolerance (:mod:`shopfloor.families.edge_export`;
layout :mod:`shopfloor.contracts.edge`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shopfloor.contracts.edge import EDGE_INFO, EdgeModel
from shopfloor.contracts.images import ImageSet
from shopfloor.families.edge_export import (
    EdgeConfig,
    EdgeExport,
    EdgeTarget,
    export_edge,
    representative_sample,
    write_edge,
)
from shopfloor.families.visual_inspection.inference import decide, defect_scores

__all__ = [
    "TFLITE_INFO",
    "TfliteExport",
    "export_tflite",
    "image_target",
    "representative_sample",
    "tflite_predict",
    "write_tflite",
]

TFLITE_INFO = EDGE_INFO
TfliteExport = EdgeExport


def tflite_predict(content: bytes, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Class probabilities [n, classes] from a TFLite export (loaded for this call) for raw images."""
    return EdgeModel(content).predict(images, batch_size)["probabilities"]


def image_target(model: Any, images: ImageSet, threshold: float) -> EdgeTarget:
    """What the CNN exports: probabilities and defect score in the graph, decisions at ``threshold``."""
    ok = images.ok_index
    test = images.part("test")
    labels = test.labels

    def served(probabilities: Any) -> dict[str, Any]:
        return {"probabilities": probabilities, "defect_score": 1.0 - probabilities[:, ok]}

    def decided(outputs: dict[str, np.ndarray]) -> np.ndarray:
        return decide(outputs["probabilities"], ok, threshold)

    def measure(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, float]:
        probabilities = outputs["probabilities"]
        defect = labels != ok
        rejected = defect_scores(probabilities, ok) >= threshold
        return {
            "argmax_accuracy": float((probabilities.argmax(axis=1) == labels).mean()),
            "defect_recall": float(rejected[defect].mean()) if defect.any() else 0.0,
            "max_abs_probability_error": float(np.abs(probabilities - reference["probabilities"]).max()),
        }

    return EdgeTarget(
        kind="visual-inspection",
        model=model,
        input_name="image",
        served=served,
        decide=decided,
        test_inputs=test.images.astype(np.float32),
        calibration=images.part("train").images,
        labels=labels,
        int8="full",
        measure=measure,
        extra={"test_images": int(labels.size), "threshold": float(threshold)},
    )


def export_tflite(model: Any, images: ImageSet, threshold: float, config: EdgeConfig) -> EdgeExport:
    """Convert to float32 (and int8) TFLite and keep each only within tolerance of Keras on the test split."""
    if images.part("test").images.shape[0] == 0:
        raise ValueError("the test split holds no images; add images or raise split.test_fraction")
    return export_edge(image_target(model, images, threshold), config)


def write_tflite(export: EdgeExport, folder: str) -> None:
    """Write the published TFLite variants and their record, atomically as one folder."""
    write_edge(export, folder)
