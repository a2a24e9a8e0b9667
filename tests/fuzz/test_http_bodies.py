"""Fuzzing the model server over HTTP: no request body gets a 500, and every refusal is one line of JSON.

The app is ``serving.server.build_app`` in this process (FastAPI's TestClient), around stand-in models: the real
window and image model classes with their Keras forward pass replaced by numpy, so the whole request path (body
limits, JSON parsing, kserve's V1/V2 routes and request models, our codecs, error handlers, the response encoders)
runs without TensorFlow or a trained model. Bodies are raw bytes, arbitrary JSON, and the near-valid bodies of the
codec fuzz tests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import example, given
from hypothesis import strategies as st

from shopfloor.serving.codec import WindowSpec
from shopfloor.serving.image_codec import ImageSpec
from shopfloor.serving.predictor import ImageModel, WindowModel
from shopfloor.serving.server import build_app
from tests.fuzz.strategies import json_like
from tests.fuzz.test_request_codecs import GRAY, SPEC, image_payloads, v1_windows, v2_bodies, v2_image_bodies


class StandInWindowModel(WindowModel):
    """A window model whose forward pass and explanation are numpy (no Keras)."""

    def load(self) -> bool:
        self.spec = WindowSpec(SPEC.window, SPEC.features, self.max_batch)
        self._infer = lambda windows: {
            "failure": np.full(len(windows), 0.25, np.float32),
            "rul": np.full(len(windows), 48.0, np.float32),
        }
        self.model_version = "v-fuzz"
        self.ready = True
        return True

    def explanation(self, windows: np.ndarray) -> dict:
        n = len(windows)
        return {
            "attributions": np.zeros(windows.shape),
            "feature_attributions": np.zeros((n, windows.shape[2])),
            "failure_probability": np.full(n, 0.25),
            "baseline_probability": np.full(n, 0.1),
        }


class StandInImageModel(ImageModel):
    """An image model whose classifier is numpy: every image is 'ok' with probability 0.8."""

    def load(self) -> bool:
        self.spec = ImageSpec(GRAY.width, GRAY.height, GRAY.mode, self.max_batch)
        self.classes, self.ok_index, self.threshold = ["ok", "dent"], 0, 0.5
        self._infer = lambda images: np.tile(np.array([[0.8, 0.2]], np.float32), (len(images), 1))
        self.model_version = "v-fuzz"
        self.ready = True
        return True


def client_for(model: WindowModel) -> TestClient:
    model.load()
    return TestClient(build_app(model, max_body_bytes=200_000), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def windows() -> TestClient:
    return client_for(StandInWindowModel("pm", "/nonexistent", max_batch=SPEC.max_batch))


@pytest.fixture(scope="module")
def images() -> TestClient:
    return client_for(StandInImageModel("vi", "/nonexistent", max_batch=GRAY.max_batch))


WINDOW_ROUTES = ["/v1/models/pm:predict", "/v1/models/pm:explain", "/v2/models/pm/infer", "/v2/models/pm/explain"]
IMAGE_ROUTES = ["/v1/models/vi:predict", "/v2/models/vi/infer"]


def check_answer(client: TestClient, route: str, body: bytes) -> None:
    """Posting ``body`` gets a 2xx, or a 4xx whose JSON names the problem in one line; never a 5xx."""
    response = client.post(route, content=body, headers={"content-type": "application/json"})
    assert response.status_code < 500, (route, response.status_code, response.text[:500])
    if response.status_code >= 400:
        # FastAPI's own 400 for a body it cannot even decode as text (five NUL bytes) is {"detail": ...}
        answer = response.json()
        error = answer["error"] if "error" in answer else answer["detail"]
        assert isinstance(error, str) and error.strip() and "\n" not in error, error


def as_json(value: object) -> bytes:
    """A body as a client would send it (Python's json writes NaN and Infinity, which JSON does not have)."""
    return json.dumps(value).encode()


@given(route=st.sampled_from(WINDOW_ROUTES), body=st.one_of(st.binary(max_size=64), json_like().map(as_json)))
@example(route="/v2/models/pm/infer", body=b'{"inputs": [{"name": "w", "shape": [1, 4, 3], "datatype": "FP32", '
         b'"data": [' + b",".join([b"1" + b"0" * 400] * 12) + b"]}]}")  # fmt: skip  # was a 500 (OverflowError)
@example(route="/v2/models/pm/explain", body=b'{"inputs": [{"name": "w", "shape": [1, 4, 3], "datatype": "FP64", '
         b'"data": [' + b",".join([b"-1" + b"0" * 400] * 12) + b"]}]}")  # fmt: skip
def test_window_routes_answer_any_body_without_a_500(windows: TestClient, route: str, body: bytes) -> None:
    check_answer(windows, route, body)


@given(
    route=st.sampled_from(WINDOW_ROUTES),
    body=st.one_of(
        v1_windows().map(lambda case: {"instances": case[0]}),
        v2_bodies().map(lambda case: case[0]),
    ),
)
def test_window_routes_answer_near_valid_bodies_without_a_500(windows: TestClient, route: str, body: dict) -> None:
    check_answer(windows, route, as_json(body))


@given(
    route=st.sampled_from(IMAGE_ROUTES),
    body=st.one_of(
        st.lists(image_payloads(), max_size=3).map(lambda instances: {"instances": instances}),
        v2_image_bodies(),
        json_like(),
    ),
)
@example(route="/v2/models/vi/infer", body={"inputs": [{"name": "i", "shape": [1], "datatype": "BYTES", "data": [7]}]})
def test_image_routes_answer_any_body_without_a_500(images: TestClient, route: str, body: object) -> None:
    check_answer(images, route, as_json(body))


def test_stand_ins_answer_valid_requests(windows: TestClient, images: TestClient) -> None:
    window = [[1.0] * len(SPEC.features)] * SPEC.window
    assert windows.post("/v1/models/pm:predict", json={"instances": [window]}).status_code == 200
    assert windows.post("/v1/models/pm:explain", json={"instances": [window]}).status_code == 200
    tensor = {"name": "window", "shape": [1, SPEC.window, len(SPEC.features)], "datatype": "FP32"}
    v2 = {"inputs": [{**tensor, "data": [0.5] * (SPEC.window * len(SPEC.features))}]}
    assert windows.post("/v2/models/pm/infer", json=v2).status_code == 200
    assert windows.post("/v2/models/pm/explain", json=v2).status_code == 200
    pixels = [[0] * GRAY.width] * GRAY.height
    assert images.post("/v1/models/vi:predict", json={"instances": [pixels]}).status_code == 200
