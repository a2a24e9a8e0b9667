"""`shopfloor serve` and `shopfloor stop`: their requests, the server's command line, stopping what is not running."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from shopfloor.app.cli import main, parse_request
from shopfloor.app.cli.serve import ServeRequest, StopRequest
from tests.app.cli.helpers import shopfloor


def test_serve_defaults_bind_this_machine_only() -> None:
    request = parse_request(["serve", "models/pm/v-1"])
    assert request == ServeRequest(
        model_uri="models/pm/v-1", name="predictive-maintenance", host="127.0.0.1", port=8080
    )
    assert request.server_argv() == [
        "--model-uri", "models/pm/v-1", "--model-name", "predictive-maintenance", "--host", "127.0.0.1",
        "--http-port", "8080",
    ]  # fmt: skip


def test_serve_every_flag_reaches_the_server() -> None:
    argv = ["serve", "s3://m/pm/v-2", "--name", "pumps", "--host", "0.0.0.0", "--port", "9000"]
    request = parse_request([*argv, "--payload-log", "s3://logs", "--grpc-port", "9001"])
    assert request == ServeRequest("s3://m/pm/v-2", "pumps", "0.0.0.0", 9000, "s3://logs", 9001)
    assert request.server_argv()[-6:] == [
        "--http-port", "9000", "--payload-log-uri", "s3://logs", "--grpc-port", "9001",
    ]  # fmt: skip


def test_stop_parses_name_and_work_dir() -> None:
    assert parse_request(["stop"]) == StopRequest("predictive-maintenance", Path("shopfloor-runs"))
    assert parse_request(["stop", "pumps", "--work-dir", "runs"]) == StopRequest("pumps", Path("runs"))


def test_stopping_a_server_that_is_not_running_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stop", "pumps", "--work-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().err == "pumps was not running\n"


def test_serving_from_a_store_that_never_answers_fails_within_the_budget(frozen_store, monkeypatch) -> None:
    # before: 244 s of silence, then a failure; now the S3 budget bounds the download and the user gets one line
    monkeypatch.setenv("SHOPFLOOR_S3_BUDGET_S", "3")
    started = time.monotonic()
    result = shopfloor("serve", "s3://models/pm/v-1", "--name", "pm", timeout=120)
    elapsed = time.monotonic() - started
    assert result.returncode != 0 and "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: s3://models/pm/v-1/_SHOPFLOOR_TREE.json: S3 endpoint gave no answer in 4 tries")
    assert "within the 3 s budget" in last_line
    assert elapsed < 60, elapsed  # the budget plus the server's imports, on a slow machine


@pytest.mark.slow  # a server process with TensorFlow (~10 s)
def test_shopfloor_serve_answers_grpc_beside_rest(published_model: Path, trained_windows, tmp_path: Path) -> None:
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    from shopfloor.components.deploy.local_target import free_port
    from tests.app.cli.helpers import SHOPFLOOR
    from tests.serving.test_grpc import grpc_outputs, infer_request

    port, grpc_port = free_port(), free_port()
    argv = [SHOPFLOOR, "serve", str(published_model), "--name", "pm", "--port", str(port)]
    argv += ["--grpc-port", str(grpc_port)]
    env = {**os.environ, "SHOPFLOOR_PAYLOAD_SPOOL": str(tmp_path / "spool"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    server = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, server.communicate()[1][-3000:]
                try:
                    if stub.ModelReady(pb.ModelReadyRequest(name="pm"), timeout=5).ready:
                        break
                except grpc.RpcError:
                    pass
                assert time.monotonic() < deadline, "the gRPC endpoint never became ready"
                time.sleep(1)
            windows = trained_windows.part("test").x[:3].astype(np.float32)
            outputs = grpc_outputs(stub.ModelInfer(infer_request("pm", windows), timeout=30))
        assert all(len(values) == 3 for values in outputs.values()), outputs
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=60)
    assert "Traceback" not in errors, errors[-3000:]
