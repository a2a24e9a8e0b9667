"""The monitoring loop's events for people: a plant alert, a retrain awaiting approval, an approval decided.

Built here from what the loop decided (``shopfloor.contracts.events`` is the schema, ``shopfloor.common.alerts``
delivers them); published by the monitoring step, ``shopfloor monitor`` and ``shopfloor approve|reject`` (and the
approval listener) when ``monitor.alerts`` names a channel. Each id is fixed by the fact: a plant alert by model
version and day (hourly runs that keep seeing an abnormal plant raise one alert a day, a receiver drops the rest),
a request by its id, a decision by the request and its outcome. In a fleet, a request and its decision name the
sites they are about (the event's ``sites``; none = the fleet as a whole).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from shopfloor.common.alerts import answer_address
from shopfloor.common.config import AlertsConfig
from shopfloor.contracts.events import Event, make_event, publish_event

if TYPE_CHECKING:
    from shopfloor.components.monitor.monitor import MonitoringRun
    from shopfloor.components.monitor.policy import ApprovalRequest

__all__ = ["decided_event", "decision_event", "publish_decided", "publish_monitor_events"]


def decision_event(
    run: MonitoringRun, model_name: str, alerts: AlertsConfig, today: dt.date | None = None
) -> Event | None:
    """The event a monitoring run's decision calls for: a plant alert or an approval request; else none."""
    decision, version = run.decision, run.reference.model_version
    if decision.action == "plant-alert":
        day = (today or dt.datetime.now(dt.UTC).date()).isoformat()
        health = run.result.health
        return make_event(
            "plant-alert",
            model_name,
            f"{version}\n{day}",
            decision.reason,
            model_version=version,
            alarm_rate=round(health.alarm_rate, 6) if health else None,
            max_alarm_rate=health.max_alarm_rate if health else None,
            day=day,
        )
    if decision.action == "request-approval" and decision.request_id:
        answers = answer_address(alerts, model_name) if alerts.kind in ("mqtt", "nats", "amqp") else None
        return make_event(
            "approval-requested",
            model_name,
            decision.request_id,
            decision.reason,
            model_version=version,
            sites=decision.sites,
            request_id=decision.request_id,
            answer_to=answers,
            approve_with=f"shopfloor approve {decision.request_id} --by NAME --note WHY",
        )
    return None


def publish_monitor_events(run: MonitoringRun, model_name: str, alerts: AlertsConfig) -> Event | None:
    """Publish the run's event when a channel is configured; returns the event (delivered now or kept for later)."""
    event = decision_event(run, model_name, alerts) if alerts.kind != "none" else None
    if event is not None:
        publish_event(alerts, event)
    return event


def decided_event(request: ApprovalRequest) -> Event:
    """The ``approval-decided`` event of a request an operator approved or rejected."""
    verb = "approved" if request.status == "approved" else "rejected"
    sites = f" (sites {', '.join(request.sites)})" if request.sites else ""
    return make_event(
        "approval-decided",
        request.model_name,
        f"{request.id}\n{request.status}",
        f"{request.id}{sites} {verb} by {request.decided_by}: {request.note}",
        sites=request.sites,
        request_id=request.id,
        status=request.status,
        decided_by=request.decided_by,
        decided_at=request.decided_at,
        note=request.note,
    )


def publish_decided(request: ApprovalRequest, alerts: AlertsConfig) -> Event | None:
    """Publish an ``approval-decided`` event when a channel is configured."""
    if alerts.kind == "none":
        return None
    event = decided_event(request)
    publish_event(alerts, event)
    return event
