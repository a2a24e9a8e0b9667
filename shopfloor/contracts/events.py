"""The events the production loop publishes for people, and the approval answers it accepts back.

One schema, ``shopfloor.event/v1``, for every channel (MQTT, NATS, AMQP, a webhook): a UTF-8 JSON object::

    {"schema": "shopfloor.event/v1", "id": "ev-3f2a...", "type": "approval-requested",
     "time": "2026-11-26T09:30:00Z", "model": "predictive-maintenance", "model_version": "v-1a2b3c4d5e6f",
     "summary": "drift in 3 of 7 sensors ...; approval requested as pm-20261126-0930-a1b2",
     "details": {"request_id": "pm-20261126-0930-a1b2", ...}}

``sites`` (optional, a list of site names) says which sites of a fleet an event is about: the sites that drifted
or degraded in an ``approval-requested`` event, the sites an approved retrain is for in ``approval-decided``.
Absent (or empty) means the fleet as a whole, or a model that is not a fleet's; it is left out of the JSON then,
so events of other models read as before.

``id`` is deterministic for the same fact (the hash of type, model and what identifies the fact: a request id,
a model version, a day), so an event sent twice (a retry after a lost acknowledgement, a re-run after a crash)
carries the same id and a receiver drops the second: JetStream by its ``Nats-Msg-Id``, a webhook by its
``Idempotency-Key``, our approval listener by its own record of ids. ``time`` is when it was published.
A reader ignores fields it does not know; a new *required* field or a changed meaning is a new schema version.

An operator answers an ``approval-requested`` event with an ``approval-answer``: ``request_id``, ``approve``
(true/false), ``note`` (why) and ``token`` (a bearer token with the operator role, checked by the listener),
optionally ``id`` (else derived from the answer) and ``by`` (must be the token's identity when given).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any, Literal, get_args

from shopfloor.common.alerts import Outgoing, Publisher
from shopfloor.common.config import AlertsConfig
from shopfloor.common.errors import DataValidationError

__all__ = [
    "EVENT_SCHEMA",
    "EVENT_TYPES",
    "ApprovalAnswer",
    "Event",
    "EventType",
    "event_id",
    "gate_failed_event",
    "make_event",
    "parse_answer",
    "parse_event",
    "publish_event",
    "rollback_event",
]

EVENT_SCHEMA = "shopfloor.event/v1"
"""The schema name and version every event and answer carries."""

EventType = Literal["plant-alert", "approval-requested", "approval-decided", "gate-failed", "rollback"]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
"""What the loop publishes: an abnormal plant, a retrain awaiting approval, a decision on one, a model that failed
its quality gate, a deploy that was rolled back."""

ANSWER_TYPE = "approval-answer"
_MAX_NOTE = 2048
_MAX_ANSWER_BYTES = 16 * 1024


def event_id(event_type: str, model: str, key: str) -> str:
    """The id of a fact: the same type, model and key give the same id (a receiver drops a repeated id)."""
    digest = hashlib.sha256(f"{EVENT_SCHEMA}\n{event_type}\n{model}\n{key}".encode()).hexdigest()
    return f"ev-{digest[:32]}"


def _now_iso() -> str:
    """The current time, ISO 8601 UTC with a ``Z``."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclasses.dataclass(frozen=True)
class Event:
    """One published event (fields as in the module docstring)."""

    id: str
    type: str
    time: str
    model: str
    summary: str
    model_version: str = ""
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    schema: str = EVENT_SCHEMA
    sites: tuple[str, ...] = ()  # the fleet's sites the event is about; () = the fleet as a whole / not a fleet

    def to_json(self) -> bytes:
        """The event as compact UTF-8 JSON, keys sorted (what goes on the wire); ``sites`` only when there are any."""
        document = dataclasses.asdict(self)
        if not self.sites:
            del document["sites"]
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    def outgoing(self) -> Outgoing:
        """The event as the channel delivers it: id, model and type to route by, and its JSON."""
        return Outgoing(id=self.id, model=self.model, type=self.type, body=self.to_json())


def publish_event(alerts: AlertsConfig, event: Event) -> bool:
    """Publish ``event`` on the configured channel (nothing when none is); never raises for a channel that is down.

    Returns:
        Whether it was delivered now (else it waits in the outbox for the next publish).
    """
    return Publisher(alerts).publish(event.outgoing())


def make_event(
    event_type: EventType,
    model: str,
    key: str,
    summary: str,
    *,
    model_version: str = "",
    sites: tuple[str, ...] = (),
    **details: Any,
) -> Event:
    """An event of ``event_type`` whose id is fixed by type, model and ``key``; ``summary`` is one human line."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    return Event(
        id=event_id(event_type, model, key),
        type=event_type,
        time=_now_iso(),
        model=model,
        summary=" ".join(summary.split()),
        model_version=model_version,
        details={name: value for name, value in details.items() if value is not None},
        sites=tuple(sites),
    )


def gate_failed_event(model: str, model_version: str, gate: dict[str, Any]) -> Event:
    """A trained version that failed its quality gate (``gate``: the blessing's ``passed`` and ``checks``)."""
    failed = [check for check in gate.get("checks", []) if not check.get("passed", True)]
    rules = ", ".join(f"{c['metric']} {c['value']:.4g} (needs {c['op']} {c['threshold']})" for c in failed)
    return make_event(
        "gate-failed",
        model,
        model_version,
        f"{model} {model_version} failed its quality gate" + (f": {rules}" if rules else ""),
        model_version=model_version,
        failed_checks=failed,
    )


def rollback_event(model: str, model_version: str, reason: str) -> Event:
    """A deploy of ``model_version`` that did not become ready and was rolled back (``reason``: what to)."""
    return make_event(
        "rollback", model, model_version, f"{model} {model_version} not deployed: {reason}", model_version=model_version
    )


def _document(payload: bytes | str, source: str) -> dict[str, Any]:
    """A payload as a JSON object, or a one-line error."""
    if len(payload) > _MAX_ANSWER_BYTES:
        raise DataValidationError(source, f"{len(payload)} bytes", expected=f"at most {_MAX_ANSWER_BYTES} bytes")
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):
        raise DataValidationError(source, "not JSON", expected="a UTF-8 JSON object") from None
    if not isinstance(document, dict):
        raise DataValidationError(source, "not a JSON object", expected="a UTF-8 JSON object")
    if document.get("schema") != EVENT_SCHEMA:
        raise DataValidationError(source, f"{document.get('schema')!r}", field="schema", expected=EVENT_SCHEMA)
    return document


def _text(document: dict[str, Any], name: str, source: str, expected: str, *, required: bool = True) -> str:
    """A string field, stripped; a missing or non-string one is a one-line error naming it."""
    value = document.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise DataValidationError(source, "missing or not text", field=name, expected=expected)
    return value.strip()


def _sites(document: dict[str, Any], source: str) -> tuple[str, ...]:
    """The optional ``sites`` list of site names; absent is () (the fleet as a whole, or not a fleet)."""
    sites = document.get("sites", [])
    if not isinstance(sites, list) or not all(isinstance(site, str) and site.strip() for site in sites):
        raise DataValidationError(source, f"{sites!r}", field="sites", expected="a list of site names")
    return tuple(site.strip() for site in sites)


def parse_event(payload: bytes | str, source: str = "event") -> Event:
    """An event read back from the wire; a field that is wrong is one line naming it."""
    document = _document(payload, source)
    if document.get("type") not in EVENT_TYPES:
        raise DataValidationError(source, f"{document.get('type')!r}", field="type", expected=" | ".join(EVENT_TYPES))
    details = document.get("details", {})
    if not isinstance(details, dict):
        raise DataValidationError(source, "not an object", field="details", expected="a JSON object")
    return Event(
        id=_text(document, "id", source, "the event id"),
        type=document["type"],
        time=_text(document, "time", source, "ISO 8601 UTC"),
        model=_text(document, "model", source, "the model name"),
        summary=_text(document, "summary", source, "one line", required=False),
        model_version=_text(document, "model_version", source, "a version", required=False),
        details=details,
        sites=_sites(document, source),
    )


@dataclasses.dataclass(frozen=True)
class ApprovalAnswer:
    """An operator's answer to an approval request, as it arrived (the token is checked by the listener)."""

    id: str
    model: str
    request_id: str
    approve: bool
    note: str
    token: str = dataclasses.field(repr=False)  # never printed
    by: str = ""


def parse_answer(payload: bytes | str, source: str = "approval answer") -> ApprovalAnswer:
    """An ``approval-answer`` from the wire; anything else is one line naming the field and what was expected."""
    document = _document(payload, source)
    if document.get("type") != ANSWER_TYPE:
        raise DataValidationError(source, f"{document.get('type')!r}", field="type", expected=ANSWER_TYPE)
    approve = document.get("approve")
    if not isinstance(approve, bool):
        raise DataValidationError(source, "missing or not true/false", field="approve", expected="true or false")
    model = _text(document, "model", source, "the model name")
    request_id = _text(document, "request_id", source, "the id of a pending approval request")
    note = _text(document, "note", source, "why it is approved or rejected")
    if len(note) > _MAX_NOTE:
        raise DataValidationError(source, f"{len(note)} characters", field="note", expected=f"<= {_MAX_NOTE}")
    token = _text(document, "token", source, "a bearer token with the operator role")
    by = _text(document, "by", source, "the token's identity", required=False)
    answer_id = _text(document, "id", source, "an id", required=False)
    if not answer_id:  # the same answer sent twice is the same answer
        answer_id = event_id(ANSWER_TYPE, model, f"{request_id}\n{approve}\n{note}\n{by}")
    return ApprovalAnswer(
        id=answer_id, model=model, request_id=request_id, approve=approve, note=note, token=token, by=by
    )
