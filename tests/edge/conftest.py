"""Fixtures of the edge tests: model stores holding real trained models with their edge exports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from shopfloor.contracts.model_artifact import load_keras_model
from shopfloor.contracts.model_store import ModelStore
from shopfloor.families.edge_export import EdgeConfig
from tests.edge.edge_process import make_edge_venv, publish


@pytest.fixture(scope="session")
def edge_ad_store(tmp_path_factory: pytest.TempPathFactory, published_detector: Path, anomaly_windows) -> Path:
    """A model store with the trained anomaly detector (``ad``, version ``v-ad01``) and its edge export."""
    from shopfloor.families.anomaly_detection.edge import export_detector

    store = tmp_path_factory.mktemp("edge-ad-store")
    ad = load_keras_model(published_detector / "model")
    threshold = json.loads((published_detector / "model" / "shopfloor_model.json").read_text())["threshold"]["value"]
    publish(store, "ad", "v-ad01", published_detector, export_detector(ad, anomaly_windows, threshold, EdgeConfig()))
    return store


@pytest.fixture(scope="session")
def edge_pm_store(tmp_path_factory: pytest.TempPathFactory, published_model: Path, trained_windows) -> Path:
    """A model store with the trained failure predictor (``pm``, version ``v-pm01``) and its edge export."""
    from shopfloor.families.predictive_maintenance.edge import export_window_model

    store = tmp_path_factory.mktemp("edge-pm-store")
    pm = load_keras_model(published_model / "model")
    publish(store, "pm", "v-pm01", published_model, export_window_model(pm, trained_windows, 0.3, EdgeConfig()))
    return store


@pytest.fixture(scope="session")
def edge_store(
    tmp_path_factory: pytest.TempPathFactory, edge_ad_store: Path, edge_pm_store: Path, vision_trained
) -> Path:
    """A model store with one published version of each kind (``pm``, ``ad``, ``vi``), each with its edge export."""
    from shopfloor.families.visual_inspection.tflite import export_tflite

    store = tmp_path_factory.mktemp("edge-store")
    for name, source in (("ad", edge_ad_store), ("pm", edge_pm_store)):
        shutil.copytree(source / name, store / name)
        ModelStore(str(store)).set_latest(name, f"v-{name}01")
    vi = export_tflite(vision_trained.result.model, vision_trained.images, vision_trained.threshold, EdgeConfig())
    publish(store, "vi", "v-vi01", vision_trained.model_dir, vi)
    return store


@pytest.fixture(scope="session")
def edge_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A virtual environment with the edge extra only (no TensorFlow), built once per session (pip: ~30 s)."""
    return make_edge_venv(tmp_path_factory.mktemp("edge-venv"))
