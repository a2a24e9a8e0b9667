"""The shared TFLite export: every model the search spaces can build converts, and a variant is right or absent."""

from __future__ import annotations

import numpy as np
import pytest

from shopfloor.contracts.edge import EdgeModel
from shopfloor.families import edge_export
from shopfloor.families.edge_export import EdgeConfig, EdgeTarget, export_edge

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (24, 12, 12, 1)).astype(np.float32)
LABELS = RNG.integers(0, 3, 24)

# the corners of the CNN's search space: no augmentation at all, no contrast, no rotation, each pooling, a dense head
CNN_CORNERS = [
    {"flip": False, "rotation": 0.0, "contrast": 0.0, "local_contrast": 0, "dropout": 0.0, "pooling": "average"},
    {"flip": False, "rotation": 0.0, "contrast": 0.0, "local_contrast": 3, "dropout": 0.2, "pooling": "max"},
    {"flip": False, "rotation": 0.05, "contrast": 0.0, "pooling": "average", "dense_units": 64},
    {"flip": False, "rotation": 0.0, "contrast": 0.4, "pooling": "max", "convs_per_block": 2},
    {"flip": True, "rotation": 0.5, "contrast": 0.1, "pooling": "average", "translation": 0.1, "brightness": 0.1},
]


def _image_target(corner: dict) -> EdgeTarget:
    """A CNN of this corner, fitted one epoch on noise, exported with its probabilities and defect score."""
    from shopfloor.families.visual_inspection.config import CnnConfig
    from shopfloor.families.visual_inspection.model import build_cnn

    model = build_cnn((12, 12), 1, 3, CnnConfig(filters=[8, 16], **{"convs_per_block": 1, **corner}))
    model.fit(IMAGES, LABELS, epochs=1, batch_size=8, verbose=0)
    return EdgeTarget(
        kind="visual-inspection",
        model=model,
        input_name="image",
        served=lambda p: {"probabilities": p, "defect_score": 1.0 - p[:, 0]},
        decide=lambda o: o["probabilities"].argmax(axis=1),
        test_inputs=IMAGES,
        calibration=IMAGES,
        labels=LABELS,
    )


@pytest.mark.parametrize("corner", CNN_CORNERS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_every_corner_of_the_cnn_space_exports_float32_and_int8(corner: dict) -> None:
    export = export_edge(_image_target(corner), EdgeConfig(max_accuracy_drop=1.0))
    assert export.info["missing"] == {}, export.info["missing"]
    for variant, content in export.models.items():
        outputs = EdgeModel(content).predict(IMAGES[:5])
        assert np.isfinite(outputs["probabilities"]).all(), variant
        assert np.allclose(outputs["probabilities"].sum(axis=1), 1.0, atol=0.03)
        assert np.allclose(outputs["defect_score"], 1.0 - outputs["probabilities"][:, 0], atol=0.01)
    assert export.info["variants"]["float32"]["max_abs_error"] < 1e-4


def test_window_models_export_their_served_outputs_and_keep_missing_readings(anomaly_windows, trained_windows) -> None:
    """Both window families: the served outputs in the graph; NaN (a missing reading) handled as Keras does."""
    from shopfloor.families.anomaly_detection.config import AutoencoderConfig
    from shopfloor.families.anomaly_detection.edge import export_detector
    from shopfloor.families.anomaly_detection.model import train_autoencoder
    from shopfloor.families.predictive_maintenance.config import ModelConfig
    from shopfloor.families.predictive_maintenance.edge import export_window_model
    from shopfloor.families.predictive_maintenance.model import train_model

    detector = train_autoencoder(anomaly_windows, AutoencoderConfig(epochs=1, conv_filters=8, latent_units=4)).model
    pm = train_model(trained_windows, ModelConfig(epochs=1, hidden_units=[8], conv_filters=8)).model
    windows = anomaly_windows.part("test").x[:6].copy()
    windows[0, 3, 1] = np.nan
    windows[1, :, 2] = np.nan
    for export, names in (
        (export_detector(detector, anomaly_windows, 1.0, EdgeConfig()), ["anomaly_score", "feature_errors"]),
        (export_window_model(pm, trained_windows, 0.5, EdgeConfig()), ["failure_probability", "rul_hours"]),
    ):
        assert export.info["outputs"] == names and export.info["input"]["name"] == "window"
        assert "float32" in export.info["variants"], export.info["missing"]
        outputs = EdgeModel(export.models["float32"]).predict(windows)
        assert all(np.isfinite(outputs[name]).all() for name in names)
        assert outputs[names[0]].shape == (6,)
        if "int8" in export.info["variants"]:
            assert export.info["variants"]["int8"]["quantization"].startswith("int8 weights, float32 activations")


def test_a_failed_conversion_is_an_absent_variant_with_one_line(monkeypatch, caplog) -> None:
    caplog.set_level("INFO")
    target = _image_target(CNN_CORNERS[0])
    real = edge_export.convert

    def broken(target, quantization, calibration):
        if quantization == "full":
            raise RuntimeError("tensorflow/lite/kernels/read_variable.cc:67 variable != nullptr was not true.")
        return real(target, quantization, calibration)

    monkeypatch.setattr(edge_export, "convert", broken)
    export = export_edge(target, EdgeConfig())
    assert set(export.models) == {"float32"} and "int8" not in export.info["variants"]
    assert export.info["missing"]["int8"].startswith("conversion failed: RuntimeError: tensorflow/lite")
    assert not export.info["within_tolerance"]
    assert "no edge export: int8: conversion failed: RuntimeError" in caplog.text


def test_outside_tolerance_names_the_output_and_the_bound() -> None:
    reference = {"score": np.array([1.0, 2.0], np.float32)}
    config = EdgeConfig()
    nan = {"score": np.array([np.nan, 2.0], np.float32)}
    record = {"agreement": 1.0}
    assert "non-finite" in edge_export._problem("float32", nan, reference, record, record, config)
    off = {"score": np.array([1.1, 2.0], np.float32)}
    assert edge_export._problem("float32", off, reference, record, record, config).startswith(
        "output score: max abs error 0.1"
    )
    assert edge_export._problem("float32", reference, reference, record, record, config) is None
    worse = {"agreement": 0.9, "accuracy": 0.8}
    assert "more than max_accuracy_drop" in edge_export._problem(
        "int8", reference, reference, worse, {"accuracy": 0.9}, config
    )
