"""The edge loop over MQTT: inputs in from a topic, alarms out to another, no HTTP needed.

Topics (``prefix`` defaults to ``shopfloor/edge``):

  <prefix>/<model>/in       a V1 body, {"instances": [...], "id"?: "..."}: sensor windows or images
  <prefix>/<model>/alarms   one message per input that raised the alarm (failure within the horizon, anomalous
                            window, defective part): {"model", "version", "id", "index", <the served outputs>}
  <prefix>/<model>/errors   one line naming the field for a message that is not a valid request

Every scored message is payload-logged like an HTTP request (protocol ``mqtt``).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shopfloor.contracts.request_codec import InvalidRequest, PayloadTooLarge
from shopfloor.edge.model import ServedEdgeModel, json_values

__all__ = ["DEFAULT_PREFIX", "MqttLoop", "alarms"]

_LOGGER = logging.getLogger("shopfloor.edge")
DEFAULT_PREFIX = "shopfloor/edge"


def alarms(model: ServedEdgeModel, request_id: str, arrays: dict) -> list[dict]:
    """One message per input in alarm, with all its served outputs."""
    outputs = {name: json_values(values) for name, values in arrays.items()}
    raised = [i for i, alarm in enumerate(outputs[model.alarm_output]) if alarm]
    return [
        {
            "model": model.name,
            "version": model.version,
            "id": request_id,
            "index": i,
            **{name: values[i] for name, values in outputs.items()},
        }
        for i in raised
    ]


class MqttLoop:
    """Subscribes to a model's input topic and publishes its alarms; scores with ``current()`` at each message."""

    def __init__(
        self,
        name: str,
        current: Any,
        host: str,
        port: int = 1883,
        prefix: str = DEFAULT_PREFIX,
        payload_logger: Any = None,
        client_id: str = "",
    ):
        self.name, self.current, self.payload_logger = name, current, payload_logger
        self.topic_in = f"{prefix}/{name}/in"
        self.topic_alarms = f"{prefix}/{name}/alarms"
        self.topic_errors = f"{prefix}/{name}/errors"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"shopfloor-edge-{name}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.host, self.port = host, port

    def start(self) -> MqttLoop:
        """Connect (retrying in the background when the broker is away) and start the network thread."""
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        """(Re)subscribe on every connection: a broker restart forgets subscriptions of clean sessions."""
        client.subscribe(self.topic_in, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        """Say so once the broker confirmed the subscription (messages sent from now on arrive)."""
        _LOGGER.info("edge %s: listening on mqtt://%s:%s/%s", self.name, self.host, self.port, self.topic_in)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """Score one message; an unexpected failure is logged and the loop goes on with the next message."""
        try:
            self._score(client, message)
        except Exception:  # the network thread must survive one bad message
            _LOGGER.exception("edge %s: message on %s not scored", self.name, message.topic)

    def _score(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        """Score one message; publish its alarms, or one error line."""
        model: ServedEdgeModel | None = self.current()
        if model is None:
            client.publish(self.topic_errors, f"{message.topic}: model {self.name} not loaded yet", qos=1)
            return
        try:
            document = json.loads(message.payload)
            request_id = str(document.get("id") or uuid.uuid4().hex) if isinstance(document, dict) else ""
            inputs = model.decode_v1(document)
        except (ValueError, UnicodeDecodeError) as exc:
            text = str(exc) if isinstance(exc, InvalidRequest) else "not JSON (expected a V1 body)"
            client.publish(self.topic_errors, f"{message.topic}: {text}", qos=1)
            return
        except PayloadTooLarge as exc:
            client.publish(self.topic_errors, f"{message.topic}: {exc.reason}", qos=1)
            return
        arrays = model.outputs(inputs)
        if self.payload_logger is not None:
            outputs = {name: json_values(values) for name, values in arrays.items()}
            self.payload_logger.record(request_id, "mqtt", model.logged_inputs(inputs), outputs, model.version)
        for alarm in alarms(model, request_id, arrays):
            client.publish(self.topic_alarms, json.dumps(alarm), qos=1)
