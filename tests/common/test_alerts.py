"""Events delivered to the real brokers on localhost (Mosquitto, NATS JetStream, RabbitMQ) and to a real HTTP
webhook: each arrives once with the schema's fields, nothing is lost while the receiver is down (the outbox sends
it with the next event), repeats are dropped by id, and no error or log line shows a credential."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.server
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pika
import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion

from shopfloor.common.alerts import Publisher, answer_address, channel_name, event_address
from shopfloor.common.config import AlertsConfig, MonitorConfig, validated
from shopfloor.common.credentials import CREDENTIALS_DIR_ENV
from shopfloor.common.errors import ConfigError
from shopfloor.components.deploy.local_target import free_port
from shopfloor.contracts.events import EVENT_SCHEMA, Event, make_event, parse_answer, parse_event, publish_event
from tests.servers import port_open, require_server

URLS = {"mqtt": "mqtt://127.0.0.1:1883", "nats": "nats://127.0.0.1:4222", "amqp": "amqp://127.0.0.1:5672/%2F"}
PORTS = {"mqtt": 1883, "nats": 4222, "amqp": 5672}
CANARY = "canary-Alerts-9xQ2"

pytestmark = pytest.mark.server


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll until ``condition()`` holds; fail after the timeout (no fixed sleeps)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def events(model: str, count: int, start: int = 0) -> list[Event]:
    return [
        make_event("approval-requested", model, f"req-{i}", f"retrain request {i}", request_id=f"req-{i}")
        for i in range(start, start + count)
    ]


# --- receivers: the real brokers' consumers and a webhook server ---------------------------------------------------


class WebhookServer:
    """A real HTTP server in a thread recording each POST; stoppable and restartable on the same port."""

    def __init__(self, port: int, status: int = 204):
        self.port, self.status = port, status
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self._server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> None:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.posts.append((dict(self.headers.items()), body))
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def received(self) -> list[bytes]:
        return [body for _, body in self.posts]


@dataclasses.dataclass
class Receiver:
    """What a channel delivered so far: the payloads, and per payload what the transport carried besides."""

    collect: Callable[[], list[tuple[bytes, dict[str, Any]]]]
    close: Callable[[], None]


def mqtt_receiver(config: AlertsConfig) -> Receiver:
    """A subscriber to every event of the prefix, running in paho's network thread."""
    got: list[tuple[bytes, dict[str, Any]]] = []
    subscribed = threading.Event()
    client = Client(CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
    client.on_connect = lambda c, *_: c.subscribe(f"{config.prefix}/events/#", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda c, u, m: got.append((bytes(m.payload), {"topic": m.topic, "qos": m.qos}))
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    assert subscribed.wait(10)

    def close() -> None:
        client.disconnect()
        client.loop_stop()

    return Receiver(lambda: list(got), close)


def nats_receiver(config: AlertsConfig) -> Receiver:
    """Reads the stream from its first message (an ephemeral consumer), so it sees what was stored while away."""

    async def read() -> list[tuple[bytes, dict[str, Any]]]:
        client = await nats.connect(URLS["nats"], connect_timeout=5, allow_reconnect=False)
        try:
            jetstream = client.jetstream()
            sub = await jetstream.pull_subscribe(f"{config.prefix}.events.>", stream=f"{config.prefix}-events")
            pending = (await sub.consumer_info()).num_pending
            found = []
            while len(found) < pending:
                for message in await sub.fetch(pending - len(found), timeout=5):
                    headers = dict(message.headers or {})
                    found.append((message.data, {"subject": message.subject, "headers": headers}))
            await sub.unsubscribe()
            return found
        finally:
            await client.close()

    async def delete() -> None:
        client = await nats.connect(URLS["nats"], connect_timeout=5, allow_reconnect=False)
        with contextlib.suppress(Exception):
            await client.jetstream().delete_stream(f"{config.prefix}-events")
        await client.close()

    return Receiver(lambda: asyncio.run(read()), lambda: asyncio.run(delete()))


def amqp_receiver(config: AlertsConfig) -> Receiver:
    """Reads the durable queue without consuming (messages go back when the connection closes)."""
    queue = f"{config.prefix}.events"

    def read() -> list[tuple[bytes, dict[str, Any]]]:
        connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
        try:
            channel = connection.channel()
            found = []
            while True:
                method, properties, body = channel.basic_get(queue, auto_ack=False)
                if method is None:
                    return found
                found.append(
                    (
                        body,
                        {
                            "message_id": properties.message_id,
                            "delivery_mode": properties.delivery_mode,
                            "routing_key": method.routing_key,
                        },
                    )
                )
        finally:
            connection.close()

    def delete() -> None:
        connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
        channel = connection.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)
        connection.close()

    return Receiver(read, delete)


@dataclasses.dataclass
class Channel:
    """One kind of channel under test: a working config, one whose receiver is down, and the receiver."""

    kind: str
    up: AlertsConfig
    down: AlertsConfig
    receiver: Receiver
    bring_up: Callable[[], None] = lambda: None
    bring_down: Callable[[], None] = lambda: None

    def payloads(self) -> list[bytes]:
        return [payload for payload, _ in self.receiver.collect()]


@pytest.fixture(params=["mqtt", "nats", "amqp", "webhook"])
def channel(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Channel]:
    kind = request.param
    prefix = f"t{uuid.uuid4().hex[:10]}"
    common = {"prefix": prefix, "retries": 1, "backoff_s": 0.01, "timeout_s": 3.0, "outbox": str(tmp_path / "outbox")}
    if kind == "webhook":
        server = WebhookServer(free_port())
        server.start()
        url = f"http://127.0.0.1:{server.port}/hooks/{CANARY}?key={CANARY}"
        up = AlertsConfig(kind="webhook", url=url, **common)
        receiver = Receiver(lambda: [(b, {"headers": h}) for h, b in server.posts], lambda: None)
        yield Channel(kind, up, up, receiver, bring_up=server.start, bring_down=server.stop)
        with contextlib.suppress(Exception):
            server.stop()
        return
    require_server(port_open("127.0.0.1", PORTS[kind]), f"{kind} server at 127.0.0.1:{PORTS[kind]}")
    up = AlertsConfig(kind=kind, url=URLS[kind], **common)  # type: ignore[arg-type]
    down = up.model_copy(update={"url": URLS[kind].replace(str(PORTS[kind]), str(free_port()))})
    make = {"mqtt": mqtt_receiver, "nats": nats_receiver, "amqp": amqp_receiver}[kind]
    if kind != "mqtt":
        assert Publisher(up).flush()  # creates the stream / exchange and durable queue before anything is sent
    receiver = make(up)
    yield Channel(kind, up, down, receiver)
    receiver.close()


def test_each_event_arrives_once_with_the_schema_fields(channel: Channel) -> None:
    sent = events("predictive-maintenance", 3)
    for event in sent:
        assert publish_event(channel.up, event)
    wait_for(lambda: len(channel.payloads()) >= 3)
    received = channel.receiver.collect()
    assert [parse_event(payload).id for payload, _ in received] == [e.id for e in sent]
    first = json.loads(received[0][0])
    assert first["schema"] == EVENT_SCHEMA and first["type"] == "approval-requested"
    assert first["model"] == "predictive-maintenance" and first["details"] == {"request_id": "req-0"}
    carried = received[0][1]
    if channel.kind == "mqtt":
        assert carried == {"topic": f"{channel.up.prefix}/events/predictive-maintenance/approval-requested", "qos": 1}
    if channel.kind == "nats":
        assert carried["headers"]["Nats-Msg-Id"] == sent[0].id
        assert carried["subject"] == event_address(channel.up, "predictive-maintenance", "approval-requested")
    if channel.kind == "amqp":
        assert carried == {
            "message_id": sent[0].id,
            "delivery_mode": 2,
            "routing_key": "predictive-maintenance.approval-requested",
        }
    if channel.kind == "webhook":
        assert carried["headers"]["Idempotency-Key"] == sent[0].id
        assert carried["headers"]["X-Shopfloor-Event"] == "approval-requested"
    assert not list(Path(channel.up.outbox).glob("*.json"))


def test_nothing_is_lost_while_the_receiver_is_down(channel: Channel, caplog: pytest.LogCaptureFixture) -> None:
    early, late = events("anomaly-detection", 2), events("anomaly-detection", 1, start=2)
    if channel.kind == "webhook":
        channel.bring_down()
    with caplog.at_level(logging.WARNING, logger="shopfloor.common.alerts"):
        for event in early:
            assert not publish_event(channel.down, event)  # the step that publishes stands
            assert not publish_event(channel.down, event)  # the same fact again: kept once
    assert len(list(Path(channel.up.outbox).glob("*.json"))) == 2
    assert "kept in" in caplog.text and CANARY not in caplog.text
    channel.bring_up()
    assert publish_event(channel.up, late[0])
    wait_for(lambda: len(channel.payloads()) >= 3)
    ids = [parse_event(payload).id for payload in channel.payloads()]
    assert ids == [e.id for e in [*early, *late]]  # each once, oldest first
    assert not list(Path(channel.up.outbox).glob("*.json"))


@pytest.mark.parametrize("kind", ["nats"])
def test_jetstream_drops_a_repeated_event_id(kind: str, tmp_path: Path) -> None:
    require_server(port_open("127.0.0.1", 4222), "nats server at 127.0.0.1:4222")
    config = AlertsConfig(kind="nats", url=URLS["nats"], prefix=f"t{uuid.uuid4().hex[:10]}", outbox=str(tmp_path))
    receiver = nats_receiver(config)
    try:
        event = events("predictive-maintenance", 1)[0]
        assert publish_event(config, event)
        assert publish_event(config, dataclasses.replace(event, time="2030-01-01T00:00:00Z"))  # a resend after a crash
        assert [parse_event(p).id for p, _ in receiver.collect()] == [event.id]
    finally:
        receiver.close()


def test_a_webhook_that_answers_an_error_is_retried_then_the_event_kept(tmp_path: Path) -> None:
    server = WebhookServer(free_port(), status=503)
    server.start()
    try:
        config = AlertsConfig(
            kind="webhook", url=f"http://127.0.0.1:{server.port}/", retries=2, backoff_s=0.0, outbox=str(tmp_path)
        )
        event = events("predictive-maintenance", 1)[0]
        assert not publish_event(config, event)
        assert len(server.posts) == 3 and {h["Idempotency-Key"] for h, _ in server.posts} == {event.id}
        server.status = 200
        assert Publisher(config).flush()
        assert len(server.posts) == 4 and not list(tmp_path.glob("*.json"))
    finally:
        server.stop()


def test_a_webhook_token_comes_from_the_mounted_credentials_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On a cluster the step's pod has no ALERTS_TOKEN variable: the key of that name in the mounted Secret."""
    mount = tmp_path / "credentials"
    mount.mkdir()
    (mount / "ALERTS_TOKEN").write_text(CANARY)
    monkeypatch.delenv("ALERTS_TOKEN", raising=False)
    monkeypatch.setenv(CREDENTIALS_DIR_ENV, str(mount))
    server = WebhookServer(free_port())
    server.start()
    try:
        config = AlertsConfig(
            kind="webhook", url=f"http://127.0.0.1:{server.port}/", token_env="ALERTS_TOKEN", outbox=str(tmp_path)
        )
        with caplog.at_level(logging.DEBUG, logger="shopfloor.common.alerts"):
            assert publish_event(config, events("predictive-maintenance", 1)[0])
        ((headers, _),) = server.posts
        assert headers["Authorization"] == f"Bearer {CANARY}" and CANARY not in caplog.text
    finally:
        server.stop()


def test_credentials_come_from_the_environment_and_never_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigError) as refused:
        validated(MonitorConfig, {"alerts": {"kind": "amqp", "url": f"amqp://u:{CANARY}@h/"}}, "plant.yaml")
    assert str(refused.value).startswith("plant.yaml: alerts: ") and CANARY not in str(refused.value)
    assert "credentials belong in username_env" in str(refused.value)
    with pytest.raises(ConfigError, match="monitor|alerts.kind"):
        validated(MonitorConfig, {"alerts": {"kind": "kafka"}}, "plant.yaml")
    with pytest.raises(ConfigError, match="url must be mqtt://"):
        validated(MonitorConfig, {"alerts": {"kind": "mqtt", "url": "http://x"}}, "plant.yaml")
    # a broker that refuses the login: not retried, the event kept, and the password nowhere
    monkeypatch.setenv("ALERTS_USER", "nobody-" + CANARY)
    monkeypatch.setenv("ALERTS_PASSWORD", CANARY)
    require_server(port_open("127.0.0.1", 5672), "amqp server at 127.0.0.1:5672")
    config = AlertsConfig(
        kind="amqp",
        url=URLS["amqp"],
        username_env="ALERTS_USER",
        password_env="ALERTS_PASSWORD",
        backoff_s=0,
        outbox=str(tmp_path),
    )
    with caplog.at_level(logging.WARNING, logger="shopfloor.common.alerts"):
        assert not publish_event(config, events("predictive-maintenance", 1)[0])
    assert "refused the login" in caplog.text and CANARY not in caplog.text
    assert len(list(tmp_path.glob("*.json"))) == 1
    unset = config.model_copy(update={"password_env": "ALERTS_UNSET_PASSWORD"})
    with caplog.at_level(logging.WARNING, logger="shopfloor.common.alerts"):
        assert not Publisher(unset).flush()
    assert "ALERTS_UNSET_PASSWORD is not set" in caplog.text
    assert channel_name(AlertsConfig(kind="webhook", url=f"https://h:8443/{CANARY}?k={CANARY}")) == (
        "alerts webhook https://h:8443"
    )


def test_none_publishes_nothing_and_answers_parse_to_one_line(tmp_path: Path) -> None:
    config = AlertsConfig(outbox=str(tmp_path))
    assert not publish_event(config, events("predictive-maintenance", 1)[0]) and not list(tmp_path.iterdir())
    with pytest.raises(ConfigError, match="kind: a none channel cannot carry answers"):
        answer_address(config, "m")
    answer = {"schema": EVENT_SCHEMA, "type": "approval-answer", "model": "m", "request_id": "r", "note": "ok"}
    with pytest.raises(Exception, match=r"^answer: approve: missing or not true/false \(expected true or false\)$"):
        parse_answer(json.dumps(answer), "answer")
    with pytest.raises(Exception, match=r"^answer: token: missing or not text"):
        parse_answer(json.dumps({**answer, "approve": True}), "answer")
    parsed = parse_answer(json.dumps({**answer, "approve": True, "token": CANARY}), "answer")
    assert parsed.id.startswith("ev-") and CANARY not in repr(parsed)
    assert parse_answer(json.dumps({**answer, "approve": True, "token": "other"})).id == parsed.id
    with pytest.raises(Exception, match=r"^answer: schema: 'x'"):
        parse_answer(json.dumps({**answer, "schema": "x"}), "answer")
