"""No request stalls the server: explanations run off the event loop in a bounded pool, over real HTTP.

Before, one explain of 1,024 windows held the event loop for seconds: predicts waited 1.7 s and readiness 1.5 s.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from shopfloor.components.deploy.local_target import LocalServerTarget, stop_server
from shopfloor.components.deploy.target import DeploymentRequest
from tests.serving.test_http import instances, post

NAME = "pm"


@pytest.fixture
def endpoint(published_model: Path, tmp_path: Path):
    state = tmp_path / "serving"
    yield LocalServerTarget(state).deploy(
        DeploymentRequest(NAME, str(published_model), "v-test0000001", ready_timeout_s=120)
    )
    stop_server(state, NAME)


def _rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _server_pid(state: Path) -> int:
    return int(json.loads((state / f"{NAME}.json").read_text())["pid"])


def _latency_ms(url: str, body: dict | None = None) -> float:
    start = time.perf_counter()
    if body is None:
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
    else:
        status, _ = post(url, body)
        assert status == 200
    return (time.perf_counter() - start) * 1000


@pytest.mark.slow
def test_readiness_and_small_predicts_keep_answering_while_explains_run(endpoint, trained_windows, tmp_path) -> None:
    big = {"instances": instances(trained_windows, 512)}
    one = {"instances": instances(trained_windows, 1)}
    answers: list[int] = []

    def explain() -> None:
        answers.append(post(endpoint.v1_explain_url, big, timeout=300)[0])

    for _ in range(3):  # warm: first calls build graphs
        _latency_ms(endpoint.v1_predict_url, one)
    server = _server_pid(tmp_path / "serving")
    before_mb = _rss_mb(server)
    explainers = [threading.Thread(target=explain) for _ in range(2)]
    for thread in explainers:
        thread.start()
    time.sleep(0.5)
    ready, predict = [], []
    while any(t.is_alive() for t in explainers) and len(ready) < 60:
        ready.append(_latency_ms(f"{endpoint.url}/v2/health/ready"))
        predict.append(_latency_ms(endpoint.v1_predict_url, one))
    for thread in explainers:
        thread.join()
    assert answers == [200, 200]
    assert len(ready) >= 5, "the explains finished before they could be measured against"
    ready_p99 = statistics.quantiles(ready, n=100)[98]
    predict_p99 = statistics.quantiles(predict, n=100)[98]
    after_mb = _rss_mb(server)
    print(
        f"while explaining: readiness p99 {ready_p99:.1f} ms, batch-1 predict p99 {predict_p99:.1f} ms; "
        f"server memory {before_mb:.0f} -> {after_mb:.0f} MB"
    )
    # before: an explain held the event loop, readiness waited 1.5 s and predicts 1.7 s; in threads of the same
    # process, predicts still waited ~350 ms for TensorFlow's threads; in a process of their own, 8-22 ms p99 (the
    # bound leaves room for a loaded CI machine and still tells a process of their own from threads)
    assert ready_p99 < 150 and predict_p99 < 150
    assert after_mb - before_mb < 100, "the explanations' memory is the worker's, not the predicting server's"


@pytest.mark.slow
def test_explains_beyond_the_pool_are_refused_at_once_with_retry_after(endpoint, trained_windows) -> None:
    big = {"instances": instances(trained_windows, 512)}
    answers: list[tuple[int, float]] = []

    def explain() -> None:
        start = time.perf_counter()
        status, _ = post(endpoint.v1_explain_url, big, timeout=300)
        answers.append((status, time.perf_counter() - start))

    threads = [threading.Thread(target=explain) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(status for status, _ in answers)
    assert statuses.count(200) >= 3 and statuses.count(503) >= 1, statuses  # one running, two waiting, rest 503
    assert all(seconds < 5 for status, seconds in answers if status == 503), "a refusal does not wait"


def _explain_worker(server: int) -> int:
    """The server's explaining process (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{server}/task/{server}/children").read_text().split()
    workers = [
        int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    ]
    assert len(workers) == 1, workers
    return workers[0]


@pytest.mark.slow
def test_an_explaining_process_that_dies_is_replaced(endpoint, trained_windows, tmp_path) -> None:
    small = {"instances": instances(trained_windows, 4)}
    assert post(endpoint.v1_explain_url, small, timeout=300)[0] == 200
    server = _server_pid(tmp_path / "serving")
    os.kill(_explain_worker(server), signal.SIGKILL)  # what the kernel's OOM killer does
    status, answer = post(endpoint.v1_explain_url, small, timeout=60)
    assert status == 503 and "restarting" in answer["error"], answer
    assert post(endpoint.v1_predict_url, {"instances": instances(trained_windows, 1)})[0] == 200
    deadline = time.monotonic() + 120
    while (status := post(endpoint.v1_explain_url, small, timeout=300)[0]) != 200 and time.monotonic() < deadline:
        time.sleep(2)
    assert status == 200, "a new explaining process took over"


@pytest.mark.slow
def test_a_killed_server_leaves_no_explaining_process_behind(endpoint, tmp_path) -> None:
    server = _server_pid(tmp_path / "serving")
    deadline = time.monotonic() + 60
    while True:  # the worker is spawned at start; it may still be loading
        try:
            worker = _explain_worker(server)
            break
        except (AssertionError, OSError):  # none yet, or a process that just ended while we read /proc
            assert time.monotonic() < deadline, "no explaining process started"
            time.sleep(0.5)
    os.kill(server, signal.SIGKILL)  # no shutdown hook runs: the out-of-memory killer's way
    deadline = time.monotonic() + 30
    while Path(f"/proc/{worker}").exists() and b"spawn_main" in Path(f"/proc/{worker}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "the explaining process outlived its server"
        time.sleep(0.5)


def test_a_worker_whose_server_died_while_it_started_leaves_at_once(tmp_path) -> None:
    """The race CI hit: the server was killed before its worker's initializer ran, so the worker's first
    ``getppid()`` was already init's and it outlived its server. The server's own pid now travels with the worker."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    server = int(gone.stdout)  # a process that has ended: the worker's parent is not it
    start = time.monotonic()
    worker = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, time; from serving.explain_process import _load_in_worker;"
            f"_load_in_worker({server}, 'serving.predictor:WindowModel', 'pm',"
            f" {str(tmp_path)!r}, {{'model_version': 'v1', 'max_batch': 8}}, 1); time.sleep(120)",
        ],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]
    assert time.monotonic() - start < 60, "the worker waited for its model instead of leaving"
