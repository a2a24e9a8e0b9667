"""The model server as its own process on localhost, reached over real HTTP: deploy, load, payload logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from shopfloor.components.deploy.local_target import LocalServerTarget, free_port, running_server, stop_server
from shopfloor.components.deploy.target import DeploymentFailed, DeploymentRequest
from shopfloor.contracts.payload_log import read_payload_logs

NAME = "pm"


def post(url: str, body: dict, timeout: float = 30, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    sent = {"content-type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def instances(trained_windows, count: int) -> list:
    batch = trained_windows.part("test").x[:count]
    return [[[None if np.isnan(v) else float(v) for v in row] for row in window] for window in batch]


@pytest.fixture
def state_dir(tmp_path: Path):
    folder = tmp_path / "serving"
    yield folder
    stop_server(folder, NAME)


@pytest.mark.slow  # 10-20 s of real training, search or load: runs with the whole suite
def test_local_deploy_answers_200_concurrent_requests_and_logs_them(
    published_model, trained_windows, state_dir, tmp_path
) -> None:
    logs = tmp_path / "payload-logs"
    endpoint = LocalServerTarget(state_dir).deploy(
        DeploymentRequest(NAME, str(published_model), "v-test0000001", payload_log_uri=str(logs), ready_timeout_s=120)
    )
    assert endpoint.url.startswith("http://127.0.0.1:")
    bodies = [{"instances": instances(trained_windows, 1 + i % 3)} for i in range(200)]
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda body: post(endpoint.v1_predict_url, body), bodies))
    assert [status for status, _ in answers] == [200] * 200
    assert [len(a["predictions"]) for _, a in answers] == [len(b["instances"]) for b in bodies]
    status, _ = post(
        endpoint.v2_infer_url,
        {"inputs": [{"name": "window", "datatype": "FP32", "shape": [1, 24, 7], "data": [1.0] * 168}]},
    )
    assert status == 200
    stop_server(state_dir, NAME)  # SIGTERM: the server flushes its last batch before it exits
    records = read_payload_logs(str(logs), NAME)
    assert len(records) == 201
    assert {r.protocol for r in records} == {"v1", "v2"} and {r.model_version for r in records} == {"v-test0000001"}
    assert sum(len(r.inputs) for r in records if r.protocol == "v1") == sum(len(b["instances"]) for b in bodies)
    assert all("failure_probability" in r.outputs for r in records)


@pytest.mark.usefixtures("s3_bucket")
def test_payload_logs_go_to_s3(published_model, trained_windows, state_dir, s3_bucket) -> None:
    uri = f"s3://{s3_bucket}/payload-logs"
    endpoint = LocalServerTarget(state_dir).deploy(
        DeploymentRequest(NAME, str(published_model), "v-test0000001", payload_log_uri=uri, ready_timeout_s=120)
    )
    for count in (1, 2, 3):
        assert post(endpoint.v1_predict_url, {"instances": instances(trained_windows, count)})[0] == 200
    stop_server(state_dir, NAME)
    records = read_payload_logs(uri, NAME)
    assert [len(r.inputs) for r in records] == [1, 2, 3]


@pytest.mark.slow  # starts a server process: runs with the whole suite
def test_failed_redeploy_keeps_the_serving_version(published_model, model_copy, state_dir) -> None:
    target = LocalServerTarget(state_dir)
    first = target.deploy(DeploymentRequest(NAME, str(published_model), "v-test0000001", ready_timeout_s=120))
    (model_copy / "model" / "model.keras").write_bytes(b"not a keras archive")
    with pytest.raises(DeploymentFailed) as failure:
        target.deploy(DeploymentRequest(NAME, str(model_copy), "v-broken", ready_timeout_s=120))
    assert "v-test0000001 keeps serving" in str(failure.value) and "\n" not in str(failure.value)
    state = running_server(state_dir, NAME)
    assert state["url"] == first.url and state["model_version"] == "v-test0000001"
    with urllib.request.urlopen(f"{first.url}/v2/models/{NAME}/ready", timeout=5) as response:
        assert response.status == 200


@pytest.mark.slow  # starts a server process: runs with the whole suite
def test_shopfloor_serve_binds_to_localhost_by_default(published_model, trained_windows) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("shopfloor")),
            "serve",
            str(published_model),
            "--name",
            NAME,
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/{NAME}/ready", timeout=2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        status, answer = post(
            f"http://127.0.0.1:{port}/v1/models/{NAME}:predict", {"instances": instances(trained_windows, 2)}
        )
        assert status == 200 and len(answer["predictions"]) == 2
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        if listening:  # ss is part of iproute2; where it exists, check the bound (local) address
            assert listening.split()[3] == f"127.0.0.1:{port}"
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert f"serving {NAME} (v-test0000001) as predictor, predict by keras, on http://127.0.0.1:{port}" in output
