"""A real monitoring run's results as metrics: pushed over HTTP to a Pushgateway-compatible receiver, and written
to the KFP Metrics artifact by the component; a receiver that is down costs a warning, never the run."""

from __future__ import annotations

import logging
import math
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shopfloor.common.config import MonitorConfig
from shopfloor.components.monitor.metrics import (
    DECISIONS,
    MONITOR_METRICS,
    monitor_metrics,
    publish_monitor_metrics,
    push_monitor_metrics,
)
from shopfloor.components.monitor.monitor import MonitoringRun, run_monitoring
from shopfloor.contracts.model_store import ModelStore
from tests.components.monitor.test_monitor import _served_with_labels

PUSH_PATH = re.compile(r"/metrics/job/(?P<job>[^/]+)/model_name/(?P<model>[^/]+)")


class Receiver:
    """A Pushgateway-compatible endpoint on a free loopback port: keeps every pushed body by job and model."""

    def __init__(self) -> None:
        pushes: list[tuple[str, str, str, str]] = []
        self.pushes = pushes

        class Handler(BaseHTTPRequestHandler):
            def _push(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                found = PUSH_PATH.fullmatch(self.path)
                if found is None:
                    self.send_response(404)
                else:
                    pushes.append((self.command, found["job"], found["model"], body))
                    self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            do_PUT = do_POST = _push

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture(scope="module")
def monitored(published_detector, anomaly_windows, tmp_path_factory) -> tuple[Path, Path, Path]:
    """The anomaly model served on its test windows (payload logged), with flipped labels: store, logs, labels."""
    folder = tmp_path_factory.mktemp("monitored")
    labels = _served_with_labels(published_detector, anomaly_windows, folder, flip=True)
    store = folder / "store"
    shutil.copytree(published_detector, store / "ad" / published_detector.name)
    ModelStore(str(store)).set_latest("ad", published_detector.name)
    return store, folder / "logs", labels


SETTINGS = {"min_rows": 50, "retrain": {"mode": "auto", "cooldown_hours": 0}}


@pytest.fixture(scope="module")
def checked(monitored, tmp_path_factory) -> MonitoringRun:
    """One monitoring run over the served windows and their labels."""
    store, logs, labels = monitored
    settings = MonitorConfig.model_validate(SETTINGS)
    state = tmp_path_factory.mktemp("state")
    return run_monitoring(str(store), str(logs), str(state), "ad", settings, 1, str(labels))


def samples(body: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a pushed Prometheus text body, keyed by name and labels; each family must be a gauge."""
    found = {}
    for family in text_string_to_metric_families(body):
        assert family.type == "gauge" and family.name in MONITOR_METRICS, family.name
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def test_a_monitoring_run_pushes_its_results_to_a_pushgateway(checked, receiver) -> None:
    result = checked.result
    assert result.health is not None and result.performance is not None and result.drift.enough_data
    push_monitor_metrics(checked, "ad", receiver.url)
    [(method, job, model, body)] = receiver.pushes
    assert (method, job, model) == ("PUT", "shopfloor-monitor", "ad")
    pushed = samples(body)

    def gauge(name: str, **labels: str) -> float:
        return pushed[(name, frozenset({"model_name": "ad", **labels}.items()))]

    sensors = list(checked.reference.features)
    assert sensors and set(result.drift.features) == set(sensors)
    for sensor in sensors:
        feature = result.drift.features[sensor]
        assert gauge("shopfloor_monitor_sensor_psi", sensor=sensor) == pytest.approx(feature.psi)
        assert gauge("shopfloor_monitor_sensor_ks_statistic", sensor=sensor) == pytest.approx(feature.ks_statistic)
        assert gauge("shopfloor_monitor_sensor_wasserstein_normalized", sensor=sensor) == pytest.approx(
            feature.wasserstein_normalized
        )
        assert gauge("shopfloor_monitor_sensor_drifted", sensor=sensor) == float(feature.drifted)
    assert gauge("shopfloor_monitor_share_drifted") == pytest.approx(result.drift.share_drifted)
    assert gauge("shopfloor_monitor_drifted") == float(result.drifted)
    assert gauge("shopfloor_monitor_readings") == result.drift.rows > 0
    assert gauge("shopfloor_monitor_enough_data") == 1.0
    assert gauge("shopfloor_monitor_prediction_psi") == pytest.approx(result.predictions.psi)
    assert gauge("shopfloor_monitor_alarm_rate") == pytest.approx(result.health.alarm_rate)
    assert result.health.alarm_rate > 0
    assert gauge("shopfloor_monitor_alarm_rate_limit") == pytest.approx(0.1)
    assert gauge("shopfloor_monitor_labelled_windows") == result.performance.labelled
    assert gauge("shopfloor_monitor_performance_degraded") == 1.0  # the labels were flipped
    for metric in ("roc_auc", "pr_auc", "f1", "recall"):
        assert gauge("shopfloor_monitor_performance", metric=metric) == pytest.approx(
            result.performance.metrics[metric]
        )
    assert gauge("shopfloor_monitor_performance", metric="roc_auc") < 0.5
    for action in DECISIONS:
        assert gauge("shopfloor_monitor_decision", decision=action) == float(action == checked.decision.action)
    assert gauge("shopfloor_monitor_last_run_timestamp_seconds") > 1.7e9


def test_the_flat_metrics_name_every_sensor_and_the_decision(checked) -> None:
    values = monitor_metrics(checked)
    assert all(isinstance(v, float) and math.isfinite(v) for v in values.values())
    for sensor, feature in checked.result.drift.features.items():
        assert values[f"psi_{sensor}"] == pytest.approx(feature.psi, abs=1e-6)
        assert values[f"drifted_{sensor}"] == float(feature.drifted)
    assert values["share_drifted"] == pytest.approx(checked.result.drift.share_drifted, abs=1e-4)
    assert values["alarm_rate"] == pytest.approx(checked.result.health.alarm_rate, abs=1e-6)
    assert values["roc_auc_on_labels"] == pytest.approx(checked.result.performance.metrics["roc_auc"], abs=1e-6)
    decided = [k for k in values if k.startswith("decision_") and values[k] == 1.0]
    assert decided == [f"decision_{checked.decision.action.replace('-', '_')}"]


def test_the_component_writes_the_metrics_artifact_and_pushes(monitored, receiver, tmp_path) -> None:
    from kfp.dsl import HTML, Metrics

    from shopfloor.components.monitor.component import check_drift

    store, logs, labels = monitored
    metrics = Metrics(name="drift_metrics", uri=str(tmp_path / "metrics"))
    report = HTML(name="report", uri=str(tmp_path / "report.html"))
    monitor = MonitorConfig.model_validate({**SETTINGS, "push_gateway": receiver.url}).model_dump()
    action, sites = check_drift.python_func(
        model_name="ad",
        model_store_uri=str(store),
        payload_log_uri=str(logs),
        state_uri=str(tmp_path / "state"),
        monitor=monitor,
        report=report,
        drift_metrics=metrics,
        labels_uri=str(labels),
    )
    assert (tmp_path / "report.html").read_text().startswith("<") and sites == []  # not a fleet
    logged = metrics.metadata
    assert logged[f"decision_{action.replace('-', '_')}"] == 1.0
    assert logged["readings"] > 0 and 0 <= logged["share_drifted"] <= 1
    assert {"alarm_rate", "roc_auc_on_labels", "labelled_windows", "performance_degraded"} <= set(logged)
    assert any(k.startswith("psi_") for k in logged)
    [(_, _, model, body)] = receiver.pushes
    assert model == "ad"
    pushed = samples(body)
    assert pushed[("shopfloor_monitor_decision", frozenset({"model_name": "ad", "decision": action}.items()))] == 1.0
    share = pushed[("shopfloor_monitor_share_drifted", frozenset({"model_name": "ad"}.items()))]
    assert share == pytest.approx(logged["share_drifted"], abs=1e-4)


def test_the_pushgateway_comes_from_the_environment_when_the_config_names_none(checked, receiver, monkeypatch) -> None:
    monkeypatch.delenv("SHOPFLOOR_PUSHGATEWAY_URL", raising=False)
    assert not publish_monitor_metrics(checked, "ad") and not receiver.pushes
    monkeypatch.setenv("SHOPFLOOR_PUSHGATEWAY_URL", receiver.url)
    assert publish_monitor_metrics(checked, "ad", "")
    assert [p[2] for p in receiver.pushes] == ["ad"]


def test_a_pushgateway_that_is_down_is_one_warning_not_a_failed_run(checked, caplog) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="shopfloor"):
        assert not publish_monitor_metrics(checked, "ad", f"http://127.0.0.1:{port}")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not pushed to http://127.0.0.1:" in warnings[0].getMessage()


def test_shopfloor_monitor_pushes_to_the_configured_pushgateway(monitored, receiver, tmp_path, capsys) -> None:
    from shopfloor.app.cli.monitor import MonitorRequest, monitor

    store, logs, _ = monitored
    config = tmp_path / "plant.yaml"
    config.write_text(
        f"model_name: ad\nmonitor: {{min_rows: 50, push_gateway: '{receiver.url}', retrain: {{mode: 'off'}}}}\n"
    )
    request = MonitorRequest(
        scenario="anomaly-detection",
        config=str(config),
        work_dir=tmp_path / "work",
        model_store=str(store),
        payload_log=str(logs),
        days=1,
    )
    assert monitor(request) == 0
    out = capsys.readouterr().out
    assert f"metrics pushed to: {receiver.url}" in out
    [(_, job, model, body)] = receiver.pushes
    assert (job, model) == ("shopfloor-monitor", "ad")
    decided = [dict(k)["decision"] for (n, k), v in samples(body).items() if n == "shopfloor_monitor_decision" and v]
    assert len(decided) == 1 and f"decision: {decided[0]} - " in out
