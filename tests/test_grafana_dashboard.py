"""The Grafana dashboard plots only metrics that exist: every name in its PromQL is one the model server exposes on
``GET /metrics`` (scraped from a real app after real predicts) or one a monitoring run pushes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from shopfloor.components.monitor.metrics import MONITOR_METRICS

DASHBOARD = Path(__file__).resolve().parents[1] / "infra" / "grafana" / "shopfloor-dashboard.json"
METRIC = re.compile(r"shopfloor_[a-z_]+")
NAME = "pm-dashboard"  # a name of its own: the request metrics live in the process's default registry


def panels(dashboard: dict) -> list[dict]:
    """Every panel, rows' collapsed panels included."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def expressions(dashboard: dict) -> list[str]:
    """The PromQL expression of every panel target."""
    return [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]


def metric_names(expression: str) -> set[str]:
    """The metric names in a PromQL expression, histogram series named by their histogram."""
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in METRIC.findall(expression)}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def scraped_labels(published_model, trained_windows, folder: Path, name: str) -> dict[str, set[str]]:
    """Family and sample names a real app serves on ``GET /metrics`` after predicts, a bad request and a 404, each
    with the label names its samples carry."""
    from shopfloor.serving.server import build_app, load_window_model
    from tests.serving.test_server import as_json

    model = load_window_model(
        str(published_model), name, payload_log_uri=str(folder / "logs"), payload_spool=folder / "spool"
    )
    x = trained_windows.part("test").x
    with TestClient(build_app(model, payload_logger=model.payload_logger)) as client:
        assert client.post(f"/v1/models/{name}:predict", json={"instances": as_json(x[:3])}).status_code == 200
        assert client.post(f"/v1/models/{name}:predict", json={"instances": "not windows"}).status_code == 400
        model.payload_logger.flush()
        response = client.get("/metrics")
    assert response.status_code == 200
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(response.text):
        labels.setdefault(family.name, set())
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
            labels[family.name].update(sample.labels)
    return labels


@pytest.fixture(scope="module")
def exposed(published_model, trained_windows, tmp_path_factory) -> set[str]:
    """Family and sample names a real app serves on ``GET /metrics`` after predicts, a bad request and a 404."""
    return set(scraped_labels(published_model, trained_windows, tmp_path_factory.mktemp("dashboard"), NAME))


def test_every_dashboard_metric_is_exposed_by_the_server_or_pushed_by_the_monitor(dashboard, exposed) -> None:
    used = set().union(*(metric_names(e) for e in expressions(dashboard)))
    unknown = sorted(name for name in used if name not in exposed and name not in MONITOR_METRICS)
    assert not unknown, f"the dashboard plots metrics nothing exposes: {unknown}"
    served = {name for name in used if name.startswith("shopfloor_") and name not in MONITOR_METRICS}
    assert {
        "shopfloor_requests_total",
        "shopfloor_request_duration_seconds",
        "shopfloor_request_errors_total",
        "shopfloor_prediction_score",
        "shopfloor_alarms_total",
        "shopfloor_predictions_total",
        "shopfloor_model_batch_size",
        "shopfloor_payload_log_pending_records",
        "shopfloor_payload_log_dropped_total",
    } <= served
    assert {
        "shopfloor_monitor_sensor_psi",
        "shopfloor_monitor_share_drifted",
        "shopfloor_monitor_alarm_rate",
        "shopfloor_monitor_performance",
        "shopfloor_monitor_decision",
    } <= used


def test_the_metric_names_are_read_out_of_promql() -> None:
    expression = (
        'histogram_quantile(0.99, sum by (le) (rate(shopfloor_request_duration_seconds_bucket{route="predict"}[5m])))'
        " / sum(rate(shopfloor_predictions_total[5m]))"
    )
    assert metric_names(expression) == {"shopfloor_request_duration_seconds", "shopfloor_predictions_total"}


def test_every_panel_queries_the_prometheus_datasource_variable(dashboard) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    assert dashboard["schemaVersion"] >= 38 and dashboard["uid"]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"] and all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in panel["targets"])
        assert all('model_name=~"$model_name"' in t["expr"] for t in panel["targets"]), panel["title"]
