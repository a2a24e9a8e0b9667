"""TFLite edge export: float32 matches Keras, int8 is ~4x smaller and within 3 accuracy points."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shopfloor.families.visual_inspection.config import TfliteConfig
from shopfloor.families.visual_inspection.model import predict_probabilities
from shopfloor.families.visual_inspection.tflite import (
    TFLITE_INFO,
    export_tflite,
    representative_sample,
    tflite_predict,
    write_tflite,
)


@pytest.fixture(scope="module")
def export(vision_trained):
    return export_tflite(vision_trained.result.model, vision_trained.images, vision_trained.threshold, TfliteConfig())


def test_representative_sample_is_seeded_and_bounded():
    images = np.arange(50)[:, None]
    first = representative_sample(images, 10, seed=3)
    assert len(first) == 10 and (first == representative_sample(images, 10, seed=3)).all()
    assert len(representative_sample(images, 100, seed=3)) == 50


def test_float32_agrees_with_keras(export):
    float32 = export.info["variants"]["float32"]
    assert float32["agreement"] == 1.0
    assert float32["max_abs_probability_error"] < 1e-4
    assert float32["accuracy"] == export.info["keras"]["accuracy"]


def test_int8_is_smaller_and_within_tolerance(export):
    variants = export.info["variants"]
    assert variants["int8"]["bytes"] < variants["float32"]["bytes"] / 2.5
    assert export.info["keras"]["accuracy"] - variants["int8"]["accuracy"] <= 0.03
    assert variants["int8"]["agreement"] >= 0.9
    assert export.info["within_tolerance"]


def test_int8_runs_on_raw_pixels(export, vision_trained):
    images = vision_trained.images.part("test").images[:5]
    probabilities = tflite_predict(export.models["int8"], images)
    assert probabilities.shape == (5, 5) and probabilities.dtype == np.float32
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=0.02)
    keras_top = predict_probabilities(vision_trained.result.model, images).argmax(axis=1)
    assert (probabilities.argmax(axis=1) == keras_top).mean() >= 0.8


def test_written_folder(export, vision_trained, tmp_path):
    write_tflite(export, str(tmp_path / "edge"))
    info = json.loads((tmp_path / "edge" / TFLITE_INFO).read_text())
    for variant in info["variants"].values():
        assert (tmp_path / "edge" / variant["file"]).stat().st_size == variant["bytes"]
    assert {"kind", "input", "outputs", "variants", "missing", "keras", "tolerance", "within_tolerance"} <= set(info)
    assert info["kind"] == "visual-inspection" and info["outputs"] == ["defect_score", "probabilities"]
    shape = [None, *vision_trained.images.part("test").images.shape[1:]]
    assert info["input"] == {"name": "image", "shape": shape, "dtype": "float32"}
