"""Replays demo sensor readings to an MQTT broker, one JSON message per reading, as a plant's gateway would.

Each row of the sensor table becomes ``<topic_prefix>/<site>/<asset_id>/readings`` with the row itself as a JSON
object (missing readings as ``null``, so every message names every column). With QoS 1 or 2 the replay returns only
after the broker acknowledged every message, so a reader subscribed beforehand receives all of them.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Hashable
from typing import Any

import pandas as pd
from paho.mqtt.client import Client, ConnectFlags, MQTTMessageInfo
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from shopfloor.common.errors import StorageError

__all__ = ["reading_topic", "replay_plant"]

_CONNECT_TIMEOUT_S = 10.0
_ACK_TIMEOUT_S = 30.0


def reading_topic(topic_prefix: str, site: object, asset_id: object) -> str:
    """The topic a reading of an asset is published on: ``<prefix>/<site>/<asset_id>/readings``."""
    return f"{topic_prefix.rstrip('/')}/{site}/{asset_id}/readings"


def _payload(row: dict[Hashable, Any]) -> bytes:
    """A reading as a JSON object; NaN (a missing reading) as null, which JSON has and NaN is not."""
    clean = {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}
    return json.dumps(clean, default=str).encode()


def replay_plant(host: str, port: int, topic_prefix: str, sensors: pd.DataFrame, qos: int = 1) -> int:
    """Publish every reading row as one JSON message and wait for the acknowledgements; returns the count."""
    where = f"mqtt://{host}:{port}/{topic_prefix}"
    client = Client(CallbackAPIVersion.VERSION2, client_id=f"shopfloor-replay-{uuid.uuid4().hex[:12]}")
    client.connect_timeout = _CONNECT_TIMEOUT_S
    client.on_connect = _remember_connack
    try:
        client.connect(host, port)
    except OSError as exc:
        raise StorageError(where, f"cannot connect: {exc.strerror or exc}", expected="an MQTT broker") from None
    client.loop_start()
    try:
        _await_connack(client, where)
        sent = [
            client.publish(reading_topic(topic_prefix, row["site"], row["asset_id"]), _payload(row), qos=qos)
            for row in sensors.to_dict(orient="records")
        ]
        _await_acks(sent, where)
    finally:
        client.disconnect()
        client.loop_stop()
    return len(sent)


def _remember_connack(
    client: Client, userdata: Any, flags: ConnectFlags, reason: ReasonCode, properties: Properties | None
) -> None:
    """The CONNACK callback: keep the broker's answer on the client for ``_await_connack``."""
    client.user_data_set(reason)


def _await_connack(client: Client, where: str) -> None:
    """Wait (bounded) for the broker to accept the connection, so no message is published before it."""
    deadline = time.monotonic() + _CONNECT_TIMEOUT_S
    while client.user_data_get() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    reason = client.user_data_get()
    if reason is None:
        raise StorageError(where, f"no CONNACK within {_CONNECT_TIMEOUT_S:g} s", expected="an MQTT broker")
    if reason.is_failure:
        raise StorageError(where, f"the broker refused: {reason.getName()}", expected="a broker accepting the replay")


def _await_acks(sent: list[MQTTMessageInfo], where: str) -> None:
    """Wait (bounded) until the broker acknowledged every message; one line if it did not."""
    deadline = time.monotonic() + _ACK_TIMEOUT_S
    for info in sent:
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise StorageError(where, f"publish failed: {info.rc.name}", expected="a broker accepting messages")
        try:
            info.wait_for_publish(timeout=max(deadline - time.monotonic(), 0.01))
        except (RuntimeError, ValueError) as exc:
            raise StorageError(where, f"publish failed: {exc}", expected="a broker accepting messages") from None
        if not info.is_published():
            raise StorageError(
                where, f"no acknowledgement within {_ACK_TIMEOUT_S:g} s", expected="a broker that acknowledges"
            )
