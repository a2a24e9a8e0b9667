"""The monitoring loop's events reach a real webhook: a plant alert (once a day per version), an approval request
naming where to answer, a decision; nothing without a channel; and the report links to the Grafana dashboard."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from shopfloor.common.config import DASHBOARD_URL, AlertsConfig, RetrainPolicy
from shopfloor.components.deploy.local_target import free_port
from shopfloor.components.monitor.alerts import decision_event, publish_decided, publish_monitor_events
from shopfloor.components.monitor.policy import Decision, RetrainState, decide
from shopfloor.components.monitor.report import dashboard_link
from tests.common.test_alerts import WebhookServer

ROOT = Path(__file__).resolve().parents[3]


def monitoring_run(decision: Decision, alarm_rate: float | None = None) -> Any:
    """What ``decision_event`` reads of a ``MonitoringRun``: the decision, the version, plant health."""
    health = SimpleNamespace(alarm_rate=alarm_rate, max_alarm_rate=0.1) if alarm_rate is not None else None
    return SimpleNamespace(
        decision=decision,
        reference=SimpleNamespace(model_version="v-0123456789ab"),
        result=SimpleNamespace(health=health),
    )


def test_the_loops_events_reach_the_webhook_once_each(tmp_path: Path) -> None:
    server = WebhookServer(free_port())
    server.start()
    try:
        alerts = AlertsConfig(kind="webhook", url=f"http://127.0.0.1:{server.port}/", outbox=str(tmp_path / "out"))
        state = RetrainState(str(tmp_path / "state"), "anomaly-detection")
        alert = monitoring_run(Decision("plant-alert", "38% of windows in alarm; inspect the plant"), alarm_rate=0.38)
        for _ in range(2):  # the hourly run sees it again: the same fact, the same id
            publish_monitor_events(alert, "anomaly-detection", alerts)
        requested = decide(True, True, "drift in 2 of 5 sensors", RetrainPolicy(mode="approval"), state)
        publish_monitor_events(monitoring_run(requested), "anomaly-detection", alerts)
        publish_monitor_events(monitoring_run(Decision("none", "no drift")), "anomaly-detection", alerts)
        assert requested.request_id is not None
        publish_decided(state.decide(requested.request_id, False, "olga", "sensor was swapped"), alerts)
        posted = [json.loads(body) for body in server.received()]
        assert [p["type"] for p in posted] == ["plant-alert", "plant-alert", "approval-requested", "approval-decided"]
        assert posted[0]["id"] == posted[1]["id"]  # the receiver keeps one (Idempotency-Key)
        assert posted[0]["details"]["alarm_rate"] == 0.38 and posted[0]["model_version"] == "v-0123456789ab"
        assert posted[2]["details"]["request_id"] == requested.request_id
        assert posted[2]["details"]["approve_with"].startswith(f"shopfloor approve {requested.request_id}")
        assert "answer_to" not in posted[2]["details"]  # a webhook carries no answers
        assert posted[3]["details"] | {"decided_at": None} == {
            "request_id": requested.request_id,
            "status": "rejected",
            "decided_by": "olga",
            "decided_at": None,
            "note": "sensor was swapped",
        }
        assert posted[3]["summary"] == f"{requested.request_id} rejected by olga: sensor was swapped"
    finally:
        server.stop()


def test_no_channel_no_event_and_a_new_day_is_a_new_alert(tmp_path: Path) -> None:
    alert = monitoring_run(Decision("plant-alert", "abnormal"), alarm_rate=0.5)
    assert publish_monitor_events(alert, "m", AlertsConfig(outbox=str(tmp_path))) is None
    mqtt = AlertsConfig(kind="mqtt", url="mqtt://h", prefix="north")
    monday = decision_event(alert, "m", mqtt, today=dt.date(2026, 11, 23))
    tuesday = decision_event(alert, "m", mqtt, today=dt.date(2026, 11, 24))
    assert monday is not None and tuesday is not None and monday.id != tuesday.id
    asked = decision_event(monitoring_run(Decision("request-approval", "drift", "m-1")), "m", mqtt)
    assert asked is not None and asked.details["answer_to"] == "north/answers/m"


def test_the_report_links_to_the_imported_dashboard() -> None:
    dashboard = json.loads((ROOT / "infra/grafana/shopfloor-dashboard.json").read_text())
    assert DASHBOARD_URL.endswith(f"/d/{dashboard['uid']}")
    assert dashboard_link(DASHBOARD_URL, "anomaly-detection") == f"{DASHBOARD_URL}?var-model_name=anomaly-detection"
    assert dashboard_link("https://g/d/x?orgId=2", "a b") == "https://g/d/x?orgId=2&var-model_name=a+b"
    assert dashboard_link("", "m") == ""
