"""Shared fixtures: demo data sets, a small trained model in the published layout, and a real S3 server (moto)."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from shopfloor.components.ingest.ingest import ingest
from shopfloor.contracts.model_artifact import write_model
from shopfloor.demo.plant import PlantDataSpec, write_plant_data
from shopfloor.families.predictive_maintenance.config import LabelingConfig, ModelConfig, PredictiveMaintenanceConfig
from shopfloor.families.predictive_maintenance.evaluation import classification_metrics
from shopfloor.families.predictive_maintenance.labelling import label_windows
from shopfloor.families.predictive_maintenance.model import train_model

S3_ACCESS_KEY = "shopfloor-test-access"
S3_SECRET_KEY = "shopfloor-test-secret-do-not-log"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default predictive-maintenance demo data set (what `shopfloor run` generates)."""
    folder = tmp_path_factory.mktemp("demo-data")
    write_plant_data(folder)
    return folder


@pytest.fixture(scope="session")
def small_demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small plant (2 sites x 3 assets, 40 days) for fast tests of the steps."""
    folder = tmp_path_factory.mktemp("small-demo-data")
    write_plant_data(folder, PlantDataSpec(sites=2, assets_per_site=3, days=40))
    return folder


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """A moto S3 server in this process, speaking the real S3 HTTP protocol on a free localhost port."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket, with the S3 environment variables set as a Kubernetes Secret would set them."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    from shopfloor.common.storage import S3Settings

    name = f"bucket-{os.urandom(4).hex()}"
    S3Settings.from_env().client().make_bucket(bucket_name=name)
    return name


@pytest.fixture
def frozen_store(monkeypatch: pytest.MonkeyPatch):
    """An S3 endpoint that accepts connections and never answers: a hung MinIO, or a firewall that eats replies."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "frozen")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "frozen-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    yield listener
    listener.close()


@pytest.fixture(scope="session")
def small_ingested(small_demo_data: Path):
    """The small plant, ingested (tables, features, profile)."""
    config = PredictiveMaintenanceConfig().resolve_data(small_demo_data)
    return ingest(config.data.sensors, config.data.events, config.data)


@pytest.fixture(scope="session")
def trained_windows(small_ingested):
    result = small_ingested
    return label_windows(
        result.sensors, result.events, result.features, ["failure"], LabelingConfig(test_fraction=0.34)
    )


@pytest.fixture(scope="session")
def published_model(tmp_path_factory: pytest.TempPathFactory, trained_windows, small_ingested) -> Path:
    """``<store>/pm/v-test/`` as publish writes it: model/, blessing.json (decision threshold 0.3, reference
    scores), profile.json and a model card."""
    trained = train_model(trained_windows, ModelConfig(epochs=2, hidden_units=[16], conv_filters=8))
    version = tmp_path_factory.mktemp("store") / "pm" / "v-test0000001"
    write_model(trained, str(version / "model"))
    scores = trained.model.predict(trained_windows.part("test").x, verbose=0)["failure"].ravel()
    blessing = {
        "blessed": True,
        "model_version": "v-test0000001",
        "gate": {"decision_threshold": 0.3},
        "metrics": classification_metrics(trained_windows.part("test").failure, scores, 0.3),
        "reference_scores": [round(float(v), 6) for v in scores],
    }
    (version / "profile.json").write_text(json.dumps(small_ingested.profile))
    (version / "blessing.json").write_text(json.dumps(blessing))
    (version / "MODEL_CARD.md").write_text("# card\n")
    return version


@pytest.fixture(scope="session")
def anomaly_windows(small_ingested):
    """The small plant as windows marked normal/abnormal (12 h before a failure), split in time order."""
    from shopfloor.families.anomaly_detection.config import AnomalyLabelingConfig
    from shopfloor.families.anomaly_detection.labelling import label_anomaly_windows

    result = small_ingested
    return label_anomaly_windows(result.sensors, result.events, result.features, ["failure"], AnomalyLabelingConfig())


@pytest.fixture(scope="session")
def published_detector(tmp_path_factory: pytest.TempPathFactory, anomaly_windows, small_ingested) -> Path:
    """``<store>/ad/v-test/`` as publish writes it for an autoencoder: model/ (with its threshold), blessing.json
    (reference scores), profile.json and a model card."""
    from shopfloor.families.anomaly_detection.config import AutoencoderConfig
    from shopfloor.families.anomaly_detection.evaluation import anomaly_metrics
    from shopfloor.families.anomaly_detection.model import anomaly_scores, train_autoencoder

    trained = train_autoencoder(anomaly_windows, AutoencoderConfig(epochs=8))
    version = tmp_path_factory.mktemp("store") / "ad" / "v-test0000002"
    write_model(trained, str(version / "model"))
    scores = anomaly_scores(trained.model, anomaly_windows.part("test").x)
    threshold = trained.info["threshold"]["value"]
    blessing = {
        "blessed": True,
        "model_version": "v-test0000002",
        "gate": {"decision_threshold": threshold},
        "metrics": anomaly_metrics(anomaly_windows.part("test").failure, scores, threshold),
        "reference_scores": [round(float(v), 6) for v in scores],
    }
    (version / "profile.json").write_text(json.dumps(small_ingested.profile))
    (version / "blessing.json").write_text(json.dumps(blessing))
    (version / "MODEL_CARD.md").write_text("# card\n")
    return version


@pytest.fixture
def model_copy(published_model: Path, tmp_path: Path) -> Path:
    """A private copy of the published model, for tests that change or break it."""
    target = tmp_path / published_model.name
    shutil.copytree(published_model, target)
    return target


class VisionTrained:
    """A small visual-inspection model trained once per session, with its data and written model folder."""

    def __init__(self, root: Path, images, result, model_dir: Path):
        self.root, self.images, self.result, self.model_dir = root, images, result, model_dir

    @property
    def threshold(self) -> float:
        return float(self.result.info["threshold"]["value"])


VISION_TEST_SPEC = {"count": 400, "defect_share": 0.5, "defect_weights": (0.0, 1.0, 0.0, 0.0)}


@pytest.fixture(scope="session")
def vision_trained(tmp_path_factory: pytest.TempPathFactory) -> VisionTrained:
    """400 part images, half with a dent in a known box (defects.csv), ingested, split and trained on (~25 s)."""
    from shopfloor.common.vision_config import ImageDataConfig, ImageSplitConfig
    from shopfloor.components.ingest.images import ingest_images
    from shopfloor.contracts.images import load_image_set
    from shopfloor.demo.parts import PartsDataSpec, write_parts_data
    from shopfloor.families.visual_inspection.config import CnnConfig
    from shopfloor.families.visual_inspection.model import train_vision_model

    root = tmp_path_factory.mktemp("vision") / "data"
    write_parts_data(root, PartsDataSpec(**VISION_TEST_SPEC))
    config = ImageDataConfig()
    images = load_image_set(ingest_images(str(root), config).manifest, config, ImageSplitConfig(), root=str(root))
    result = train_vision_model(images, CnnConfig(epochs=25), target_defect_recall=0.95)
    model_dir = tmp_path_factory.mktemp("vision-model") / "model"
    write_model(result, str(model_dir))
    return VisionTrained(root=root, images=images, result=result, model_dir=model_dir)
