"""infra/prometheus: the alerting rules and the PodMonitor, checked without a Prometheus.

Every rule's expression parses as PromQL (promql-parser, the Rust parser GreptimeDB uses), every metric it reads is
one a real model server exposes after real predicts (or one a monitoring run pushes), and every label it matches or
groups by is one those metrics carry, or a label Prometheus adds to each scraped target.
"""

from __future__ import annotations

import re
from pathlib import Path

import promql_parser
import pytest
import yaml

from shopfloor.components.deploy.kserve_target import METRICS_ANNOTATIONS
from shopfloor.components.monitor.metrics import MONITOR_METRICS
from tests.test_grafana_dashboard import scraped_labels

PROMETHEUS = Path(__file__).resolve().parents[1] / "infra" / "prometheus"
TARGET_LABELS = {"namespace", "pod", "container", "job", "instance", "endpoint", "service"}  # added by the scrape
NAME = "pm-alerts"  # a name of its own: the request metrics live in the process's default registry


def rules() -> list[dict]:
    document = yaml.safe_load((PROMETHEUS / "prometheusrule.yaml").read_text())
    assert (document["apiVersion"], document["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def selectors_and_labels(node) -> tuple[list, set[str]]:
    """The vector selectors of a parsed expression and every label name it matches, groups or joins on."""
    found, labels = [], set()
    if isinstance(node, promql_parser.VectorSelector):
        found.append(node)
        labels.update(matcher.name for matcher in node.matchers.matchers)
    elif isinstance(node, promql_parser.MatrixSelector):
        return selectors_and_labels(node.vector_selector)
    elif isinstance(node, promql_parser.AggregateExpr):
        labels.update(node.modifier.labels if node.modifier else [])
        for child in (node.expr, node.param):
            more, used = selectors_and_labels(child)
            found, labels = found + more, labels | used
    elif isinstance(node, promql_parser.BinaryExpr):
        if node.modifier is not None and node.modifier.matching is not None:
            labels.update(node.modifier.matching.labels)
        for child in (node.lhs, node.rhs):
            more, used = selectors_and_labels(child)
            found, labels = found + more, labels | used
    elif isinstance(node, promql_parser.Call):
        for child in node.args:
            more, used = selectors_and_labels(child)
            found, labels = found + more, labels | used
    elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
        return selectors_and_labels(node.expr)
    return found, labels


@pytest.fixture(scope="module")
def metric_labels(published_model, trained_windows, tmp_path_factory) -> dict[str, set[str]]:
    """Labels of every series a real server exposes, and of every series a monitoring run pushes."""
    labels = scraped_labels(published_model, trained_windows, tmp_path_factory.mktemp("alerts"), NAME)
    for name, (_, extra) in MONITOR_METRICS.items():
        labels[name] = {"model_name", *extra}
    return labels


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_each_alert_reads_only_what_exists(rule: dict, metric_labels: dict[str, set[str]]) -> None:
    expression = promql_parser.parse(rule["expr"])  # a syntax error raises here
    selectors, labels = selectors_and_labels(expression)
    assert selectors, "an alert reads at least one metric"
    available = set(TARGET_LABELS)
    for selector in selectors:
        assert selector.name in metric_labels, f"{selector.name}: no server exposes it and no monitoring run pushes it"
        available |= metric_labels[selector.name]
    assert labels <= available, f"labels no series carries: {sorted(labels - available)}"


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_each_alert_says_how_bad_and_what_it_means(rule: dict) -> None:
    assert re.fullmatch(r"Shopfloor[A-Z][A-Za-z]+", rule["alert"])
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 40
    assert "for" not in rule or re.fullmatch(r"\d+[smh]", rule["for"])


def test_alerts_cover_readiness_errors_latency_payload_logs_and_the_monitoring_loop() -> None:
    read = " ".join(rule["expr"] for rule in rules())
    for metric in (
        "shopfloor_model_ready",
        "shopfloor_request_errors_total",
        "shopfloor_request_duration_seconds_bucket",
        "shopfloor_payload_log_dropped_total",
        "shopfloor_alarms_total",
        "shopfloor_monitor_last_run_timestamp_seconds",
        "shopfloor_monitor_drifted",
    ):
        assert metric in read, metric


def test_pod_monitor_scrapes_the_port_and_path_the_inference_service_announces() -> None:
    document = yaml.safe_load((PROMETHEUS / "podmonitor.yaml").read_text())
    assert (document["apiVersion"], document["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    (endpoint,) = document["spec"]["podMetricsEndpoints"]
    assert str(endpoint["targetPort"]) == METRICS_ANNOTATIONS["prometheus.kserve.io/port"]
    assert endpoint["path"] == METRICS_ANNOTATIONS["prometheus.kserve.io/path"]
    expressions = {e["key"]: e for e in document["spec"]["selector"]["matchExpressions"]}
    assert expressions["component"]["values"] == ["predictor"], "the explainer's requests would count explains twice"
    assert expressions["serving.kserve.io/inferenceservice"]["operator"] == "Exists"


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((PROMETHEUS / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == {p.name for p in PROMETHEUS.glob("*.yaml")} - {"kustomization.yaml"}
