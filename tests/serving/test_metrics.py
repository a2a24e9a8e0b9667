"""GET /metrics over real HTTP: requests, latency, errors, batch sizes, scores, alarms, payload log, model info."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shopfloor.serving.metrics import classify, observe_outputs
from shopfloor.serving.server import build_app, load_window_model
from tests.servers import serving_in_thread
from tests.serving.test_http import post
from tests.serving.test_server import as_json, v2_body

NAME = "pm-metrics"  # a name of its own: the request metrics live in the process's default registry
VERSION = "v-test0000001"


@pytest.fixture(scope="module")
def served(published_model, tmp_path_factory):
    """The published model with a payload logger writing to a local folder."""
    folder = tmp_path_factory.mktemp("metrics")
    model = load_window_model(
        str(published_model), NAME, payload_log_uri=str(folder / "logs"), payload_spool=folder / "spool"
    )
    model.explain_steps = 8
    return model


@pytest.fixture(scope="module")
def server(served) -> Iterator[str]:
    """Our app served by uvicorn on a free loopback port in this process."""
    with serving_in_thread(build_app(served, payload_logger=served.payload_logger, max_body_bytes=200_000)) as url:
        yield url


def scrape(url: str) -> tuple[str, dict[tuple[str, frozenset], float]]:
    """The content type and every sample of ``GET /metrics``, keyed by sample name and labels."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        content_type, text = response.headers["content-type"], response.read().decode()
    return content_type, parse(text)


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text exposition, keyed by sample name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float | None:
    """The sum of the samples named ``name`` whose labels include ``labels``; None when there is none."""
    found = [v for (n, have), v in samples.items() if n == name and frozenset(labels.items()) <= have]
    return sum(found) if found else None


@pytest.fixture(scope="module")
def scraped(server, served, trained_windows) -> tuple[str, dict, int, int]:
    """Two V1 predicts (3 and 2 windows), a V2 infer (4), a V1 explain, a 400, a 404 and a 413, then a scrape.

    Returns the content type, the samples, the windows predicted and the alarms they raised.
    """
    x = trained_windows.part("test").x
    alarms = 0
    for count in (3, 2):
        status, answer = post(f"{server}/v1/models/{NAME}:predict", {"instances": as_json(x[:count])})
        assert status == 200
        alarms += sum(p["fails_within_horizon"] for p in answer["predictions"])
    status, answer = post(f"{server}/v2/models/{NAME}/infer", v2_body(x[:4]))
    assert status == 200
    alarms += sum(next(o["data"] for o in answer["outputs"] if o["name"] == "fails_within_horizon"))
    assert post(f"{server}/v1/models/{NAME}:explain", {"instances": as_json(x[:1])})[0] == 200
    assert post(f"{server}/v1/models/{NAME}:predict", {"instances": "not windows"})[0] == 400
    assert post(f"{server}/v1/models/no-such-model:predict", {"instances": as_json(x[:1])})[0] == 404
    assert post(f"{server}/v2/models/{NAME}/infer", {"padding": "x" * 300_000})[0] == 413
    served.payload_logger.flush()  # written to the local folder now, not within the flush interval
    content_type, samples = scrape(server)
    return content_type, samples, 9, int(alarms)


def test_requests_are_counted_by_model_protocol_route_and_status(scraped) -> None:
    content_type, samples, _, _ = scraped
    assert content_type.startswith("text/plain") and "version=" in content_type
    requests = "shopfloor_requests_total"
    assert value(samples, requests, model_name=NAME, protocol="v1", route="predict", code="200") == 2
    assert value(samples, requests, model_name=NAME, protocol="v1", route="predict", code="400") == 1
    assert value(samples, requests, model_name=NAME, protocol="v2", route="predict", code="200") == 1
    assert value(samples, requests, model_name=NAME, protocol="v2", route="predict", code="413") == 1
    assert value(samples, requests, model_name=NAME, protocol="v1", route="explain", code="200") == 1
    assert value(samples, requests, model_name="unknown", protocol="v1", route="predict", code="404") == 1
    errors = "shopfloor_request_errors_total"
    assert value(samples, errors, model_name=NAME, code="400") == 1
    assert value(samples, errors, model_name=NAME, code="413") == 1
    assert value(samples, errors, model_name=NAME, code="200") is None
    latency = "shopfloor_request_duration_seconds"
    assert value(samples, f"{latency}_count", model_name=NAME, protocol="v1", route="predict") == 3
    assert value(samples, f"{latency}_count", model_name=NAME, protocol="v1", route="explain") == 1
    assert 0 < value(samples, f"{latency}_sum", model_name=NAME, protocol="v1", route="predict") < 60
    assert value(samples, f"{latency}_bucket", model_name=NAME, protocol="v1", route="predict", le="+Inf") == 3
    assert value(samples, requests, route="metrics") is None  # scrapes are not counted


def test_kserve_latency_histograms_are_kept(scraped) -> None:
    _, samples, _, _ = scraped
    assert value(samples, "request_predict_seconds_count", model_name=NAME) >= 3
    assert value(samples, "request_explain_seconds_count", model_name=NAME) == 1
    assert value(samples, "request_preprocess_seconds_count", model_name=NAME) >= 4


def test_batches_scores_and_alarms(scraped) -> None:
    _, samples, windows, alarms = scraped
    assert 1 <= value(samples, "shopfloor_model_batch_size_count", model_name=NAME) <= 3
    assert value(samples, "shopfloor_model_batch_size_sum", model_name=NAME) == windows  # every row in one call
    score = {"model_name": NAME, "output": "failure_probability"}
    assert value(samples, "shopfloor_prediction_score_count", **score) == windows
    assert 0 <= value(samples, "shopfloor_prediction_score_sum", **score) <= windows
    assert value(samples, "shopfloor_prediction_score_bucket", **score, le="1.0") == windows  # probabilities
    assert value(samples, "shopfloor_predictions_total", model_name=NAME) == windows
    assert value(samples, "shopfloor_alarms_total", model_name=NAME, output="fails_within_horizon") == alarms


def test_payload_log_and_model_gauges(scraped) -> None:
    _, samples, _, _ = scraped
    assert value(samples, "shopfloor_payload_log_enabled", model_name=NAME) == 1
    assert value(samples, "shopfloor_payload_log_recorded_total", model_name=NAME) == 3  # the answered predicts
    assert value(samples, "shopfloor_payload_log_written_total", model_name=NAME) == 3
    assert value(samples, "shopfloor_payload_log_pending_records", model_name=NAME) == 0
    for counter in ("dropped", "failed_writes", "spooled", "unspooled"):
        assert value(samples, f"shopfloor_payload_log_{counter}_total", model_name=NAME) == 0, counter
    info = {"model_name": NAME, "model_version": VERSION, "model_class": "WindowModel", "runtime": "keras"}
    assert value(samples, "shopfloor_model_info", **info) == 1
    assert value(samples, "shopfloor_model_ready", model_name=NAME) == 1
    assert 0 < value(samples, "shopfloor_model_load_duration_seconds", model_name=NAME) < 300
    loaded_at = value(samples, "shopfloor_model_loaded_timestamp_seconds", model_name=NAME)
    assert loaded_at is not None and time.time() - 3600 < loaded_at <= time.time()


def test_a_second_app_in_the_process_has_its_own_collector(served) -> None:
    """Apps built again (tests, a restart in process) register nothing twice; no logger: only ``enabled`` 0."""
    response = TestClient(build_app(served)).get("/metrics")  # no token: reading metrics is open
    assert response.status_code == 200
    text = response.text
    assert f'shopfloor_payload_log_enabled{{model_name="{NAME}"}} 0.0' in text
    assert "shopfloor_payload_log_recorded_total" not in text
    assert "shopfloor_requests_total" in text and "request_predict_seconds" in text


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/v1/models/{NAME}:predict", (NAME, "v1", "predict")),
        (f"/v2/models/{NAME}/versions/7/infer", (NAME, "v2", "predict")),
        (f"/v2/models/{NAME}/explain", (NAME, "v2", "explain")),
        (f"/v2/models/{NAME}/ready", (NAME, "v2", "ready")),
        (f"/v2/models/{NAME}", (NAME, "v2", "metadata")),
        ("/v2/models/anything-a-client-sends/infer", ("unknown", "v2", "predict")),
        ("/v2/health/ready", ("", "v2", "health")),
        ("/v1/payload-log", ("", "none", "payload_log")),
        ("/", ("", "none", "health")),
        ("/wp-login.php", ("", "none", "other")),
    ],
)
def test_label_values_are_bounded(path: str, expected: tuple[str, str, str]) -> None:
    assert classify(path, lambda name: name == NAME) == expected


def test_alarm_rate_counts_alarms_against_predictions() -> None:
    name = "rate-check"
    arrays = {"anomaly_score": np.array([0.5, 2.5, 7.0], np.float32), "anomalous": np.array([False, True, True])}
    observe_outputs(name, arrays)
    samples = parse(generate_latest().decode())
    assert value(samples, "shopfloor_predictions_total", model_name=name) == 3
    assert value(samples, "shopfloor_alarms_total", model_name=name, output="anomalous") == 2
    assert value(samples, "shopfloor_prediction_score_bucket", model_name=name, output="anomaly_score", le="3.0") == 2
