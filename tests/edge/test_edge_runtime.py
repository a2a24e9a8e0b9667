"""The edge runtime over real HTTP and real MQTT: the full server's bodies, Keras' answers within tolerance.

Tolerance: the float32 export answers within 1e-3 * max(1, |keras|) of Keras (what the export itself checks on
the test split); thresholded decisions equal Keras' except for scores within that distance of the threshold.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from typing import Any

import numpy as np
import pytest

from shopfloor.contracts.model_store import ModelStore
from tests.edge.edge_process import TOLERANCE, copy_model, poll, start_edge, v1_body
from tests.edge.edge_process import close as _close
from tests.edge.edge_process import edge_args as _edge_args
from tests.edge.edge_process import keras_reference as _keras_reference

pytestmark = pytest.mark.slow  # trains the three kinds, runs edge runtimes as processes (~40 s)


def _inputs(name: str, trained_windows, anomaly_windows, vision_trained) -> np.ndarray:
    if name == "pm":
        x = trained_windows.part("test").x[:8].copy()
        x[0, 2, 1] = np.nan  # a missing reading
        return x
    if name == "ad":
        return anomaly_windows.part("test").x[:8]
    return vision_trained.images.part("test").images[:6].astype(np.float32)


@pytest.mark.parametrize("name", ["pm", "ad", "vi"])
def test_v1_and_v2_answer_what_keras_answers(
    name, edge_store, tmp_path, trained_windows, anomaly_windows, vision_trained
):
    inputs = _inputs(name, trained_windows, anomaly_windows, vision_trained)
    reference = _keras_reference(edge_store, name, inputs)
    edge = start_edge(_edge_args(edge_store, name, tmp_path, "--variant", "float32"))
    try:
        assert edge.get(f"/v1/models/{name}") == (200, {"name": name, "ready": True})
        code, v1 = edge.post(f"/v1/models/{name}:predict", v1_body(inputs))
        assert code == 200, v1
        rows = v1["predictions"]
        assert len(rows) == len(inputs)
        for output, expected in reference.items():
            assert _close([row[output] for row in rows], expected), output
        v2_request: dict[str, Any] = {
            "id": "r1",
            "inputs": [
                {
                    "name": "window" if name != "vi" else "image",
                    "datatype": "FP32",
                    "shape": list(inputs.shape),
                    "data": np.nan_to_num(inputs).ravel().tolist(),
                }
            ],
        }
        if name == "vi":
            v2_request["inputs"][0]["datatype"] = "UINT8"
        code, v2 = edge.post(f"/v2/models/{name}/infer", v2_request)
        assert code == 200, v2
        assert v2["id"] == "r1" and v2["model_version"] == f"v-{name}01"
        outputs = {o["name"]: o for o in v2["outputs"]}
        if name == "vi":
            assert list(outputs) == ["label", "defective", "defect_score", "probabilities"]
            assert outputs["probabilities"]["shape"] == list(reference["probabilities"].shape)
            assert _close(outputs["probabilities"]["data"], reference["probabilities"].ravel())
            assert outputs["label"]["datatype"] == "BYTES" and outputs["defective"]["datatype"] == "BOOL"
        elif name == "ad":
            assert [o["datatype"] for o in v2["outputs"]] == ["FP32", "BOOL"]
        code, metadata = edge.get(f"/v2/models/{name}")
        assert code == 200 and metadata["versions"] == [f"v-{name}01"]
        assert [o["name"] for o in metadata["outputs"]] == list(outputs)
        assert edge.get(f"/v2/models/{name}/ready")[0] == 200
        metrics = str(edge.get("/metrics")[1])  # the full server's names: batch sizes and the served score
        score = {"pm": "failure_probability", "ad": "anomaly_score", "vi": "defect_score"}[name]
        rows = int(inputs.shape[0])
        assert f'shopfloor_prediction_score_count{{model_name="{name}",output="{score}"}} {2.0 * rows}' in metrics
        assert f'shopfloor_model_batch_size_count{{model_name="{name}"}} 2.0' in metrics
    finally:
        edge.stop()


def test_bad_requests_get_one_line_naming_the_field(edge_store, tmp_path):
    edge = start_edge(_edge_args(edge_store, "pm", tmp_path))
    try:
        code, body = edge.post("/v1/models/pm:predict", {"instances": [[[1.0] * 3]]})
        assert code == 400 and body["error"].startswith("instances[0]: 1 rows, expected 24 rows")
        code, body = edge.post("/v1/models/pm:predict", {"rows": []})
        assert code == 400 and 'missing field "instances"' in body["error"]
        code, body = edge.post(
            "/v2/models/pm/infer", {"inputs": [{"name": "window", "datatype": "INT8", "shape": [1], "data": [1]}]}
        )
        assert code == 400 and body["error"] == "inputs[0] (window): datatype INT8, expected FP32 or FP64"
        assert edge.post("/v1/models/other:predict", {"instances": []})[0] == 404
        metrics = edge.get("/metrics")[1]
        assert 'shopfloor_requests_total{code="400",model_name="pm",protocol="v1",route="predict"} 2.0' in metrics
        assert 'shopfloor_request_duration_seconds_count{model_name="pm",protocol="v2",route="predict"} 1.0' in metrics
    finally:
        edge.stop()


def test_a_new_published_version_is_swapped_in_on_sighup(edge_store, tmp_path):
    store = tmp_path / "store"
    copy_model(edge_store, store, "ad")
    edge = start_edge(_edge_args(store, "ad", tmp_path, "--update-interval-s", "3600"))
    try:
        assert edge.get("/v2/models/ad")[1]["versions"] == ["v-ad01"]
        shutil.copytree(store / "ad" / "v-ad01", store / "ad" / "v-ad02")
        ModelStore(str(store)).set_latest("ad", "v-ad02")
        edge.process.send_signal(signal.SIGHUP)
        poll(lambda: edge.get("/v2/models/ad")[1]["versions"] == ["v-ad02"], what="v-ad02 served after SIGHUP")
        info = [line for line in str(edge.get("/metrics")[1]).splitlines() if line.startswith("shopfloor_model_info{")]
        assert len(info) == 1 and 'model_version="v-ad02"' in info[0], info
        # the line is logged after the swap, and read from the process's output by another thread: wait for it
        poll(lambda: any("now serving v-ad02" in line for line in edge.lines), what="the swap's log line")
        assert sorted(p.name for p in (tmp_path / "cache" / "ad").iterdir()) == ["current.json", "v-ad01", "v-ad02"]
    finally:
        edge.stop()


def test_a_corrupt_download_is_never_served(edge_store, tmp_path):
    store = tmp_path / "store"
    copy_model(edge_store, store, "ad")
    edge = start_edge(_edge_args(store, "ad", tmp_path, "--update-interval-s", "3600"))
    try:
        bad = store / "ad" / "v-ad03"
        shutil.copytree(store / "ad" / "v-ad01", bad)
        for flatbuffer in (bad / "model" / "edge").glob("*.tflite"):
            flatbuffer.write_bytes(flatbuffer.read_bytes()[:-16] + b"\0" * 16)
        ModelStore(str(store)).set_latest("ad", "v-ad03")
        edge.process.send_signal(signal.SIGHUP)
        poll(lambda: any("update failed" in line for line in edge.lines), what="the failed update's log line")
        assert any("update failed, still serving v-ad01" in line and "sha256" in line for line in edge.lines)
        assert edge.get("/v2/models/ad")[1]["versions"] == ["v-ad01"]
        assert not (tmp_path / "cache" / "ad" / "v-ad03").exists()
    finally:
        edge.stop()


@pytest.mark.server
def test_the_mqtt_loop_publishes_alarms(edge_store, tmp_path, anomaly_windows):
    """Windows in on ``<prefix>/ad/in``, one alarm per window above the threshold out on ``<prefix>/ad/alarms``.

    The threshold is set to the median Keras score so that about half the windows alarm; windows whose score is
    within the stated tolerance of it may go either way and are not asserted.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    windows = anomaly_windows.part("test").x[:40]
    reference = _keras_reference(edge_store, "ad", windows)["anomaly_score"]
    threshold = float(np.median(reference))
    store = tmp_path / "store"
    copy_model(edge_store, store, "ad")
    info = store / "ad" / "v-ad01" / "model" / "shopfloor_model.json"
    document = json.loads(info.read_text())
    document["threshold"]["value"] = threshold
    info.write_text(json.dumps(document))
    prefix = f"test/{os.urandom(4).hex()}"
    received: list[dict] = []
    errors: list[str] = []
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)

    def on_message(_client, _userdata, message) -> None:
        if message.topic.endswith("/alarms"):
            received.append(json.loads(message.payload))
        else:
            errors.append(message.payload.decode())

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    try:
        client.connect("localhost", 1883)
    except OSError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("no MQTT broker on localhost:1883")
    client.subscribe([(f"{prefix}/ad/alarms", 1), (f"{prefix}/ad/errors", 1)])
    client.loop_start()
    assert subscribed.wait(30)
    edge = start_edge(
        _edge_args(
            store, "ad", tmp_path, "--port", "-1", "--variant", "float32", "--mqtt-host", "localhost",
            "--mqtt-prefix", prefix,
        )
    )  # fmt: skip
    try:
        poll(lambda: any("listening on mqtt" in line for line in edge.lines), what="the edge's MQTT subscription")
        near = np.abs(reference - threshold) <= TOLERANCE * np.maximum(1.0, np.abs(reference))
        expected = {i for i, score in enumerate(reference) if score >= threshold and not near[i]}
        possible = expected | {i for i in range(len(reference)) if near[i]}
        client.publish(f"{prefix}/ad/in", json.dumps({"id": "batch-1", **v1_body(windows)}), qos=1)
        poll(lambda: {alarm["index"] for alarm in received} >= expected, what="the alarms")
        assert len(expected) >= 15
        assert {alarm["index"] for alarm in received} <= possible
        assert all(alarm["anomalous"] and alarm["id"] == "batch-1" for alarm in received)
        assert all(alarm["model"] == "ad" and alarm["version"] == "v-ad01" for alarm in received)
        for alarm in received:
            assert abs(alarm["anomaly_score"] - reference[alarm["index"]]) <= TOLERANCE * max(1.0, reference.max())
        client.publish(f"{prefix}/ad/in", json.dumps({"instances": [[[1.0] * 3]]}), qos=1)
        poll(lambda: bool(errors), what="the error line")
        assert len(errors) == 1 and errors[0].startswith(f"{prefix}/ad/in: instances[0]: 1 rows, expected 24 rows")
    finally:
        edge.stop()
        client.loop_stop()
        client.disconnect()
