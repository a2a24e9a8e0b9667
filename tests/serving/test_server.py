"""The model server through FastAPI's TestClient: both protocols, explanations, and every bad input."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from shopfloor.demo.plant import SENSOR_COLUMNS
from shopfloor.serving.server import build_app, load_window_model

NAME = "pm"


@pytest.fixture(scope="module")
def served(published_model, tmp_path_factory):
    model = load_window_model(str(published_model), NAME, max_batch=64)
    model.explain_steps = 64
    return model


@pytest.fixture(scope="module")
def client(served) -> TestClient:
    return TestClient(build_app(served, max_body_bytes=2_000_000))


@pytest.fixture(scope="module")
def windows(trained_windows) -> np.ndarray:
    test = trained_windows.part("test")
    batch = test.x[:4].copy()
    batch[1, 5, 2] = np.nan
    return batch


def as_json(values: np.ndarray) -> list:
    return [as_json(v) for v in values] if np.ndim(values) else (None if np.isnan(values) else float(values))


def v2_body(batch: np.ndarray) -> dict:
    return {
        "inputs": [
            {"name": "window", "datatype": "FP32", "shape": list(batch.shape), "data": as_json(batch.reshape(-1))}
        ]
    }


def test_metadata_ready_and_live(client: TestClient, served) -> None:
    assert client.get("/").status_code == 200
    assert client.get(f"/v1/models/{NAME}").json() == {"name": NAME, "ready": True}
    assert client.get(f"/v2/models/{NAME}/ready").status_code == 200
    metadata = client.get(f"/v2/models/{NAME}").json()
    assert metadata["inputs"] == [{"name": "window", "datatype": "FP32", "shape": [-1, 24, 7]}]
    assert [o["name"] for o in metadata["outputs"]] == ["failure_probability", "fails_within_horizon", "rul_hours"]
    assert served.model_version == "v-test0000001"


def test_v1_rows_and_feature_objects_agree_with_the_model(client: TestClient, served, windows) -> None:
    rows = client.post(f"/v1/models/{NAME}:predict", json={"instances": as_json(windows)})
    assert rows.status_code == 200
    objects = [{f: as_json(w[:, i]) for i, f in enumerate(served.spec.features)} for w in windows]
    by_feature = client.post(f"/v1/models/{NAME}:predict", json={"instances": objects})
    assert rows.json() == by_feature.json()
    expected = served.keras_model.predict(windows, verbose=0)
    predictions = rows.json()["predictions"]
    np.testing.assert_allclose([p["failure_probability"] for p in predictions], expected["failure"].ravel(), atol=1e-5)
    assert [p["fails_within_horizon"] for p in predictions] == (expected["failure"].ravel() >= 0.3).tolist()
    assert all(np.isfinite(p["rul_hours"]) for p in predictions), "a missing reading must not poison the output"


def test_v2_infer_matches_v1(client: TestClient, windows) -> None:
    v1 = client.post(f"/v1/models/{NAME}:predict", json={"instances": as_json(windows)}).json()["predictions"]
    response = client.post(f"/v2/models/{NAME}/infer", json={**v2_body(windows), "id": "req-7"})
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "req-7" and body["model_version"] == "v-test0000001"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["failure_probability"]["shape"] == [4] and outputs["fails_within_horizon"]["datatype"] == "BOOL"
    np.testing.assert_allclose(
        outputs["failure_probability"]["data"], [p["failure_probability"] for p in v1], atol=1e-5
    )


def test_v1_explanation_is_complete(client: TestClient, served, windows) -> None:
    response = client.post(f"/v1/models/{NAME}:explain", json={"instances": as_json(windows)})
    assert response.status_code == 200
    body = response.json()
    assert body["method"] == "integrated-gradients" and body["features"] == served.spec.features
    for explanation in body["explanations"]:
        attributions = np.array(explanation["attributions"])
        assert attributions.shape == (24, 7)
        gap = explanation["failure_probability"] - explanation["baseline_probability"]
        assert attributions.sum() == pytest.approx(gap, abs=0.02 + 0.05 * abs(gap))
        assert sum(explanation["feature_attributions"].values()) == pytest.approx(attributions.sum(), abs=1e-4)
        ranked = sorted(explanation["feature_attributions"], key=lambda f: -abs(explanation["feature_attributions"][f]))
        assert explanation["top_features"] == ranked[:3]
    assert np.array(body["explanations"][1]["attributions"])[5, 2] == 0.0, "a missing reading gets no attribution"


def test_v2_explain_route(client: TestClient, windows) -> None:
    response = client.post(f"/v2/models/{NAME}/explain", json=v2_body(windows[:2]))
    assert response.status_code == 200
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["attributions"]["shape"] == [2, 24, 7]
    assert outputs["feature_attributions"]["shape"] == [2, 7]
    assert response.json()["parameters"]["method"] == "integrated-gradients"


WINDOW = [[1.0] * 7] * 24
FEATURES = list(SENSOR_COLUMNS)  # the demo plant's sensors, in the order the model reads them
BAD_V1 = {
    "missing field": ({"inputs": []}, 400, 'missing field "instances"'),
    "instances not a list": ({"instances": {"a": 1}}, 400, "expected a list of windows"),
    "empty batch": ({"instances": []}, 400, "expected at least one window"),
    "short window": ({"instances": [WINDOW[:20]]}, 400, "instances[0]: 20 rows, expected 24 rows of 7 readings"),
    "short row": ({"instances": [[*WINDOW[:23], [1.0] * 6]]}, 400, "instances[0][23]: expected 7 readings"),
    "text reading": ({"instances": [[["x"] * 7] * 24]}, 400, "instances[0][0][0]: 'x' is not a number"),
    "bool reading": ({"instances": [[[True] * 7] * 24]}, 400, "is not a number"),
    "beyond float32": (
        {"instances": [[*WINDOW[:5], [1.0, 1e39, 1.0, 1.0, 1.0, 1.0, 1.0], *WINDOW[6:]]]},
        400,
        "instances[0][5][1] (pressure_bar): 1e+39 is beyond float32",
    ),
    "beyond float64 too": ({"instances": [[[1e308] * 7] * 24]}, 400, "instances[0][0][0] (temperature_c): 1e+308"),
    "beyond float32 by feature": (
        {"instances": [{f: [1e39 if f == "flow_m3_h" else 1.0] * 24 for f in FEATURES}]},
        400,
        "(flow_m3_h): 1e+39 is beyond float32",
    ),
    "unknown feature": ({"instances": [{"speed": [1.0] * 24}]}, 400, "unknown feature 'speed'"),
    "missing feature": ({"instances": [{"temperature_c": [1.0] * 24}]}, 400, "missing feature 'pressure_bar'"),
    "too many windows": ({"instances": [WINDOW] * 65}, 413, "65 windows in one request, the limit is 64"),
}


@pytest.mark.parametrize("case", sorted(BAD_V1))
def test_bad_v1_requests_are_4xx_with_a_message(client: TestClient, case: str) -> None:
    body, status, message = BAD_V1[case]
    for verb in ("predict", "explain"):
        response = client.post(f"/v1/models/{NAME}:{verb}", json=body)
        assert response.status_code == status, response.text
        assert message in response.json()["error"]


def v2_tensor(**overrides) -> dict:
    tensor = {"name": "window", "datatype": "FP32", "shape": [1, 24, 7], "data": [0.5] * 168, **overrides}
    return {"inputs": [tensor]}


BAD_V2 = {
    "wrong dtype": (v2_tensor(datatype="INT64"), 400, "datatype INT64, expected FP32 or FP64"),
    "wrong shape": (v2_tensor(shape=[1, 24, 6], data=[0.5] * 144), 400, "shape [1, 24, 6], expected"),
    "count mismatch": (v2_tensor(data=[0.5] * 100), 400, "100 values for shape [1, 24, 7]"),
    "text data": (v2_tensor(datatype="FP32", data=["a"] * 168), 400, "data[0] is 'a', not a number"),
    "bool data": (v2_tensor(data=[0.5] * 10 + [True] + [0.5] * 157), 400, "data[10] is True, not a number"),
    "beyond float32": (v2_tensor(data=[0.5] * 20 + [-1e39] + [0.5] * 147), 400, "data[20]: -1e+39 is beyond"),
    "two inputs": ({"inputs": v2_tensor()["inputs"] * 2}, 400, "expected one input 'window'"),
    "too many windows": (v2_tensor(shape=[65, 24, 7], data=[0.5] * 65 * 168), 413, "the limit is 64"),
}


@pytest.mark.parametrize("case", sorted(BAD_V2))
def test_bad_v2_requests_are_4xx_with_a_message(client: TestClient, case: str) -> None:
    body, status, message = BAD_V2[case]
    response = client.post(f"/v2/models/{NAME}/infer", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_malformed_and_oversized_bodies(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    broken = client.post(f"/v1/models/{NAME}:predict", content=b"{not json", headers=headers)
    assert broken.status_code == 400
    for body in (b"{not json", b'{"inputs": "nope"}'):  # FastAPI answered these V2 bodies 422
        v2 = client.post(f"/v2/models/{NAME}/infer", content=body, headers=headers)
        assert v2.status_code == 400 and v2.json()["error"].startswith("request body"), v2.text
    huge = client.post(f"/v1/models/{NAME}:predict", content=b"[" + b"1," * 1_500_000 + b"1]", headers=headers)
    assert huge.status_code == 413 and "larger than 2000000 bytes" in huge.json()["error"]
    assert client.post("/v1/models/nope:predict", json={"instances": [WINDOW]}).status_code == 404


def test_model_loads_from_s3(published_model, s3_bucket, tmp_path, windows) -> None:
    from shopfloor.common.storage import write_tree

    uri = f"s3://{s3_bucket}/models/pm/v-test0000001"
    write_tree(published_model, uri)
    model = load_window_model(uri, NAME, cache_dir=tmp_path)
    assert model.model_version == "v-test0000001" and model.threshold == 0.3
    response = TestClient(build_app(model)).post(f"/v1/models/{NAME}:predict", json={"instances": as_json(windows)})
    assert response.status_code == 200 and len(response.json()["predictions"]) == len(windows)
