"""Store and forward on the edge: payload records survive a store outage and a hard crash, and arrive once.

A real S3 peer (moto's server, as its own process so that it can be killed) and the edge runtime as its own
process: requests answered while S3 is down go to the local spool within a flush interval, the runtime is killed
with SIGKILL (no shutdown code runs), S3 and the runtime start again, and every record is in the store exactly once.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from shopfloor.common.errors import StorageError
from shopfloor.common.storage import S3Settings
from shopfloor.contracts.payload_log import PayloadLogger, read_payload_logs
from tests.conftest import S3_ACCESS_KEY, S3_SECRET_KEY
from tests.edge.edge_process import Edge, copy_model, edge_args, poll, start_edge
from tests.servers import port_open

pytestmark = pytest.mark.slow  # starts and kills S3 servers and edge runtimes as processes: runs with the whole suite

BUCKET = "payload-logs"
LOG_URI = f"s3://{BUCKET}/edge"


def _free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def s3_server(port: int) -> Iterator[subprocess.Popen]:
    """moto's S3 server as a process on ``port`` with an empty bucket; killed (SIGKILL) on exit, its data gone."""
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    process = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        poll(lambda: port_open("127.0.0.1", port), what=f"moto on port {port}")
        S3Settings.from_env().client().make_bucket(bucket_name=BUCKET)
        yield process
    finally:
        process.kill()
        process.wait(timeout=30)


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """S3 settings for a port where nothing listens yet, in this process and for the edge's environment."""
    settings = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}",
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "AWS_REGION": "us-east-1",
        "SHOPFLOOR_S3_BUDGET_S": "2",  # a store that refuses connections fails a write in about 2 s, not 60
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    return settings


def _send(edge: Edge, windows: np.ndarray, ids: list[str]) -> None:
    """One V2 request per id, one window each; all answered."""
    for request_id, window in zip(ids, windows, strict=False):
        body = {"id": request_id, "inputs": [{"name": "window", "datatype": "FP32", "shape": [1, *window.shape],
                                              "data": np.nan_to_num(window).ravel().tolist()}]}  # fmt: skip
        code, answer = edge.post("/v2/models/ad/infer", body)
        assert code == 200 and answer["id"] == request_id, answer


def _spool_files(spool: Path) -> list[Path]:
    return sorted((spool / "ad").glob("spool-*.jsonl"))


@pytest.mark.timeout(600)
def test_records_survive_a_store_outage_and_a_kill_and_arrive_exactly_once(
    edge_ad_store: Path, anomaly_windows, tmp_path: Path, s3_env: dict[str, str]
):
    store, spool = tmp_path / "store", tmp_path / "spool"
    copy_model(edge_ad_store, store, "ad")
    args = edge_args(store, "ad", tmp_path, "--payload-log", LOG_URI, "--payload-spool", str(spool))
    args += ["--payload-flush-interval-s", "0.2"]
    env = {**os.environ, **s3_env}
    windows = anomaly_windows.part("test").x[:12]
    port = int(s3_env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])

    # 1. S3 is down from the start: the answers go out, the records go to the spool, then a hard crash
    edge = start_edge(args, env=env)
    down = [f"down-{i}" for i in range(5)]
    try:
        _send(edge, windows, down)
        poll(lambda: edge.payload_log()["spooled"] == 5 and edge.payload_log()["pending"] == 0, what="5 spooled")
        assert edge.payload_log()["written"] == 0 and edge.payload_log()["dropped"] == 0
    finally:
        edge.kill()
    assert sum(path.read_text().count("\n") for path in _spool_files(spool)) == 5

    # 2. S3 and the runtime back: the spool goes first, then new records; each is in the store once
    up = [f"up-{i}" for i in range(3)]
    with s3_server(port) as s3:
        edge = start_edge(args, env=env)
        try:
            _send(edge, windows, up)
            poll(lambda: edge.payload_log()["written"] == 8, what="8 records written")
            assert edge.payload_log()["unspooled"] == 5 and edge.payload_log()["pending"] == 0
            records = read_payload_logs(LOG_URI, "ad")
            assert sorted(record.id for record in records) == sorted(down + up)
            assert {record.model_version for record in records} == {"v-ad01"}
            assert _spool_files(spool) == []

            # 3. S3 killed under a running runtime: new records spool; the runtime is killed too
            s3.kill()
            s3.wait(timeout=30)
            again = [f"again-{i}" for i in range(4)]
            _send(edge, windows, again)
            poll(lambda: edge.payload_log()["spooled"] == 4 and edge.payload_log()["pending"] == 0, what="4 spooled")
        finally:
            edge.kill()

    # 4. a new, empty S3 and a new runtime: exactly the four records of the outage arrive
    with s3_server(port):
        edge = start_edge(args, env=env)
        try:
            poll(lambda: edge.payload_log()["written"] == 4, what="the spooled records written")
            assert sorted(record.id for record in read_payload_logs(LOG_URI, "ad")) == sorted(again)
            assert _spool_files(spool) == []
        finally:
            assert "stopped" in edge.stop()


def test_the_spool_is_bounded_while_the_store_is_away(tmp_path: Path, s3_env: dict[str, str]):
    logger = PayloadLogger(
        LOG_URI, "ad", "v-ad01", max_pending=5, batch_size=2, spool_dir=tmp_path, spool_on_failure=True
    )
    for i in range(4):
        logger.record(f"first-{i}", "v2", [[1.0]], {"anomaly_score": [0.1]})
    logger.flush()  # S3 refuses connections: the four go to the spool
    assert logger.stats["spooled"] == 4 and logger.stats["pending"] == 0
    for i in range(4):
        logger.record(f"second-{i}", "v2", [[1.0]], {"anomaly_score": [0.1]})
    logger.flush()  # the oldest spooled records make room: at most five stay
    kept = [line for path in sorted((tmp_path / "ad").glob("spool-*.jsonl")) for line in path.read_text().splitlines()]
    assert len(kept) == 5 and '"id":"second-3"' in kept[-1]
    assert logger.stats["dropped"] == 3
    stats = logger.stats
    assert (
        stats["recorded"] + stats["unspooled"]
        == stats["written"] + stats["pending"] + stats["dropped"] + stats["spooled"]
    )
    with pytest.raises(StorageError):
        read_payload_logs(LOG_URI, "ad")
