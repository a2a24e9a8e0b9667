"""Rows from the JSON messages of an MQTT topic (``kind: mqtt``), read with the Eclipse paho client.

The reader connects (TLS with the system CAs when ``tls`` is on; username and password only from the environment
variables the block names), subscribes to ``topic`` with ``qos`` and listens for ``duration_s`` seconds or until
``messages`` rows arrived, whichever comes first; the window starts once the broker granted the subscription.
Every network wait is bounded: connecting, the broker's CONNACK and SUBACK by ``timeout_s``, listening by
``duration_s``. A clean session is used: messages published while nobody listens are not read.

Each message is one row: the values at ``fields`` (column -> dotted path, ``a.b.0`` walks objects and lists) or,
without ``fields``, the object's top-level keys; ``topic_levels`` (column -> level index, negative from the end)
adds columns from the topic and wins over a payload key of the same name. Nested objects and lists become JSON text.

Messages that are not usable are **skipped and counted**, not errors: a payload that is not JSON, not a JSON object,
lacks a ``fields`` path (a path holding ``null`` is a missing reading, kept) or a topic without the level a
``topic_levels`` column names. A live topic often carries other traffic (status, heartbeats); one stray message
must not fail a retrain. The count is logged once per read, with the reasons; skipped messages do not count towards
``messages``. When messages arrived but none was usable, that is one ``DataValidationError`` with the first reason.

Rows whose ``time_column`` lies outside the time range are dropped (ingest filters again); a row whose time does
not parse is kept so that validation names it.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import time
import uuid
from typing import Any

import pandas as pd
from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from shopfloor.common.credentials import credential
from shopfloor.common.errors import ConfigError, DataValidationError, StorageError
from shopfloor.common.sources import MqttSource, TimeRange, describe_location

__all__ = ["read_mqtt"]

_LOGGER = logging.getLogger(__name__)
_KEEPALIVE_S = 30
_TICK_S = 0.2
_REFUSED_CREDENTIALS = frozenset({"Bad user name or password", "Not authorized"})


@dataclasses.dataclass
class _Session:
    """What the callbacks learn: connection state, the rows so far and why messages were skipped."""

    spec: MqttSource
    connected: bool = False
    subscribed: bool = False
    refused: str | None = None
    lost: bool = False
    received: int = 0
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    skipped: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    @property
    def full(self) -> bool:
        """Whether the ``messages`` limit is reached."""
        return self.spec.messages is not None and len(self.rows) >= self.spec.messages

    def on_connect(
        self, client: Client, userdata: Any, flags: ConnectFlags, reason: ReasonCode, properties: Properties | None
    ) -> None:
        """The CONNACK: subscribe on success, remember the reason on refusal."""
        if reason.is_failure:
            self.refused = reason.getName()
            return
        self.connected = True
        client.subscribe(self.spec.topic, qos=self.spec.qos)

    def on_subscribe(
        self, client: Client, userdata: Any, mid: int, reasons: list[ReasonCode], properties: Properties | None
    ) -> None:
        """The SUBACK: the window starts, or the broker refused the topic."""
        refused = [reason for reason in reasons if reason.is_failure]
        if refused:
            self.refused = f"subscription to {self.spec.topic} ({refused[0].getName()})"
            return
        self.subscribed = True

    def on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        """A message: a row if usable (until the limit), else its reason counted."""
        if self.full:
            return
        self.received += 1
        row, problem = _message_row(message.topic, message.payload, self.spec)
        if problem is not None:
            self.skipped[problem] += 1
        else:
            self.rows.append(row)

    def on_disconnect(
        self, client: Client, userdata: Any, flags: DisconnectFlags, reason: ReasonCode, properties: Properties | None
    ) -> None:
        """A disconnect before the limit is reached: the read fails (after it, the reader hung up itself)."""
        if not self.full:
            self.lost = True


def read_mqtt(spec: MqttSource, time_range: TimeRange, time_column: str) -> pd.DataFrame:
    """Subscribe to the block's topic for its window and return one row per usable JSON message."""
    where = describe_location(spec)
    session = _Session(spec)
    client = _client(spec, session, where)
    try:
        _connect(client, spec, where)
        _await_subscription(client, session, where)
        _LOGGER.info(
            "%s: subscribed (QoS %d), listening up to %g s%s",
            where,
            spec.qos,
            spec.duration_s,
            f" or {spec.messages} messages" if spec.messages else "",
        )
        _listen(client, session, where)
    finally:
        client.disconnect()
        client.loop(timeout=0.01)
    _report_skipped(session, where)
    return _within(pd.DataFrame(session.rows), time_range, time_column)


def _client(spec: MqttSource, session: _Session, where: str) -> Client:
    """A paho client with the block's credentials, TLS and the callbacks that fill ``session``."""
    client = Client(CallbackAPIVersion.VERSION2, client_id=f"shopfloor-{uuid.uuid4().hex[:12]}", clean_session=True)
    client.connect_timeout = spec.timeout_s
    if spec.username_env or spec.password_env:
        username = credential(spec.username_env, where, "username_env") if spec.username_env else ""
        password = credential(spec.password_env, where, "password_env") if spec.password_env else None
        client.username_pw_set(username, password)
    if spec.tls:
        client.tls_set()  # the system's CA certificates, hostname checked
    client.on_connect = session.on_connect
    client.on_subscribe = session.on_subscribe
    client.on_message = session.on_message
    client.on_disconnect = session.on_disconnect
    return client


def _connect(client: Client, spec: MqttSource, where: str) -> None:
    """Open the connection (bounded by ``timeout_s``); an unreachable broker is one line."""
    try:
        client.connect(spec.host, spec.port, keepalive=_KEEPALIVE_S)
    except (OSError, ValueError) as exc:
        problem = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise StorageError(
            where, f"cannot connect: {problem}", expected=f"an MQTT broker at {spec.host}:{spec.port}"
        ) from None


def _await_subscription(client: Client, session: _Session, where: str) -> None:
    """Run the network loop until the broker accepted the connection and granted the subscription."""
    deadline = time.monotonic() + session.spec.timeout_s
    while not session.subscribed:
        rc = client.loop(timeout=_TICK_S)
        if session.refused is not None:
            _raise_refused(session.refused, where)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or session.lost:
            raise StorageError(where, "the broker closed the connection", expected="an MQTT broker that accepts it")
        if time.monotonic() > deadline:
            stage = "SUBACK" if session.connected else "CONNACK"
            raise StorageError(
                where, f"no {stage} within {session.spec.timeout_s:g} s", expected="an MQTT broker that answers"
            )


def _raise_refused(reason: str, where: str) -> None:
    """A refused connection or subscription: credentials are a config problem, the rest the broker's."""
    if reason in _REFUSED_CREDENTIALS:
        raise ConfigError(
            where,
            f"the broker refused the credentials ({reason})",
            field="username_env/password_env",
            expected="a username and password the broker accepts",
        )
    raise StorageError(where, f"the broker refused: {reason}", expected="a connection and subscription it grants")


def _listen(client: Client, session: _Session, where: str) -> None:
    """Collect messages until ``duration_s`` passed or ``messages`` rows arrived."""
    end = time.monotonic() + session.spec.duration_s
    while not session.full:
        remaining = end - time.monotonic()
        if remaining <= 0:
            return
        rc = client.loop(timeout=min(_TICK_S, remaining))
        if (rc != MQTTErrorCode.MQTT_ERR_SUCCESS or session.lost) and not session.full:
            raise StorageError(
                where, f"connection lost after {session.received} messages", expected="a broker that stays reachable"
            )


def _message_row(topic: str, payload: bytes | bytearray, spec: MqttSource) -> tuple[dict[str, Any], str | None]:
    """A message as a row, or why it is skipped (not JSON, not an object, a missing field or topic level)."""
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):
        return {}, "not JSON"
    if not isinstance(document, dict):
        return {}, "not a JSON object"
    if spec.fields:
        row: dict[str, Any] = {}
        for column, path in spec.fields.items():
            found, value = _at_path(document, path)
            if not found:
                return {}, f"no field {path}"
            row[column] = value
    else:
        row = dict(document)
    levels = topic.split("/")
    for column, index in spec.topic_levels.items():
        if not -len(levels) <= index < len(levels):
            return {}, f"topic without level {index}"
        row[column] = levels[index]
    return {column: _scalar(value) for column, value in row.items()}, None


def _at_path(document: Any, path: str) -> tuple[bool, Any]:
    """The value at a dotted path (object keys, list indices) and whether it exists."""
    value = document
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def _scalar(value: Any) -> Any:
    """A JSON value as a table cell: nested objects and lists as JSON text, null as a missing value."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return math.nan if value is None else value


def _report_skipped(session: _Session, where: str) -> None:
    """Log the skipped messages once; if none was usable, that is a one-line data error."""
    if not session.skipped:
        return
    reasons = ", ".join(f"{count} {reason}" for reason, count in session.skipped.most_common())
    if not session.rows:
        raise DataValidationError(
            where,
            f"none of {session.received} messages is usable ({reasons})",
            expected="JSON objects with the configured fields",
        )
    _LOGGER.warning("%s: skipped %d of %d messages (%s)", where, session.skipped.total(), session.received, reasons)


def _within(frame: pd.DataFrame, time_range: TimeRange, time_column: str) -> pd.DataFrame:
    """The rows inside the time range when they have ``time_column``; unparsable times stay for validation."""
    start, end = time_range.bounds()
    if frame.empty or time_column not in frame.columns or (start is None and end is None):
        return frame
    stamps = pd.to_datetime(frame[time_column], utc=True, errors="coerce", format="mixed")
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= stamps >= start
    if end is not None:
        keep &= stamps < end
    return frame[keep | stamps.isna()].reset_index(drop=True)
