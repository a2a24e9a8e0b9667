"""The message-bus sources against real servers (NATS JetStream, RabbitMQ): the CMMS's events ingest like their CSV,
time windows, reads that leave the messages, payload mapping, and one-line errors that never show a credential."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pandas as pd
import pika
import pytest

from shopfloor.common.config import DataConfig
from shopfloor.common.errors import ConfigError, DataValidationError, ShopfloorError, StorageError
from shopfloor.common.sources import BusSource, TimeRange, describe_location, read_source
from shopfloor.components.deploy.local_target import free_port
from shopfloor.components.ingest.ingest import IngestResult, ingest
from shopfloor.demo.plant import PlantData, PlantDataSpec, generate_plant_data
from tests.servers import port_open, require_server

pytestmark = pytest.mark.server

NATS_URL = "nats://127.0.0.1:4222"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
SERVERS = {"nats": ("127.0.0.1", 4222), "rabbitmq": ("127.0.0.1", 5672)}
URL_ENV = "SHOPFLOOR_TEST_BUS_URL"
LOGGER = "shopfloor.common.sources.bus"
CANARY = "canary-7QxBus-4kT8wPz"


def _require(kind: str) -> None:
    """A server that is not running fails under CI=true, else skips."""
    host, port = SERVERS[kind]
    require_server(port_open(host, port), f"{kind} server at {host}:{port}")


async def _publish_stream(stream: str, subject: str, payloads: list[bytes]) -> None:
    """A fresh JetStream stream on the subject, holding the payloads (each acknowledged as stored)."""
    client = await nats.connect(NATS_URL, connect_timeout=5, allow_reconnect=False)
    try:
        jetstream = client.jetstream()
        await jetstream.add_stream(name=stream, subjects=[subject])
        for payload in payloads:
            await jetstream.publish(subject, payload)
    finally:
        await client.close()


async def _delete_stream(stream: str) -> None:
    client = await nats.connect(NATS_URL, connect_timeout=5, allow_reconnect=False)
    try:
        await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


def _amqp_channel() -> tuple[pika.BlockingConnection, Any]:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    return connection, connection.channel()


@dataclasses.dataclass
class Bus:
    """One server: puts payloads on a fresh subject or queue and gives the source block that reads it."""

    kind: str
    names: list[str] = dataclasses.field(default_factory=list)

    def publish(self, payloads: list[bytes], **block: Any) -> BusSource:
        name = f"shopfloor-test-{uuid.uuid4().hex[:10]}"
        self.names.append(name)
        if self.kind == "nats":
            subject = f"{name}.workorders"
            asyncio.run(_publish_stream(name, subject, payloads))
        else:
            subject = name
            connection, channel = _amqp_channel()
            channel.queue_declare(name)
            channel.confirm_delivery()
            for payload in payloads:
                channel.basic_publish("", name, payload)
            connection.close()
        return BusSource(kind=self.kind, url_env=URL_ENV, subject=subject, idle_s=1.0, **block)  # type: ignore[arg-type]

    def queued(self, source: BusSource) -> int:
        """How many messages a RabbitMQ queue holds ready."""
        connection, channel = _amqp_channel()
        count = channel.queue_declare(source.subject, passive=True).method.message_count
        connection.close()
        return int(count)

    def clean(self) -> None:
        for name in self.names:
            if self.kind == "nats":
                asyncio.run(_delete_stream(name))
            else:
                connection, channel = _amqp_channel()
                channel.queue_delete(name)
                connection.close()


@pytest.fixture(params=["nats", "rabbitmq"])
def bus(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bus]:
    _require(request.param)
    monkeypatch.setenv(URL_ENV, NATS_URL if request.param == "nats" else AMQP_URL)
    server = Bus(request.param)
    yield server
    server.clean()


@pytest.fixture(scope="module")
def plant() -> PlantData:
    data = generate_plant_data(PlantDataSpec(sites=1, assets_per_site=2, days=30))
    assert len(data.events) >= 4, "the demo plant must record events for these tests"
    return data


@pytest.fixture
def csv_files(plant: PlantData, tmp_path: Path) -> tuple[str, str]:
    sensors, events = tmp_path / "sensors.csv", tmp_path / "events.csv"
    plant.sensors.to_csv(sensors, index=False)
    plant.events.to_csv(events, index=False)
    return str(sensors), str(events)


def _messages(frame: pd.DataFrame) -> list[bytes]:
    """A table as the CMMS would publish it: one JSON object per row."""
    return [json.dumps(row).encode() for row in frame.to_dict(orient="records")]


def _assert_same_ingest(from_bus: IngestResult, from_csv: IngestResult) -> None:
    pd.testing.assert_frame_equal(from_bus.sensors, from_csv.sensors)
    pd.testing.assert_frame_equal(from_bus.events, from_csv.events)
    assert from_bus.features == from_csv.features
    assert {k: v for k, v in from_bus.profile.items() if k != "sources"} == {
        k: v for k, v in from_csv.profile.items() if k != "sources"
    }


def test_events_from_the_bus_ingest_like_the_csv(bus: Bus, plant: PlantData, csv_files: tuple[str, str]) -> None:
    sensors_csv, events_csv = csv_files
    source = bus.publish(_messages(plant.events))
    from_bus = ingest(sensors_csv, source, DataConfig())
    from_csv = ingest(sensors_csv, events_csv, DataConfig())
    _assert_same_ingest(from_bus, from_csv)
    assert len(from_bus.events) == len(plant.events)
    record = from_bus.profile["sources"]["events"]
    assert record["kind"] == bus.kind and record["rows"] == len(plant.events)
    assert record["uri"] == describe_location(source)


def test_a_time_range_keeps_only_the_windows_events(bus: Bus, plant: PlantData, csv_files: tuple[str, str]) -> None:
    sensors_csv, events_csv = csv_files
    times = pd.to_datetime(plant.events["timestamp"], utc=True).sort_values().reset_index(drop=True)
    window = TimeRange(since=times.iloc[1].to_pydatetime(), until=times.iloc[len(times) - 1].to_pydatetime())
    config = DataConfig(time_range=window)
    source = bus.publish(_messages(plant.events))
    from_bus = ingest(sensors_csv, source, config)
    _assert_same_ingest(from_bus, ingest(sensors_csv, events_csv, config))
    assert len(from_bus.events) == len(times) - 2
    assert from_bus.events["timestamp"].between(times.iloc[1], times.iloc[len(times) - 1], inclusive="left").all()


def test_a_read_leaves_every_message_for_the_next(bus: Bus, plant: PlantData) -> None:
    """Events read for training are never consumed: a failed ingest or the next retrain reads them again."""
    source = bus.publish(_messages(plant.events))
    first = read_source(source, TimeRange(), "timestamp")
    second = read_source(source, TimeRange(), "timestamp")
    pd.testing.assert_frame_equal(first.frame, second.frame)
    assert len(first.frame) == len(plant.events)
    assert first.record["sha256"] == second.record["sha256"]
    if bus.kind == "rabbitmq":
        assert bus.queued(source) == len(plant.events)


def test_fields_map_nested_payloads_and_other_messages_are_skipped_once(
    bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    orders = [
        {"at": f"2026-01-0{i}T06:00:00Z", "order": {"id": i, "asset": {"id": f"A-PMP-0{i}"}}, "tags": ["repair"]}
        for i in (1, 2, 3)
    ]
    payloads = [json.dumps(orders[0]).encode(), b"\xff\xfe binary frame", json.dumps(orders[1]).encode()]
    payloads += [b"[1, 2]", b"heartbeat", json.dumps(orders[2]).encode()]
    fields = {"timestamp": "at", "asset_id": "order.asset.id", "order": "order.id", "tag": "tags.0", "gone": "x.y"}
    source = bus.publish(payloads, fields=fields)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        frame = read_source(source, TimeRange(), "timestamp").frame
    assert list(frame.columns) == list(fields)
    assert frame["asset_id"].tolist() == ["A-PMP-01", "A-PMP-02", "A-PMP-03"]
    assert frame["order"].tolist() == [1, 2, 3] and frame["tag"].tolist() == ["repair"] * 3
    assert frame["gone"].isna().all()
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1 and "skipped 3 of 6" in warnings[0]

    whole = read_source(source.model_copy(update={"fields": {}, "messages": 2}), TimeRange(), "timestamp").frame
    assert list(whole.columns) == ["at", "order", "tags"] and len(whole) == 1, "the 2 oldest: one object, one not"
    assert whole["order"].iloc[0] == '{"asset":{"id":"A-PMP-01"},"id":1}', "a nested object is kept as JSON text"


def test_no_json_object_at_all_is_one_line(bus: Bus) -> None:
    source = bus.publish([b"heartbeat", b"\x00\x01"])
    with pytest.raises(DataValidationError, match="none of the 2 messages is a JSON object") as caught:
        read_source(source, TimeRange(), "timestamp")
    assert describe_location(source) in str(caught.value)


def test_a_missing_subject_or_queue_names_the_field(bus: Bus) -> None:
    subject = f"shopfloor-test-missing-{uuid.uuid4().hex[:8]}"
    source = BusSource(kind=bus.kind, url_env=URL_ENV, subject=subject)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="subject") as caught:
        read_source(source, TimeRange(), "timestamp")
    assert subject in str(caught.value) and "\n" not in str(caught.value)


def test_a_read_from_inside_an_event_loop_works(bus: Bus, plant: PlantData) -> None:
    """A notebook runs cells inside an event loop: the reader must not need its own."""
    source = bus.publish(_messages(plant.events))

    async def in_a_loop() -> int:
        return len(read_source(source, TimeRange(), "timestamp").frame)

    assert asyncio.run(in_a_loop()) == len(plant.events)


@pytest.mark.parametrize("kind", ["nats", "rabbitmq"])
def test_refused_or_unreachable_servers_never_show_the_password(
    kind: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """RabbitMQ refuses the canary password; nothing listens on the NATS port. One line, no credential."""
    _require(kind)
    if kind == "rabbitmq":
        url, expected = f"amqp://guest:{CANARY}@127.0.0.1:5672/%2F", ConfigError
    else:
        url, expected = f"nats://shopfloor:{CANARY}@127.0.0.1:{free_port()}", StorageError
    monkeypatch.setenv(URL_ENV, url)
    source = BusSource(kind=kind, url_env=URL_ENV, subject="cmms.workorders")  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG), pytest.raises(ShopfloorError) as caught:
        read_source(source, TimeRange(), "timestamp")
    message = str(caught.value)
    assert isinstance(caught.value, expected) and "\n" not in message
    assert URL_ENV in message and describe_location(source) in message
    assert CANARY not in message and CANARY not in describe_location(source)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert not [r for r in caplog.records if CANARY in r.getMessage() or (r.exc_text and CANARY in r.exc_text)]
    assert not [r for r in caplog.records if r.exc_info], "no traceback in the log"


def test_an_unset_url_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    for kind in ("nats", "rabbitmq"):
        source = BusSource(kind=kind, url_env=URL_ENV, subject="cmms.workorders")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=f"environment variable {URL_ENV} is not set"):
            read_source(source, TimeRange(), "timestamp")
