"""The anomaly detector served like the other models: score and alarm per window, sensors ranked by error."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from shopfloor.serving.predictor import AnomalyWindowModel
from shopfloor.serving.server import build_app, load_window_model
from tests.serving.test_server import as_json, v2_body

NAME = "ad"


@pytest.fixture(scope="module")
def served(published_detector):
    return load_window_model(str(published_detector), NAME, max_batch=64)


@pytest.fixture(scope="module")
def client(served) -> TestClient:
    return TestClient(build_app(served, max_body_bytes=2_000_000))


@pytest.fixture(scope="module")
def windows(anomaly_windows) -> np.ndarray:
    """Two abnormal and two normal held-out windows, one reading missing."""
    test = anomaly_windows.part("test")
    batch = np.concatenate([test.x[test.failure == 1][-2:], test.x[test.failure == 0][:2]]).copy()
    batch[3, 5, 2] = np.nan
    return batch


def test_the_detector_is_served_by_its_own_class(served, client: TestClient) -> None:
    assert isinstance(served, AnomalyWindowModel)
    metadata = client.get(f"/v2/models/{NAME}").json()
    assert [o["name"] for o in metadata["outputs"]] == ["anomaly_score", "anomalous"]
    assert served.threshold == served.info["threshold"]["value"]


def test_v1_and_v2_answer_score_and_alarm(client: TestClient, served, windows) -> None:
    v1 = client.post(f"/v1/models/{NAME}:predict", json={"instances": as_json(windows)})
    assert v1.status_code == 200, v1.text
    predictions = v1.json()["predictions"]
    scores = np.array([p["anomaly_score"] for p in predictions])
    assert [p["anomalous"] for p in predictions] == (scores >= served.threshold).tolist()
    assert scores[:2].min() > scores[2:].max(), "the windows before a failure score higher than quiet ones"
    assert np.isfinite(scores).all()
    v2 = client.post(f"/v2/models/{NAME}/infer", json=v2_body(windows))
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["anomaly_score"]["datatype"] == "FP32" and outputs["anomalous"]["datatype"] == "BOOL"
    assert outputs["anomaly_score"]["data"] == pytest.approx(scores, rel=1e-5)


def test_explanations_rank_sensors_by_reconstruction_error(client: TestClient, served, windows) -> None:
    v1 = client.post(f"/v1/models/{NAME}:explain", json={"instances": as_json(windows[:2])})
    assert v1.status_code == 200, v1.text
    body = v1.json()
    assert body["method"] == "reconstruction-error" and body["features"] == served.spec.features
    first = body["explanations"][0]
    errors = first["feature_errors"]
    assert first["top_features"][0] == max(errors, key=errors.get)
    assert min(errors.values()) >= 0
    predicted = client.post(f"/v1/models/{NAME}:predict", json={"instances": as_json(windows[:1])}).json()
    assert first["anomaly_score"] == pytest.approx(predicted["predictions"][0]["anomaly_score"], rel=1e-5)
    v2 = client.post(f"/v2/models/{NAME}/explain", json=v2_body(windows[:2]))
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["feature_errors"]["shape"] == [2, len(served.spec.features)]


def test_bad_requests_are_4xx_with_a_message(client: TestClient) -> None:
    response = client.post(f"/v1/models/{NAME}:predict", json={"instances": [[[1.0] * 7] * 20]})
    assert response.status_code == 400 and "expected 24 rows of 7 readings" in response.json()["error"]
    response = client.post(f"/v1/models/{NAME}:predict", json={"instances": [[[1.0] * 7] * 24] * 65})
    assert response.status_code == 413
