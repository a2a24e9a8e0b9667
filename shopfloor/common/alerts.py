"""Events for people, delivered to the plant's channel: MQTT, NATS JetStream, AMQP (RabbitMQ) or an HTTP webhook.

What is sent is opaque here (``Outgoing``: an id, the model, the event type and the JSON body; the schema is
``shopfloor.contracts.events``); this module only delivers it, and never loses it:

- every send waits for the receiver's acknowledgement: MQTT QoS 1 (PUBACK), a JetStream publish acknowledgement
  (the stream stored it; the header ``Nats-Msg-Id`` lets JetStream drop a repeat within its duplicate window), an
  AMQP publisher confirm for a persistent message (``message_id`` = event id) routed to a durable queue, or a 2xx
  answer to a POST carrying ``Idempotency-Key: <event id>``;
- a send that fails is tried ``retries`` more times with doubling waits from ``backoff_s``; one that still fails
  is kept in the **outbox**, a local folder holding one file per event (written atomically, named by time and id,
  so an event kept twice is kept once), and the next publish sends what the outbox holds first, oldest first;
- delivery is at least once: a crash between a receiver's acknowledgement and the removal of the outbox file sends
  that event again, with the same id, and receivers drop it by id.

Addresses come from the config's ``prefix`` (``AlertsConfig``): events go to ``<prefix>/events/<model>/<type>``
(MQTT), ``<prefix>.events.<model>.<type>`` (NATS, stream ``<prefix>-events``, created if missing), or the topic
exchange ``<prefix>.events`` with routing key ``<model>.<type>`` and the durable queue ``<prefix>.events`` bound to
it (AMQP, declared if missing); a webhook gets every event at its URL. Approval answers come back on
``<prefix>/answers/<model>`` (MQTT, persistent session), ``<prefix>.answers.<model>`` (NATS, kept by the same
stream, read by a durable consumer) or the durable queue ``<prefix>.answers.<model>`` (AMQP): ``listen``.

Credentials come only from the environment variables the config names; no error or log line here shows them, nor
a webhook's path or query (which often hold a secret): a channel is named by its kind, host and port.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from shopfloor.common.config import AlertsConfig
from shopfloor.common.credentials import credential
from shopfloor.common.errors import ConfigError, ShopfloorError, StorageError
from shopfloor.common.storage import atomic_write_bytes

__all__ = [
    "OUTBOX_ENV",
    "Outgoing",
    "Publisher",
    "answer_address",
    "channel_name",
    "event_address",
    "listen",
    "outbox_folder",
]

OUTBOX_ENV = "SHOPFLOOR_ALERTS_OUTBOX"
"""The outbox folder when the config names none."""

_LOGGER = logging.getLogger(__name__)
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "nats": 4222, "tls": 4222, "amqp": 5672, "amqps": 5671}
_MAX_BACKOFF_S = 30.0
_TICK_S = 0.1


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """One event as delivered: its id (for dedupe), the model and type it is routed by, and the JSON body."""

    id: str
    model: str
    type: str
    body: bytes


def channel_name(config: AlertsConfig) -> str:
    """A credential-free name of the channel for messages: kind, host and port (never a path or query)."""
    parts = urllib.parse.urlsplit(config.url)
    host = parts.hostname or "?"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"alerts {config.kind} {parts.scheme}://{host}" + (f":{port}" if port else "")


def event_address(config: AlertsConfig, model: str, event_type: str) -> str:
    """Where an event of ``model`` and ``event_type`` is published (topic, subject or routing key)."""
    if config.kind == "mqtt":
        return f"{config.prefix}/events/{model}/{event_type}"
    if config.kind == "nats":
        return f"{config.prefix}.events.{model}.{event_type}"
    if config.kind == "amqp":
        return f"{model}.{event_type}"
    return config.url


def answer_address(config: AlertsConfig, model: str) -> str:
    """Where approval answers for ``model`` are read (topic, subject or queue)."""
    if config.kind == "mqtt":
        return f"{config.prefix}/answers/{model}"
    if config.kind in ("nats", "amqp"):
        return f"{config.prefix}.answers.{model}"
    raise ConfigError(
        channel_name(config), f"a {config.kind} channel cannot carry answers", field="kind", expected="mqtt|nats|amqp"
    )


def outbox_folder(config: AlertsConfig) -> Path:
    """The outbox: the config's folder, else ``$SHOPFLOOR_ALERTS_OUTBOX``, else one under the temp folder."""
    chosen = config.outbox or os.environ.get(OUTBOX_ENV, "")
    return Path(chosen) if chosen else Path(tempfile.gettempdir(), "shopfloor-alerts-outbox")


# --- the outbox ---------------------------------------------------------------------------------------------------


class _Outbox:
    """Events not delivered yet: ``<folder>/<ns time>-<id>.json`` each, oldest first by name."""

    def __init__(self, folder: Path):
        self.folder = folder

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob("*.json") if not p.name.startswith("."))

    def pending(self) -> list[tuple[Path, Outgoing]]:
        """What the outbox holds, oldest first; a file that is not an event is left alone and logged."""
        found = []
        for path in self._files():
            try:
                document = json.loads(path.read_bytes())
                found.append(
                    (path, Outgoing(document["id"], document["model"], document["type"], document["body"].encode()))
                )
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                _LOGGER.warning("%s: not an outbox event, left as it is", path)
        return found

    def keep(self, message: Outgoing) -> Path:
        """Keep one event (once: an id already kept is not kept again)."""
        for path in self.folder.glob(f"*-{message.id}.json") if self.folder.is_dir() else []:
            return path
        path = self.folder / f"{time.time_ns():020d}-{message.id}.json"
        document = {"id": message.id, "model": message.model, "type": message.type, "body": message.body.decode()}
        atomic_write_bytes(path, json.dumps(document, sort_keys=True).encode())
        return path

    @staticmethod
    def remove(path: Path) -> None:
        """Forget a delivered event."""
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# --- senders: one connection, many events -------------------------------------------------------------------------


class _Sender(Protocol):
    """Delivers events in order over one connection, calling ``delivered`` after each acknowledgement."""

    def send_all(self, messages: Sequence[Outgoing], delivered: Callable[[Outgoing], None]) -> None:
        """Send each message and wait for its acknowledgement; raise on the first that fails."""


def _secret(variable: str, where: str, field: str) -> str:
    """An optional credential: empty when the config names no variable, else the named variable's value."""
    return credential(variable, where, field) if variable else ""


def _with_credentials(config: AlertsConfig, where: str) -> str:
    """The URL with the username and password from the environment (for clients that take them in the URL)."""
    username = _secret(config.username_env, where, "username_env")
    password = _secret(config.password_env, where, "password_env")
    if not (username or password):
        return config.url
    parts = urllib.parse.urlsplit(config.url)
    userinfo = urllib.parse.quote(username, safe="") + (":" + urllib.parse.quote(password, safe="") if password else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def _host_port(config: AlertsConfig) -> tuple[str, int]:
    """Host and port of a broker URL (the scheme's default port when none is given)."""
    parts = urllib.parse.urlsplit(config.url)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(channel_name(config), "port is not a number", field="url", expected="host:port") from None
    return parts.hostname or "127.0.0.1", port or _DEFAULT_PORTS[parts.scheme.lower()]


class _MqttSender:
    """MQTT QoS 1: each publish waits for the broker's PUBACK."""

    def __init__(self, config: AlertsConfig, where: str):
        self.config, self.where = config, where

    def send_all(self, messages: Sequence[Outgoing], delivered: Callable[[Outgoing], None]) -> None:
        """Connect, publish each event at QoS 1 and wait for its PUBACK, disconnect."""
        with _mqtt_session(self.config, self.where, f"shopfloor-alerts-{uuid.uuid4().hex[:12]}", clean=True) as mqtt:
            for message in messages:
                info = mqtt.client.publish(event_address(self.config, message.model, message.type), message.body, qos=1)
                mqtt.run_until(info.is_published, "PUBACK")
                delivered(message)


@dataclasses.dataclass
class _Mqtt:
    """A connected paho client driven by ``loop`` calls from this thread."""

    client: Any
    where: str
    timeout_s: float
    state: dict[str, Any]

    def run_until(self, done: Callable[[], bool], what: str, timeout_s: float | None = None) -> None:
        """Run the network loop until ``done()``; a lost connection or the timeout is a ``StorageError``."""
        from paho.mqtt.enums import MQTTErrorCode

        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while not done():
            if self.state.get("refused"):
                raise ConfigError(self.where, f"the broker refused: {self.state['refused']}", field="username_env")
            if self.client.loop(timeout=_TICK_S) != MQTTErrorCode.MQTT_ERR_SUCCESS or self.state.get("lost"):
                raise StorageError(self.where, f"connection lost before {what}", expected="a broker that stays up")
            if time.monotonic() > deadline:
                raise StorageError(
                    self.where, f"no {what} within {self.timeout_s:g} s", expected="a broker that answers"
                )


@contextlib.contextmanager
def _mqtt_session(config: AlertsConfig, where: str, client_id: str, *, clean: bool) -> Iterator[_Mqtt]:
    """A paho client connected with the config's credentials (TLS for mqtts://), disconnected at the end."""
    from paho.mqtt.client import Client
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = _host_port(config)
    state: dict[str, Any] = {}
    client = Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    client.connect_timeout = config.timeout_s
    username = _secret(config.username_env, where, "username_env")
    password = _secret(config.password_env, where, "password_env")
    if username or password:
        client.username_pw_set(username, password or None)
    if config.url.lower().startswith("mqtts://"):
        client.tls_set()  # the system's CA certificates, hostname checked

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            state["refused"] = reason.getName()
        else:
            state["connected"] = True

    def on_disconnect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        state["lost"] = True

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect(host, port, keepalive=30)
    except (OSError, ValueError) as exc:
        problem = getattr(exc, "strerror", None) or type(exc).__name__
        raise StorageError(where, f"cannot connect ({problem})", expected="a reachable MQTT broker") from None
    session = _Mqtt(client, where, config.timeout_s, state)
    try:
        session.run_until(lambda: bool(state.get("connected")), "CONNACK")
        yield session
    finally:
        state["closing"] = True
        with contextlib.suppress(Exception):
            client.disconnect()
            client.loop(timeout=0.01)


class _NatsSender:
    """NATS JetStream: each publish waits for the stream's acknowledgement; ``Nats-Msg-Id`` dedupes repeats."""

    def __init__(self, config: AlertsConfig, where: str):
        self.config, self.where = config, where

    def send_all(self, messages: Sequence[Outgoing], delivered: Callable[[Outgoing], None]) -> None:
        """Connect, make sure the stream exists, publish each event with its id, close."""
        from shopfloor.common.sources.bus import _run

        _run(self._send_all(messages, delivered))

    async def _send_all(self, messages: Sequence[Outgoing], delivered: Callable[[Outgoing], None]) -> None:
        import nats.errors

        async with _nats_connection(self.config, self.where) as jetstream:
            for message in messages:
                subject = event_address(self.config, message.model, message.type)
                try:
                    await jetstream.publish(
                        subject, message.body, timeout=self.config.timeout_s, headers={"Nats-Msg-Id": message.id}
                    )
                except (TimeoutError, nats.errors.Error) as exc:
                    raise StorageError(
                        self.where, f"not stored ({type(exc).__name__})", expected="a JetStream ack"
                    ) from None
                delivered(message)


def stream_name(config: AlertsConfig) -> str:
    """The JetStream stream holding a NATS channel's events and answers."""
    return f"{config.prefix}-events"


@contextlib.asynccontextmanager
async def _nats_connection(config: AlertsConfig, where: str) -> Any:
    """A JetStream context on a connection with the config's credentials; the stream exists (created if missing)."""
    import nats.errors
    import nats.js.errors

    from shopfloor.common.sources.bus import _connect_nats

    client = await _connect_nats(_with_credentials(config, where), "(alerts.url)", where)
    try:
        jetstream = client.jetstream(timeout=config.timeout_s)
        name = stream_name(config)
        try:
            await jetstream.stream_info(name)
        except nats.js.errors.NotFoundError:
            subjects = [f"{config.prefix}.events.>", f"{config.prefix}.answers.>"]
            await jetstream.add_stream(name=name, subjects=subjects)
        except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError):
            raise StorageError(where, "the server has no JetStream", expected="a NATS server with JetStream") from None
        yield jetstream
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        raise StorageError(where, f"failed ({type(exc).__name__})", expected="a reachable NATS server") from None
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), config.timeout_s)


class _AmqpSender:
    """AMQP with publisher confirms: persistent messages to a durable topic exchange and the durable queue on it."""

    def __init__(self, config: AlertsConfig, where: str):
        self.config, self.where = config, where

    def send_all(self, messages: Sequence[Outgoing], delivered: Callable[[Outgoing], None]) -> None:
        """Connect, declare exchange, queue and binding, publish each event and wait for its confirm, close."""
        import pika
        import pika.exceptions

        exchange = f"{self.config.prefix}.events"
        with _amqp_channel(self.config, self.where) as channel:
            try:
                channel.confirm_delivery()
                channel.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)
                channel.queue_declare(queue=exchange, durable=True)
                channel.queue_bind(queue=exchange, exchange=exchange, routing_key="#")
                for message in messages:
                    properties = pika.BasicProperties(
                        content_type="application/json",
                        delivery_mode=pika.DeliveryMode.Persistent,
                        message_id=message.id,
                        type=message.type,
                    )
                    channel.basic_publish(
                        exchange,
                        event_address(self.config, message.model, message.type),
                        message.body,
                        properties=properties,
                        mandatory=True,
                    )
                    delivered(message)
            except pika.exceptions.AMQPError as exc:
                raise StorageError(
                    self.where, f"not confirmed ({type(exc).__name__})", expected="a broker ack"
                ) from None


@contextlib.contextmanager
def _amqp_channel(config: AlertsConfig, where: str) -> Iterator[Any]:
    """A channel on a blocking connection with the config's credentials, closed at the end."""
    from shopfloor.common.sources.bus import _amqp_parameters, _connect_amqp, _quiet

    with _quiet("pika"):
        parameters = _amqp_parameters(_with_credentials(config, where), where)
        parameters.socket_timeout = config.timeout_s
        parameters.blocked_connection_timeout = config.timeout_s
        connection = _connect_amqp(parameters, "(alerts.url)", where)
        try:
            yield connection.channel()
        finally:
            with contextlib.suppress(Exception):
                connection.close()


class _WebhookSender:
    """An HTTP POST per event with ``Idempotency-Key``; a 2xx answer is the acknowledgement."""

    def __init__(self, config: AlertsConfig, where: str):
        self.config, self.where = config, where

    def send_all(self, messages: Sequence[Outgoing], delivered: Callable[[Outgoing], None]) -> None:
        """POST each event in order; anything but a 2xx answer stops the batch."""
        token = _secret(self.config.token_env, self.where, "token_env")
        for message in messages:
            headers = {
                "Content-Type": "application/json",
                "Idempotency-Key": message.id,
                "X-Shopfloor-Event": message.type,
            }
            if token:
                headers["Authorization"] = f"Bearer {token}"
            request = urllib.request.Request(self.config.url, data=message.body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None)
                problem = type(reason).__name__ if isinstance(reason, BaseException) else type(exc).__name__
                raise StorageError(self.where, f"cannot post ({problem})", expected="a reachable webhook") from None
            if not 200 <= status < 300:
                raise StorageError(self.where, f"answered {status}", expected="a 2xx answer")
            delivered(message)


_SENDERS: dict[str, Callable[[AlertsConfig, str], _Sender]] = {
    "mqtt": _MqttSender,
    "nats": _NatsSender,
    "amqp": _AmqpSender,
    "webhook": _WebhookSender,
}


# --- publishing ---------------------------------------------------------------------------------------------------


class Publisher:
    """Delivers events to the configured channel with retries; what cannot be delivered waits in the outbox.

    ``publish`` never raises for a channel that is down or refuses: the step or command that publishes stands,
    and the event goes with the next publish (one warning line says so).
    """

    def __init__(self, config: AlertsConfig, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.where = channel_name(config)
        self.outbox = _Outbox(outbox_folder(config))
        self._sleep = sleep
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether a channel is configured."""
        return self.config.kind != "none"

    def publish(self, message: Outgoing) -> bool:
        """Send what the outbox holds, then ``message``; returns whether everything was delivered."""
        if not self.enabled:
            return False
        return self._deliver(message)

    def flush(self) -> bool:
        """Send what the outbox holds; returns whether it is empty now."""
        if not self.enabled:
            return False
        return self._deliver(None)

    def _deliver(self, message: Outgoing | None) -> bool:
        with self._lock:
            spooled = self.outbox.pending()
            files = {kept.id: path for path, kept in spooled}
            queue = [kept for _, kept in spooled if message is None or kept.id != message.id]
            if message is not None:
                queue.append(message)
            done: set[str] = set()

            def delivered(sent: Outgoing) -> None:
                done.add(sent.id)
                if sent.id in files:
                    self.outbox.remove(files[sent.id])

            try:
                self._with_retries(queue, done, delivered)
            except ShopfloorError as exc:
                if message is not None and message.id not in done:
                    self.outbox.keep(message)
                left = len([m for m in queue if m.id not in done])
                _LOGGER.warning(
                    "%s: %d event(s) not delivered (%s); kept in %s and sent with the next event",
                    self.where,
                    left,
                    exc.problem,
                    self.outbox.folder,
                )
                return False
            return True

    def _with_retries(self, queue: list[Outgoing], done: set[str], delivered: Callable[[Outgoing], None]) -> None:
        """Deliver the queue, retrying what is left after a failure; a config problem is not retried."""
        sender = _SENDERS[self.config.kind](self.config, self.where)
        wait = self.config.backoff_s
        for attempt in range(self.config.retries + 1):
            left = [m for m in queue if m.id not in done]
            if not left:
                return
            try:
                sender.send_all(left, delivered)
                return
            except ConfigError:
                raise
            except StorageError:
                if attempt == self.config.retries:
                    raise
            self._sleep(min(wait, _MAX_BACKOFF_S))
            wait *= 2


# --- listening for answers ----------------------------------------------------------------------------------------


def listen(
    config: AlertsConfig,
    model: str,
    handle: Callable[[bytes], None],
    *,
    duration_s: float | None = None,
    messages: int | None = None,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Read approval answers for ``model`` and pass each payload to ``handle``; returns how many were read.

    Answers sent while nobody listened are not lost: MQTT keeps them for the listener's persistent session (QoS 1,
    client id ``<prefix>-approvals-<model>``), NATS in the stream (durable consumer of that name), AMQP in the
    durable queue. A message is acknowledged once ``handle`` returned, so one that was being handled when the
    listener stopped comes again (answers carry ids; the handler drops repeats). Stops after ``duration_s``
    seconds, ``messages`` answers, or when ``stop`` is set; ``ready`` is set once subscribed.
    """
    where = channel_name(config)
    address = answer_address(config, model)
    consumer = f"{config.prefix}-approvals-{model}"
    end = time.monotonic() + duration_s if duration_s is not None else float("inf")
    quit_ = stop or threading.Event()

    def more(count: int) -> bool:
        return not quit_.is_set() and time.monotonic() < end and (messages is None or count < messages)

    if config.kind == "mqtt":
        return _listen_mqtt(config, where, address, consumer, handle, more, ready)
    if config.kind == "amqp":
        return _listen_amqp(config, where, address, handle, more, ready)
    from shopfloor.common.sources.bus import _run

    return _run(_listen_nats(config, where, address, consumer, handle, more, ready))


def _listen_mqtt(
    config: AlertsConfig,
    where: str,
    topic: str,
    client_id: str,
    handle: Callable[[bytes], None],
    more: Callable[[int], bool],
    ready: threading.Event | None,
) -> int:
    """A persistent session subscribed at QoS 1; paho acknowledges a message after ``on_message`` returned."""
    received: list[bytes] = []
    with _mqtt_session(config, where, client_id, clean=False) as mqtt:
        granted: dict[str, bool] = {}

        def on_subscribe(client: Any, userdata: Any, mid: int, reasons: list[Any], properties: Any) -> None:
            granted["ok"] = not any(reason.is_failure for reason in reasons)
            granted["done"] = True

        def on_message(client: Any, userdata: Any, message: Any) -> None:
            handle(bytes(message.payload))  # paho sends the PUBACK once this returned
            received.append(message.payload)

        mqtt.client.on_subscribe = on_subscribe
        mqtt.client.on_message = on_message
        mqtt.client.subscribe(topic, qos=1)
        mqtt.run_until(lambda: "done" in granted, "SUBACK")
        if not granted["ok"]:
            raise StorageError(where, f"subscription to {topic} refused", expected="read access to the topic")
        if ready is not None:
            ready.set()
        from paho.mqtt.enums import MQTTErrorCode

        while more(len(received)):
            if mqtt.client.loop(timeout=_TICK_S) != MQTTErrorCode.MQTT_ERR_SUCCESS or mqtt.state.get("lost"):
                raise StorageError(where, "connection lost", expected="a broker that stays up")
    return len(received)


def _listen_amqp(
    config: AlertsConfig,
    where: str,
    queue: str,
    handle: Callable[[bytes], None],
    more: Callable[[int], bool],
    ready: threading.Event | None,
) -> int:
    """Consume the durable answers queue, acknowledging each message after ``handle`` returned."""
    import pika.exceptions

    count = 0
    with _amqp_channel(config, where) as channel:
        try:
            channel.queue_declare(queue=queue, durable=True)
            channel.basic_qos(prefetch_count=1)
            if ready is not None:
                ready.set()
            for method, _properties, body in channel.consume(queue, auto_ack=False, inactivity_timeout=_TICK_S * 2):
                if method is not None:
                    handle(body)
                    channel.basic_ack(method.delivery_tag)
                    count += 1
                if not more(count):
                    break
            channel.cancel()
        except pika.exceptions.AMQPError as exc:
            raise StorageError(where, f"reading failed ({type(exc).__name__})", expected="a reachable broker") from None
    return count


async def _listen_nats(
    config: AlertsConfig,
    where: str,
    subject: str,
    durable: str,
    handle: Callable[[bytes], None],
    more: Callable[[int], bool],
    ready: threading.Event | None,
) -> int:
    """A durable pull consumer on the answers subject of the channel's stream; acknowledged after ``handle``."""
    import nats.errors

    count = 0
    async with _nats_connection(config, where) as jetstream:
        subscription = await jetstream.pull_subscribe(subject, durable=durable, stream=stream_name(config))
        if ready is not None:
            ready.set()
        while more(count):
            try:
                batch = await subscription.fetch(1, timeout=_TICK_S * 5)
            except nats.errors.TimeoutError:
                continue
            for message in batch:
                handle(message.data)
                await message.ack()
                count += 1
    return count
