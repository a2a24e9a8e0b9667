"""No request stalls the server: explanations run off the event loop in a bounded pool, over real HTTP.

Before, one explain of 1,024 windows held the event loop for seconds: predicts waited 1.7 s and readiness 1.5 s.
"""

from __future__ import annotations

import statistics
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
def test_readiness_and_small_predicts_keep_answering_while_explains_run(endpoint, trained_windows) -> None:
    big = {"instances": instances(trained_windows, 512)}
    one = {"instances": instances(trained_windows, 1)}
    answers: list[int] = []

    def explain() -> None:
        answers.append(post(endpoint.v1_explain_url, big, timeout=300)[0])

    for _ in range(3):  # warm: first calls build graphs
        _latency_ms(endpoint.v1_predict_url, one)
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
    print(f"while explaining: readiness p99 {ready_p99:.1f} ms, batch-1 predict p99 {predict_p99:.1f} ms")
    # before: an explain held the event loop, readiness waited 1.5 s and predicts 1.7 s; now readiness never waits
    # for TensorFlow (15-21 ms p99 measured on 2 cores), and a predict waits at most for the chunk of explanation
    # that holds TensorFlow's threads; the bounds leave room for a CI machine busy with other work
    assert ready_p99 < 250 and predict_p99 < 1000


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
