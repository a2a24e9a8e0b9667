"""The model server's payload log across a shutdown while S3 is down: SIGTERM, the spool, the next start.

Before, SIGTERM while S3 was down exited in 3.1 s and dropped every pending record without a log line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from shopfloor.components.deploy.local_target import free_port
from shopfloor.contracts.payload_log import read_payload_logs
from tests.serving.test_http import instances

NAME = "pm"


@pytest.fixture(params=["refused", "frozen"])
def s3_down(request: pytest.FixtureRequest):
    """An S3 endpoint that is down: nothing listens (refused), or it accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        if request.param == "frozen":
            sock.listen(64)
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
            return
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


def _start(model: Path, store: str, spool: Path, log: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """Start the server as the InferenceService does (its own process) and wait until it answers ready."""
    port = free_port()
    command = [sys.executable, "-m", "shopfloor.serving.server", "--model-uri", str(model), "--model-name", NAME]
    command += ["--http-port", str(port), "--payload-log-uri", store, "--payload-spool", str(spool)]
    with log.open("ab") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/v2/models/{NAME}/ready", timeout=2):
                return server, url
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)


def _predict(url: str, request_id: str, body: dict) -> None:
    """One V1 predict, named by its request id (the id the payload record carries)."""
    request = urllib.request.Request(
        f"{url}/v1/models/{NAME}:predict",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "x-request-id": request_id},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def _stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/v1/payload-log", timeout=5) as response:
        return json.loads(response.read())


def _sigterm(server: subprocess.Popen) -> float:
    """Send SIGTERM as Kubernetes does; the seconds until the process exited by itself."""
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        pytest.fail("the server did not exit within 60 s of SIGTERM")
    assert server.returncode == -signal.SIGTERM  # uvicorn re-raises the signal after its shutdown
    return time.monotonic() - started


@pytest.mark.slow  # starts two server processes: runs with the whole suite
def test_sigterm_while_s3_is_down_spools_every_record_and_the_next_start_sends_them(
    published_model, trained_windows, s3_bucket, s3_down, tmp_path
) -> None:
    store, spool = f"s3://{s3_bucket}/payload-logs", tmp_path / "spool"
    body = {"instances": instances(trained_windows, 2)}
    ids = [f"req-{i}" for i in range(5)]

    down = dict(os.environ, AWS_ENDPOINT_URL=s3_down)
    server, url = _start(published_model, store, spool, tmp_path / "down.log", down)
    try:
        for request_id in ids:
            _predict(url, request_id, body)
        stats = _stats(url)
        assert stats["recorded"] == 5 and stats["written"] == 0 and stats["spooled"] == 0
    finally:
        elapsed = _sigterm(server)
    assert elapsed < 20  # the 5 s bound on the last flush, plus uvicorn's shutdown on a busy machine
    spooled = [json.loads(line) for path in sorted((spool / NAME).glob("spool-*.jsonl")) for line in path.open()]
    assert [record["id"] for record in spooled] == ids
    log = (tmp_path / "down.log").read_text()
    assert f"spooled 5 records to {spool / NAME}" in log and "Traceback" not in log

    up = dict(os.environ)  # the s3_bucket fixture's moto endpoint
    server, url = _start(published_model, store, spool, tmp_path / "up.log", up)
    try:
        deadline = time.monotonic() + 30
        while _stats(url)["unspooled"] < 5:
            assert time.monotonic() < deadline, _stats(url)
            time.sleep(0.2)
        assert _stats(url) == {
            "recorded": 0,
            "written": 5,
            "pending": 0,
            "dropped": 0,
            "failed_writes": 0,
            "spooled": 0,
            "unspooled": 5,
        }
    finally:
        _sigterm(server)
    assert list((spool / NAME).iterdir()) == []
    assert sorted(record.id for record in read_payload_logs(store, NAME)) == ids
