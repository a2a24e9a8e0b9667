"""The inspection CNN served: a real PNG from the plant's folder in, class and defect decision out, Grad-CAM back."""

from __future__ import annotations

import base64
import io
import json
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from shopfloor.serving.predictor import ImageModel
from shopfloor.serving.server import build_app, load_window_model

NAME = "vi"


@pytest.fixture(scope="module")
def served(vision_trained):
    return load_window_model(str(vision_trained.model_dir), NAME, max_batch=8)


@pytest.fixture(scope="module")
def client(served) -> TestClient:
    return TestClient(build_app(served, max_body_bytes=2_000_000))


@pytest.fixture(scope="module")
def files(vision_trained) -> dict[str, bytes]:
    """One dented and one good test image, as the PNG files the plant delivered."""
    test = vision_trained.images.part("test")
    picks = {}
    for label in ("dent", "ok"):
        index = int(np.flatnonzero(test.labels == test.classes.index(label))[0])
        picks[label] = (vision_trained.root / test.paths[index]).read_bytes()
    return picks


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_metadata_names_the_image_input_and_outputs(served, client: TestClient) -> None:
    assert isinstance(served, ImageModel)
    metadata = client.get(f"/v2/models/{NAME}").json()
    assert metadata["inputs"][0]["datatype"] == "BYTES"
    assert [o["name"] for o in metadata["outputs"]] == ["label", "defective", "defect_score", "probabilities"]


def test_v1_and_v2_answer_for_real_image_files(client: TestClient, served, files) -> None:
    body = {"instances": [{"image_bytes": {"b64": b64(files["dent"])}}, {"image_bytes": {"b64": b64(files["ok"])}}]}
    v1 = client.post(f"/v1/models/{NAME}:predict", json=body)
    assert v1.status_code == 200, v1.text
    dent, good = v1.json()["predictions"]
    assert dent["defect_score"] > good["defect_score"]
    assert dent["defective"] is True and dent["label"] == "dent"
    assert len(dent["probabilities"]) == len(served.classes) and sum(dent["probabilities"]) == pytest.approx(1, 1e-4)
    v2 = client.post(
        f"/v2/models/{NAME}/infer",
        json={
            "inputs": [
                {"name": "image", "datatype": "BYTES", "shape": [2], "data": [b64(files["dent"]), b64(files["ok"])]}
            ]
        },
    )
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["label"]["data"][0] == "dent" and outputs["probabilities"]["shape"] == [2, len(served.classes)]
    assert outputs["defect_score"]["data"][0] == pytest.approx(dent["defect_score"], rel=1e-4)


def test_explanation_is_a_heatmap_and_a_viewable_overlay(client: TestClient, served, files) -> None:
    response = client.post(f"/v1/models/{NAME}:explain", json={"instances": [b64(files["dent"])]})
    assert response.status_code == 200, response.text
    (found,) = response.json()["explanations"]
    heatmap = np.array(found["heatmap"])
    assert heatmap.shape == (served.spec.height, served.spec.width) and 0 <= heatmap.min() and heatmap.max() <= 1
    with Image.open(io.BytesIO(base64.b64decode(found["overlay_png"]))) as image:
        assert image.size == (served.spec.width, served.spec.height) and image.mode == "RGB"


def test_bad_images_are_400_and_413(client: TestClient, files) -> None:
    small = io.BytesIO()
    Image.open(io.BytesIO(files["ok"])).resize((32, 32)).save(small, format="PNG")
    response = client.post(f"/v1/models/{NAME}:predict", json={"instances": [b64(small.getvalue())]})
    assert response.status_code == 400 and "32x32 pixels, expected 64x64" in response.json()["error"]
    response = client.post(f"/v1/models/{NAME}:predict", json={"instances": [b64(files["ok"][:100])]})
    assert response.status_code == 400 and "truncated" in response.json()["error"]
    response = client.post(f"/v1/models/{NAME}:predict", json={"instances": [b64(files["ok"])] * 9})
    assert response.status_code == 413


def test_feedback_on_an_explanation_is_stored_and_refused_when_wrong(served, files, tmp_path) -> None:
    import hashlib

    from shopfloor.contracts.feedback import read_feedback
    from shopfloor.serving.auth import Authorizer, Identity

    served.feedback_uri = str(tmp_path / "store")
    token = "olga-station-7"
    olga = Authorizer(((hashlib.sha256(token.encode()).hexdigest(), Identity("olga", "operator")),))
    client = TestClient(build_app(served, max_body_bytes=2_000_000, authorizer=olga))
    headers = {"authorization": f"Bearer {token}"}
    body = {
        "image_bytes": {"b64": b64(files["dent"])},
        "verdict": "wrong-label",
        "corrected_label": "scratch",
        "note": "it is a scratch along the turning marks",
    }
    response = client.post(f"/v1/models/{NAME}/feedback", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"id", "image_sha256", "operator"}, "no store path in the answer"
    (stored,) = read_feedback(str(tmp_path / "store"), NAME)
    assert stored.id == response.json()["id"] and stored.corrected_label == "scratch" and stored.operator == "olga"
    assert stored.image_sha256 == hashlib.sha256(files["dent"]).hexdigest(), "the same hash ingest gives the file"
    bad = client.post(f"/v1/models/{NAME}/feedback", json={**body, "corrected_label": "smudge"}, headers=headers)
    assert bad.status_code == 400 and "corrected_label: unknown class 'smudge'" in bad.json()["error"]
    bad = client.post(f"/v1/models/{NAME}/feedback", json={**body, "verdict": "meh"}, headers=headers)
    assert bad.status_code == 400 and "verdict" in bad.json()["error"]
    assert len(read_feedback(str(tmp_path / "store"), NAME)) == 1, "refused feedback writes nothing"


@pytest.fixture(scope="module")
def edge_model_dir(vision_trained, served, tmp_path_factory) -> Path:
    """The trained model folder with its TFLite exports in edge/, as train-inspector writes it."""
    from shopfloor.families.visual_inspection.config import TfliteConfig
    from shopfloor.families.visual_inspection.tflite import export_tflite, write_tflite

    folder = tmp_path_factory.mktemp("edge") / "model"
    shutil.copytree(vision_trained.model_dir, folder)
    exported = export_tflite(served.keras_model, vision_trained.images, served.threshold, TfliteConfig())
    write_tflite(exported, str(folder / "edge"))
    return folder


def test_the_server_can_answer_with_the_int8_edge_model(edge_model_dir, served, files) -> None:
    edge = load_window_model(str(edge_model_dir), NAME, runtime="tflite-int8")
    body = {"instances": [b64(files["dent"]), b64(files["ok"])]}
    keras_answer = served.predict_now(body)["predictions"]
    edge_answer = edge.predict_now(body)["predictions"]
    assert [p["label"] for p in edge_answer] == [p["label"] for p in keras_answer]
    for mine, theirs in zip(edge_answer, keras_answer, strict=True):
        assert mine["defect_score"] == pytest.approx(theirs["defect_score"], abs=0.1)


def test_a_runtime_the_model_lacks_is_refused_naming_it(vision_trained, published_model) -> None:
    from shopfloor.common.errors import ShopfloorError

    with pytest.raises(ShopfloorError, match=r"edge/model_int8\.tflite: runtime: missing \(expected the tflite-int8"):
        load_window_model(str(vision_trained.model_dir), NAME, runtime="tflite-int8")
    with pytest.raises(ShopfloorError, match="runtime: tflite-float32: only image models have TFLite exports"):
        load_window_model(str(published_model), "pm", runtime="tflite-float32")


@pytest.mark.slow  # starts a server process: runs with the whole suite
def test_deployed_locally_with_the_edge_runtime_predict_is_tflite_and_explain_still_grad_cam(
    edge_model_dir, served, files, tmp_path
) -> None:
    """What `deployment.runtime: tflite-int8` does on one machine: the server's own line says what answers."""
    from shopfloor.components.deploy.local_target import LocalServerTarget, stop_server
    from shopfloor.components.deploy.target import DeploymentRequest

    state = tmp_path / "state"
    request = DeploymentRequest(NAME, str(edge_model_dir), "v-edge0000001", runtime="tflite-int8", ready_timeout_s=120)
    endpoint = LocalServerTarget(state).deploy(request)
    try:
        body = json.dumps({"instances": [b64(files["dent"]), b64(files["ok"])]}).encode()
        answers = {}
        for kind, url in (("predict", endpoint.v1_predict_url), ("explain", endpoint.v1_explain_url)):
            post = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
            with urllib.request.urlopen(post, timeout=60) as response:
                answers[kind] = json.loads(response.read())
    finally:
        stop_server(state, NAME)
    keras_labels = [
        p["label"] for p in served.predict_now({"instances": [b64(files["dent"]), b64(files["ok"])]})["predictions"]
    ]
    assert [p["label"] for p in answers["predict"]["predictions"]] == keras_labels
    assert len(answers["explain"]["explanations"][0]["heatmap"]) == 64
    log = "".join(path.read_text() for path in state.glob(f"{NAME}-*.log"))
    assert "as predictor, predict by tflite-int8, on http://127.0.0.1:" in log
