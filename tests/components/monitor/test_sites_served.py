"""Monitoring by site from served payloads: a fleet model's server answers each site on ``<model>-<site>`` and logs
its payloads under that name; the monitor judges each site's traffic against that site's own training readings
and test metrics, names the site that drifted or degraded, and the decision, the approval request, the events,
the metrics and the report carry it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopfloor.common.config import AlertsConfig, MonitorConfig, RetrainPolicy
from shopfloor.components.monitor.alerts import decided_event, decision_event
from shopfloor.components.monitor.metrics import monitor_metrics, monitor_registry
from shopfloor.components.monitor.monitor import MonitoringRun, run_monitoring
from shopfloor.components.monitor.policy import RetrainState, decide
from shopfloor.components.monitor.sites import NO_SITES_IN_PAYLOADS, site_endpoints
from shopfloor.contracts.events import parse_event
from shopfloor.contracts.model_store import ModelStore
from shopfloor.families.predictive_maintenance.evaluation import classification_metrics
from shopfloor.families.scenarios import parse_config

SITES = ("site-a", "site-b")
THRESHOLDS = {"site-a": 0.3, "site-b": 0.25}  # the global model at each site's own threshold
WEAR = {"temperature_c": 1.15, "vibration_mm_s": 1.6, "pressure_bar": 1.4}  # site-b's pumps ageing


def fleet_version(published_model: Path, trained_windows, store: Path) -> Path:
    """The published model as a fleet's: ``fleet.sites`` in its model info, per-site test metrics in its blessing."""
    version = store / "pm" / published_model.name
    shutil.copytree(published_model, version)
    info_path = version / "model" / "shopfloor_model.json"
    info = json.loads(info_path.read_text())
    models = {"global": {site: {"threshold": {"value": THRESHOLDS[site]}} for site in SITES}}
    info["fleet"] = {"strategy": "global", "sites": list(SITES), "strategies": ["global"], "models": models}
    info_path.write_text(json.dumps(info))
    blessing = json.loads((version / "blessing.json").read_text())
    test = trained_windows.part("test")
    scores = np.asarray(blessing["reference_scores"])
    for site in SITES:  # what evaluation writes for a fleet: each site's test metrics at its own threshold
        mine = test.sites == site
        for name, value in classification_metrics(test.failure[mine], scores[mine], THRESHOLDS[site]).items():
            blessing["metrics"][f"site/{site}/{name}"] = value
    (version / "blessing.json").write_text(json.dumps(blessing))
    ModelStore(str(store)).set_latest("pm", version.name)
    return version


def serve(version: Path, logs: Path, traffic: dict[str, np.ndarray], batch: int = 4) -> dict[str, list[str]]:
    """Send each site's windows to its own endpoint of the real server (``pm-<site>``); the request ids by site."""
    from shopfloor.serving.server import load_window_model

    model = load_window_model(str(version), "pm", payload_log_uri=str(logs))
    endpoints = {served.name: served for served in model.site_models}
    assert sorted(endpoints) == [f"pm-{site}" for site in SITES]
    sent: dict[str, list[str]] = {}
    for site, windows in traffic.items():
        for start in range(0, len(windows), batch):
            chunk = windows[start : start + batch]
            request_id = f"{site}-{start}"
            instances = np.where(np.isnan(chunk), None, chunk).tolist()
            endpoints[f"pm-{site}"].predict_now({"instances": instances}, {"x-request-id": request_id})
            sent.setdefault(site, []).append(request_id)
    for served in [model, *model.site_models]:
        served.payload_logger.close()
    return sent


def worn(windows: np.ndarray, features: list[str]) -> np.ndarray:
    """Site-b's windows after months of wear."""
    out = windows.copy()
    for name, factor in WEAR.items():
        out[..., features.index(name)] *= factor
    return out


@pytest.fixture(scope="module")
def drifting(published_model, trained_windows, tmp_path_factory) -> tuple[Path, Path]:
    """A fleet version served by site: site-a as trained, site-b worn. The store and the payload logs."""
    folder = tmp_path_factory.mktemp("drifting")
    version = fleet_version(published_model, trained_windows, folder / "store")
    every = {site: trained_windows.x[trained_windows.sites == site][::2] for site in SITES}
    every["site-b"] = worn(every["site-b"], list(trained_windows.features))
    serve(version, folder / "logs", every)
    return folder / "store", folder / "logs"


@pytest.fixture(scope="module")
def drift_run(drifting, tmp_path_factory) -> MonitoringRun:
    """The pipeline's monitor step on it (no scenario config: the fleet's settings for every site), approval mode."""
    store, logs = drifting
    settings = MonitorConfig(retrain=RetrainPolicy(mode="approval"))
    state = tmp_path_factory.mktemp("state")
    return run_monitoring(str(store), str(logs), str(state), "pm", settings, 1)


def test_the_site_endpoints_are_the_models_fleet_sites(drifting) -> None:
    store, _ = drifting
    version = ModelStore(str(store)).require_latest("pm").uri
    found = site_endpoints(version, "pm", 0.3)
    assert [(e.site, e.model_name, e.threshold) for e in found] == [
        ("site-a", "pm-site-a", 0.3),
        ("site-b", "pm-site-b", 0.25),
    ]


def test_the_worn_site_is_named_in_the_summary_the_decision_and_the_request(drift_run: MonitoringRun) -> None:
    result, decision = drift_run.result, drift_run.decision
    assert sorted(result.sites) == list(SITES)
    assert result.sites["site-b"].drifted and {"temperature_c", "vibration_mm_s"} <= set(
        result.sites["site-b"].report.drifted
    )
    assert not result.sites["site-a"].drifted, result.sites["site-a"].summary
    assert result.drifted and "site site-b: drift in " in result.summary and "site site-a" not in result.summary
    assert NO_SITES_IN_PAYLOADS not in result.summary
    # the fleet is all its traffic: both endpoints' readings, though the fleet endpoint served nothing
    assert result.drift.rows == sum(site.report.rows for site in result.sites.values()) > 0
    assert drift_run.current.requests > 0
    assert decision.action == "request-approval" and decision.sites == ("site-b",)
    assert "site site-b" in decision.reason


def test_the_approval_request_and_its_events_name_the_site(drift_run: MonitoringRun, tmp_path: Path) -> None:
    decision = drift_run.decision
    assert decision.request_id is not None
    alerts = AlertsConfig(kind="webhook", url="http://127.0.0.1:9/", outbox=str(tmp_path / "outbox"))
    event = decision_event(drift_run, "pm", alerts)
    assert event is not None and event.type == "approval-requested" and event.sites == ("site-b",)
    wire = json.loads(event.to_json())
    assert wire["sites"] == ["site-b"] and parse_event(event.to_json()) == event


def test_the_report_and_the_metrics_show_each_site(drift_run: MonitoringRun) -> None:
    assert "<h2>Sites</h2>" in drift_run.report_html
    for site in SITES:
        assert f"<td>{site}</td>" in drift_run.report_html
    values = monitor_metrics(drift_run)
    assert values["site/site-b/drifted"] == 1.0 and values["site/site-a/drifted"] == 0.0
    assert values["site/site-b/readings"] == drift_run.result.sites["site-b"].report.rows
    registry = monitor_registry(drift_run, "pm")
    assert registry.get_sample_value("shopfloor_monitor_site_drifted", {"model_name": "pm", "site": "site-b"}) == 1.0
    assert registry.get_sample_value("shopfloor_monitor_site_drifted", {"model_name": "pm", "site": "site-a"}) == 0.0
    share = registry.get_sample_value("shopfloor_monitor_site_share_drifted", {"model_name": "pm", "site": "site-b"})
    assert share == pytest.approx(drift_run.result.sites["site-b"].report.share_drifted)


def test_a_sites_monitor_overlay_applies_to_its_served_traffic(drifting, tmp_path: Path) -> None:
    store, logs = drifting
    config = parse_config("sites: {site-b: {monitor: {min_share_drifted: 1.0}}}", "fleet.yaml")
    settings = MonitorConfig(retrain=RetrainPolicy(mode="off"))
    checked = run_monitoring(str(store), str(logs), str(tmp_path / "state"), "pm", settings, 1, config=config)
    site_b = checked.result.sites["site-b"]
    assert site_b.report.drifted and not site_b.drifted  # every sensor must drift before site-b counts
    assert checked.decision.sites == ()


def test_a_fleet_config_without_site_endpoints_is_told_so(published_model, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(published_model, store / "pm" / published_model.name)
    ModelStore(str(store)).set_latest("pm", published_model.name)
    config = parse_config("sites: {site-b: {}}", "fleet.yaml")
    checked = run_monitoring(
        str(store), str(tmp_path / "logs"), str(tmp_path / "state"), "pm", MonitorConfig(), 1, config=config
    )
    assert checked.result.summary.endswith(NO_SITES_IN_PAYLOADS) and not checked.result.sites
    assert checked.decision.sites == ()


@pytest.fixture(scope="module")
def labelled(published_model, trained_windows, tmp_path_factory) -> tuple[Path, Path, Path]:
    """Each site's test windows served on its endpoint, and what really happened to them: site-b's as the data
    says; at site-a the world changed, its failures now come where the model sees the least risk."""
    folder = tmp_path_factory.mktemp("labelled")
    version = fleet_version(published_model, trained_windows, folder / "store")
    test = trained_windows.part("test")
    sent = serve(version, folder / "logs", {site: test.x[test.sites == site] for site in SITES})
    scores = np.asarray(json.loads((version / "blessing.json").read_text())["reference_scores"])
    truth = {
        "site-a": (scores[test.sites == "site-a"] <= np.quantile(scores[test.sites == "site-a"], 0.1)).astype(int),
        "site-b": test.failure[test.sites == "site-b"].astype(int),
    }
    rows = []
    for site in SITES:
        for number, request_id in enumerate(sent[site]):
            for index, label in enumerate(truth[site][number * 4 : number * 4 + 4]):
                rows.append({"request_id": request_id, "index": index, "label": int(label)})
    rows.append({"request_id": "never-served", "index": 0, "label": 1})
    pd.DataFrame(rows).to_csv(folder / "labels.csv", index=False)
    return folder / "store", folder / "logs", folder / "labels.csv"


def test_a_site_whose_labels_disagree_is_degraded_and_named(labelled, tmp_path: Path) -> None:
    store, logs, labels = labelled
    settings = MonitorConfig(min_rows=10**6, retrain=RetrainPolicy(mode="auto", cooldown_hours=0))
    checked = run_monitoring(str(store), str(logs), str(tmp_path / "state"), "pm", settings, 1, str(labels))
    by_site = checked.result.site_performance
    assert sorted(by_site) == list(SITES)
    assert by_site["site-a"].degraded and by_site["site-a"].metrics["roc_auc"] < 0.5, by_site["site-a"].summary
    assert not by_site["site-b"].degraded, by_site["site-b"].summary
    assert by_site["site-b"].reference["roc_auc"] == checked.reference.test_metrics["site/site-b/roc_auc"]
    # labels of site requests are the sites'; the fleet endpoint served none, so only the stray label is unmatched
    assert checked.result.performance is not None
    assert checked.result.performance.labelled == 0 and checked.result.performance.unmatched == 1
    assert "site site-a: performance DEGRADED" in checked.result.summary and "site site-b: perf" not in (
        checked.result.summary
    )
    assert checked.decision.action == "retrain" and checked.decision.sites == ("site-a",)
    values = monitor_metrics(checked)
    assert values["site/site-a/performance_degraded"] == 1.0 and values["site/site-b/performance_degraded"] == 0.0
    registry = monitor_registry(checked, "pm")
    labels_ = {"model_name": "pm", "site": "site-a", "metric": "roc_auc"}
    assert registry.get_sample_value("shopfloor_monitor_site_performance", labels_) == pytest.approx(
        by_site["site-a"].metrics["roc_auc"]
    )
    assert "DEGRADED" in checked.report_html


def test_a_sites_own_performance_drop_applies(labelled, tmp_path: Path) -> None:
    store, logs, labels = labelled
    config = parse_config(
        "monitor: {min_rows: 1000000, retrain: {mode: auto, cooldown_hours: 0}}\n"
        "sites: {site-a: {monitor: {max_performance_drop: 1.0}}}",
        "fleet.yaml",
    )
    checked = run_monitoring(
        str(store), str(logs), str(tmp_path / "state"), "pm", config.monitor, 1, str(labels), config=config
    )
    assert not checked.result.site_performance["site-a"].degraded
    assert checked.decision.action == "not-enough-data" and checked.decision.sites == (), checked.decision.reason


def test_an_approval_starts_the_sites_of_its_own_request(tmp_path: Path) -> None:
    state = RetrainState(str(tmp_path / "state"), "pm")
    policy = RetrainPolicy(mode="approval", cooldown_hours=0)
    asked = decide(True, True, "site site-b: drift in 2 of 5 sensors", policy, state, sites=("site-b",))
    assert asked.action == "request-approval" and state.get(asked.request_id).sites == ("site-b",)
    approved = state.decide(asked.request_id, True, "olga", "site-b pumps were replaced")
    event = decided_event(approved)
    assert event.sites == ("site-b",) and "(sites site-b) approved by olga" in event.summary
    # a later run found site-a drifting; the approved request still starts site-b's retrain
    later = decide(True, True, "site site-a: drift in 3 of 7 sensors", policy, state, sites=("site-a",))
    assert later.action == "retrain" and later.request_id == asked.request_id and later.sites == ("site-b",)


def test_requests_and_events_stored_before_sites_still_load(tmp_path: Path) -> None:
    state = RetrainState(str(tmp_path / "state"), "pm")
    old = {
        "id": "pm-20260101-0000-abcd",
        "model_name": "pm",
        "created": "2026-01-01T00:00:00Z",
        "status": "approved",
        "reason": "drift in 3 of 7 sensors",
        "decided_by": "olga",
        "decided_at": "2026-01-01T01:00:00Z",
        "note": "worn bearings",
    }
    folder = tmp_path / "state" / "pm" / "requests"
    folder.mkdir(parents=True)
    (folder / f"{old['id']}.json").write_text(json.dumps(old))
    request = state.get(old["id"])
    assert request.sites == () and dataclasses.asdict(request) == {**old, "expires": None, "sites": ()}
    decision = decide(False, True, "no drift", RetrainPolicy(cooldown_hours=0), state, sites=("site-a",))
    assert decision.action == "retrain" and decision.sites == ()  # the old request: the fleet as a whole
    event = decided_event(request)
    assert "sites" not in json.loads(event.to_json())  # events of a request without sites read as before
    assert parse_event(event.to_json()).sites == ()


def test_the_pipelines_monitor_step_judges_the_sites_too(drifting, tmp_path: Path) -> None:
    from kfp.dsl import HTML, Metrics

    from shopfloor.components.monitor.component import check_drift

    store, logs = drifting
    metrics = Metrics(name="drift_metrics", uri=str(tmp_path / "metrics"))
    report = HTML(name="report", uri=str(tmp_path / "report.html"))
    action, sites = check_drift.python_func(
        model_name="pm",
        model_store_uri=str(store),
        payload_log_uri=str(logs),
        state_uri=str(tmp_path / "state"),
        monitor=MonitorConfig(window_days=1, retrain=RetrainPolicy(mode="approval")).model_dump(),
        report=report,
        drift_metrics=metrics,
    )
    assert (action, sites) == ("request-approval", ["site-b"])  # what the pipeline hands the retrain trigger
    assert metrics.metadata["site/site-b/drifted"] == 1.0 and metrics.metadata["site/site-a/drifted"] == 0.0
    assert "<h2>Sites</h2>" in (tmp_path / "report.html").read_text()
    [request] = RetrainState(str(tmp_path / "state"), "pm").requests()
    assert request.sites == ("site-b",)
