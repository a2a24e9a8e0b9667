"""The MQTT source against a real Mosquitto broker: a replayed plant ingests like its CSV, windows, bad input."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion

from shopfloor.common.config import DataConfig
from shopfloor.common.errors import ConfigError, DataValidationError, StorageError
from shopfloor.common.sources import MqttSource, TimeRange, describe_location
from shopfloor.common.sources.mqtt import read_mqtt
from shopfloor.components.deploy.local_target import free_port
from shopfloor.components.ingest.ingest import ingest
from shopfloor.demo.mqtt_replay import replay_plant
from shopfloor.demo.plant import PlantData, PlantDataSpec, generate_plant_data
from tests.servers import port_open, require_server

pytestmark = pytest.mark.server

HOST, PORT = "127.0.0.1", 1883
LOGGER = "shopfloor.common.sources.mqtt"
CANARY = "canary-7QxMqtt-9f3Lr2"


@pytest.fixture
def broker() -> tuple[str, int]:
    """The local Mosquitto (anonymous); not running fails under CI=true, else skips."""
    require_server(port_open(HOST, PORT), f"MQTT broker at {HOST}:{PORT}")
    return HOST, PORT


@pytest.fixture
def prefix() -> str:
    return f"shopfloor-test/{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def plant() -> PlantData:
    return generate_plant_data(PlantDataSpec(sites=1, assets_per_site=2, days=3))


class _Subscribed(logging.Handler):
    """Notices the reader's 'subscribed' log line: from then on, published messages reach it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.ready = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "subscribed" in record.getMessage():
            self.ready.set()


def _while_subscribed(read: Callable[[], Any], publish: Callable[[], object], caplog: pytest.LogCaptureFixture) -> Any:
    """Run ``read`` in a thread, publish once it subscribed, and return what it read (or raise what it raised)."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    handler = _Subscribed()
    logging.getLogger(LOGGER).addHandler(handler)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = read()
        except BaseException as exc:  # handed over to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    try:
        thread.start()
        assert handler.ready.wait(15), "the reader never subscribed"
        publish()
        thread.join(30)
        assert not thread.is_alive(), "the reader did not stop"
    finally:
        logging.getLogger(LOGGER).removeHandler(handler)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _publish_raw(host: str, port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish payloads as they are (QoS 1), waiting for each acknowledgement."""
    client = Client(CallbackAPIVersion.VERSION2)
    client.connect(host, port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


def _csv(frame: pd.DataFrame, path: Path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def test_a_replayed_plant_ingests_like_its_csv_and_stops_after_n_messages(
    broker, prefix, plant, tmp_path: Path, caplog
) -> None:
    n = 100  # of 144 readings replayed: the reader stops after exactly n, well before its duration
    sensors = {"kind": "mqtt", "host": broker[0], "port": broker[1], "topic": f"{prefix}/#", "messages": n}
    config = DataConfig.model_validate({"sensors": {**sensors, "duration_s": 20}})  # by config alone
    block = config.sensors
    assert isinstance(block, MqttSource)
    assert plant.events.empty  # three days are too short for a failure: one event per asset, from a file
    assets = plant.sensors["asset_id"].unique()
    events = _csv(
        pd.DataFrame(
            {
                "timestamp": ["2026-01-01T05:00:00Z", "2026-01-02T07:30:00Z"],
                "asset_id": assets[:2],
                "event_type": ["maintenance", "failure"],
                "description": ["scheduled maintenance", "bearing failure"],
            }
        ),
        tmp_path / "events.csv",
    )
    started = time.monotonic()
    from_mqtt = _while_subscribed(
        lambda: ingest(block, events, config),
        lambda: replay_plant(broker[0], broker[1], prefix, plant.sensors),
        caplog,
    )
    assert time.monotonic() - started < 15
    from_csv = ingest(_csv(plant.sensors.iloc[:n], tmp_path / "sensors.csv"), events, DataConfig())
    pd.testing.assert_frame_equal(from_mqtt.sensors, from_csv.sensors)
    pd.testing.assert_frame_equal(from_mqtt.events, from_csv.events)
    assert from_mqtt.features == from_csv.features
    sources = from_mqtt.profile.pop("sources")
    from_csv.profile.pop("sources")
    assert from_mqtt.profile == from_csv.profile
    assert sources["sensors"]["kind"] == "mqtt" and sources["sensors"]["rows"] == n
    assert sources["sensors"]["uri"] == describe_location(block)


def test_a_time_range_keeps_only_the_window_and_topic_levels_add_columns(broker, prefix, plant, caplog) -> None:
    window = TimeRange(since="2026-01-02T00:00:00Z", until="2026-01-03T00:00:00Z")
    block = MqttSource(
        topic=f"{prefix}/+/+/readings",
        messages=len(plant.sensors),
        duration_s=20,
        topic_levels={"topic_site": -3, "topic_asset": 3},
    )
    frame = _while_subscribed(
        lambda: read_mqtt(block, window, "timestamp"),
        lambda: replay_plant(HOST, PORT, prefix, plant.sensors),
        caplog,
    )
    stamps = pd.to_datetime(plant.sensors["timestamp"], utc=True)
    expected = plant.sensors[(stamps >= "2026-01-02") & (stamps < "2026-01-03")].reset_index(drop=True)
    assert len(expected) == 48
    assert (frame["topic_asset"] == frame["asset_id"]).all() and (frame["topic_site"] == frame["site"]).all()
    pd.testing.assert_frame_equal(frame.drop(columns=["topic_site", "topic_asset"]), expected)


def test_stray_messages_are_skipped_and_counted_in_one_log_line(broker, prefix, caplog) -> None:
    topic = f"{prefix}/site-a/P-1/readings"
    good = b'{"ts": "2026-01-01T00:00:00Z", "values": {"temp": 20.5, "extra": [1, 2]}}'
    block = MqttSource(
        topic=f"{prefix}/#",
        messages=2,
        duration_s=20,
        fields={"timestamp": "ts", "temperature_c": "values.temp", "first": "values.extra.0"},
        topic_levels={"asset_id": -2, "deep": 9},
    )
    strays = [b"not json", b"[1, 2]", b'{"ts": "2026-01-01T01:00:00Z"}', good]
    frame = _while_subscribed(
        lambda: read_mqtt(block.model_copy(update={"topic_levels": {"asset_id": -2}}), TimeRange(), "timestamp"),
        lambda: _publish_raw(HOST, PORT, [(topic, payload) for payload in [*strays, good, good]]),
        caplog,
    )
    assert (
        frame.to_dict(orient="records")
        == [{"timestamp": "2026-01-01T00:00:00Z", "temperature_c": 20.5, "first": 1, "asset_id": "P-1"}] * 2
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == LOGGER]
    assert len(warnings) == 1
    assert "skipped 3 of 5 messages (1 not JSON, 1 not a JSON object, 1 no field values.temp)" in warnings[0]
    unusable = r"#: none of 2 messages is usable \(2 topic without level 9\) \(expected JSON objects"
    with pytest.raises(DataValidationError, match=unusable):
        _while_subscribed(
            lambda: read_mqtt(block.model_copy(update={"duration_s": 1.5}), TimeRange(), "timestamp"),
            lambda: _publish_raw(HOST, PORT, [(topic, good)] * 2),
            caplog,
        )


@pytest.fixture
def canary_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANT_MQTT_USER", "shopfloor")
    monkeypatch.setenv("PLANT_MQTT_PASSWORD", CANARY)


def _assert_no_canary(error: pytest.ExceptionInfo, block: MqttSource, caplog: pytest.LogCaptureFixture) -> None:
    assert "\n" not in str(error.value) and describe_location(block) in str(error.value)
    assert CANARY not in str(error.value) and CANARY not in describe_location(block)
    assert not any(CANARY in record.getMessage() for record in caplog.records)
    assert CANARY not in caplog.text


def test_an_unreachable_broker_is_one_line_without_the_password(canary_env, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    block = MqttSource(
        port=free_port(), topic="plant/#", username_env="PLANT_MQTT_USER", password_env="PLANT_MQTT_PASSWORD"
    )
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"^mqtt://127\.0\.0\.1:\d+/plant/#: cannot connect: .*\(expected an MQTT"):
        read_mqtt(block, TimeRange(), "timestamp")
    assert time.monotonic() - started < 5
    with pytest.raises(StorageError) as error:
        read_mqtt(block, TimeRange(), "timestamp")
    _assert_no_canary(error, block, caplog)


def test_a_broker_that_never_answers_is_a_bounded_wait(canary_env, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as silent:  # accepts the TCP connection, never sends a CONNACK
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        block = MqttSource(
            port=silent.getsockname()[1],
            topic="plant/#",
            timeout_s=1,
            username_env="PLANT_MQTT_USER",
            password_env="PLANT_MQTT_PASSWORD",
        )
        started = time.monotonic()
        with pytest.raises(StorageError, match=r"no CONNACK within 1 s") as error:
            read_mqtt(block, TimeRange(), "timestamp")
    assert time.monotonic() - started < 4
    _assert_no_canary(error, block, caplog)


def test_a_missing_credential_variable_is_named(monkeypatch) -> None:
    monkeypatch.delenv("PLANT_MQTT_PASSWORD", raising=False)
    block = MqttSource(topic="plant/#", password_env="PLANT_MQTT_PASSWORD")
    with pytest.raises(ConfigError, match=r"password_env: environment variable PLANT_MQTT_PASSWORD is not set"):
        read_mqtt(block, TimeRange(), "timestamp")


def test_replaying_to_no_broker_is_one_line() -> None:
    port = free_port()
    with pytest.raises(StorageError, match=rf"^mqtt://127\.0\.0\.1:{port}/demo: cannot connect"):
        replay_plant("127.0.0.1", port, "demo", pd.DataFrame({"site": ["a"], "asset_id": ["b"]}))


def _tool(name: str) -> str:
    """A program on PATH or in an sbin folder; the test skips without it (a private broker is an extra)."""
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"]))
    if not found:
        pytest.skip(f"{name} is not installed")
    return found


@contextlib.contextmanager
def _private_mosquitto(folder: Path, settings: str) -> Iterator[int]:
    """A Mosquitto of this test's own on a free port with the given listener settings."""
    port = free_port()
    user = "user root\n" if os.geteuid() == 0 else ""  # as root it would switch to an account that cannot read
    (folder / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\n{settings}{user}")
    process = subprocess.Popen([_tool("mosquitto"), "-c", str(folder / "mosquitto.conf")], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port):
            assert process.poll() is None and time.monotonic() < deadline, "private mosquitto did not start"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def password_broker(tmp_path: Path) -> Iterator[int]:
    """A private Mosquitto that accepts only user shopfloor with password 'right-one'."""
    passwords = tmp_path / "passwords"
    subprocess.run([_tool("mosquitto_passwd"), "-c", "-b", str(passwords), "shopfloor", "right-one"], check=True)
    with _private_mosquitto(tmp_path, f"allow_anonymous false\npassword_file {passwords}\n") as port:
        yield port


@pytest.fixture
def self_signed_broker(tmp_path: Path) -> Iterator[int]:
    """A private Mosquitto speaking TLS with a self-signed certificate, which no system CA vouches for."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [_tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    with _private_mosquitto(tmp_path, f"allow_anonymous true\ncertfile {cert}\nkeyfile {key}\n") as port:
        yield port


def test_tls_checks_the_broker_certificate_against_the_system_cas(self_signed_broker, caplog) -> None:
    block = MqttSource(port=self_signed_broker, topic="plant/#", tls=True)
    with pytest.raises(StorageError, match=r"cannot connect: .*certificate verify failed") as error:
        read_mqtt(block, TimeRange(), "timestamp")
    assert "\n" not in str(error.value)


def test_refused_credentials_are_a_config_error_without_the_password(password_broker, canary_env, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    block = MqttSource(
        port=password_broker, topic="plant/#", username_env="PLANT_MQTT_USER", password_env="PLANT_MQTT_PASSWORD"
    )
    with pytest.raises(ConfigError, match=r"username_env/password_env: the broker refused the credentials") as error:
        read_mqtt(block, TimeRange(), "timestamp")
    _assert_no_canary(error, block, caplog)
