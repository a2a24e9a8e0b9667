"""`shopfloor approvals listen` against the real brokers: an operator's answer sent over MQTT, NATS or AMQP while
the listener was away is recorded as `shopfloor approve` records it, once, and announced; an answer without the
right, or not an answer at all, is one line and records nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import nats
import pika
import pytest
import yaml
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion

from shopfloor.app.cli import main, parse_request
from shopfloor.app.cli.approvals import ListenRequest
from shopfloor.common.alerts import answer_address
from shopfloor.common.config import AlertsConfig, RetrainPolicy
from shopfloor.components.monitor.policy import RetrainState, decide
from shopfloor.contracts.events import EVENT_SCHEMA, parse_event
from tests.common.test_alerts import PORTS, URLS, amqp_receiver, mqtt_receiver, nats_receiver, wait_for
from tests.servers import port_open, require_server

pytestmark = pytest.mark.server

MODEL = "predictive-maintenance"
OLGA_TOKEN = "olga-token-7Fq2xLm"


def send_answers(config: AlertsConfig, payloads: list[bytes]) -> None:
    """Publish answers as an operator's client would, each acknowledged by the broker."""
    address = answer_address(config, MODEL)
    if config.kind == "mqtt":
        client = Client(CallbackAPIVersion.VERSION2, client_id=f"operator-{uuid.uuid4().hex[:8]}")
        client.connect("127.0.0.1", 1883)
        client.loop_start()
        for payload in payloads:
            client.publish(address, payload, qos=1).wait_for_publish(10)
        client.disconnect()
        client.loop_stop()
    elif config.kind == "amqp":
        connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
        channel = connection.channel()
        channel.confirm_delivery()
        for payload in payloads:
            channel.basic_publish("", address, payload, properties=pika.BasicProperties(delivery_mode=2))
        connection.close()
    else:

        async def publish() -> None:
            client = await nats.connect(URLS["nats"], connect_timeout=5, allow_reconnect=False)
            for payload in payloads:
                await client.jetstream().publish(address, payload)
            await client.close()

        asyncio.run(publish())


def answer(request_id: str, approve: bool, token: str, **more: object) -> bytes:
    document = {"schema": EVENT_SCHEMA, "type": "approval-answer", "model": MODEL, "request_id": request_id}
    return json.dumps({**document, "approve": approve, "note": "bearings replaced", "token": token, **more}).encode()


def test_the_listen_command_line() -> None:
    argv = ["approvals", "listen", "--config", "p.yaml", "--tokens-file", "t.yaml", "--answers", "2"]
    assert parse_request(argv) == ListenRequest(config="p.yaml", tokens_file="t.yaml", answers=2)


def test_a_channel_that_cannot_answer_and_no_tokens_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text(
        yaml.safe_dump({"scenario": MODEL, "monitor": {"alerts": {"kind": "webhook", "url": "http://h/"}}})
    )
    assert main(["approvals", "listen", "--config", str(config), "--work-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {config}: monitor.alerts.kind: kind 'webhook' (expected mqtt, nats or amqp (a channel answers "
        "can come back on))"
    )
    config.write_text(yaml.safe_dump({"scenario": MODEL, "monitor": {"alerts": {"kind": "mqtt", "url": "mqtt://h"}}}))
    assert main(["approvals", "listen", "--config", str(config), "--tokens-file", ""]) == 1
    assert "no tokens: every answer would be refused" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["mqtt", "amqp", "nats"])
def test_an_answer_over_the_channel_decides_once_and_only_with_the_right(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_server(port_open("127.0.0.1", PORTS[kind]), f"{kind} server at 127.0.0.1:{PORTS[kind]}")
    alerts = {"kind": kind, "url": URLS[kind], "prefix": f"t{uuid.uuid4().hex[:10]}", "outbox": str(tmp_path / "out")}
    config_path = tmp_path / "plant.yaml"
    config_path.write_text(yaml.safe_dump({"scenario": MODEL, "monitor": {"alerts": alerts}}))
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(yaml.safe_dump({"tokens": [{"identity": "olga", "role": "operator", "token": OLGA_TOKEN}]}))
    channel = AlertsConfig(**alerts)  # type: ignore[arg-type]
    state = RetrainState(str(tmp_path / "monitor"), MODEL)
    first = decide(True, True, "drift in 3 of 7 sensors", RetrainPolicy(mode="approval"), state).request_id
    assert first is not None
    listen = ["approvals", "listen", "--config", str(config_path), "--work-dir", str(tmp_path)]
    listen += ["--tokens-file", str(tokens)]
    # a first, short listen leaves the session / queue / durable consumer the answers wait in
    assert main([*listen, "--duration-s", "0.5"]) == 0
    receiver = {"mqtt": mqtt_receiver, "nats": nats_receiver, "amqp": amqp_receiver}[kind](channel)
    try:
        send_answers(
            channel,
            [
                answer(first, True, "stolen-or-guessed"),  # no right: refused, nothing recorded
                b"approve it!",  # not an answer
                answer(first, True, OLGA_TOKEN, by="mallory"),  # the token is olga's, not mallory's
                answer(first, True, OLGA_TOKEN),
                answer(first, True, OLGA_TOKEN),  # the same answer again (a redelivery)
            ],
        )
        capsys.readouterr()
        assert main([*listen, "--answers", "5", "--duration-s", "20"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[1:] == [
            f"refused {first}: unknown token",
            "refused: approval answer: not JSON (expected a UTF-8 JSON object)",
            f"refused {first}: by: 'mallory' is not the token's identity (olga)",
            f"{first}: approved by olga (bearings replaced)",
            f"{first}: answer {parse_answer_id(first)} already handled, dropped",
            "5 answer(s) read",
        ]
        recorded = state.get(first)
        assert (recorded.status, recorded.decided_by, recorded.note) == ("approved", "olga", "bearings replaced")
        wait_for(lambda: len(receiver.collect()) >= 1)
        events = [parse_event(payload) for payload, _ in receiver.collect()]
        assert [(e.type, e.details["request_id"], e.details["decided_by"]) for e in events] == [
            ("approval-decided", first, "olga")
        ]
    finally:
        receiver.close()


def parse_answer_id(request_id: str) -> str:
    from shopfloor.contracts.events import parse_answer

    return parse_answer(answer(request_id, True, OLGA_TOKEN)).id
