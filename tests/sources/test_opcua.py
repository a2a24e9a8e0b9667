"""The OPC UA source against asyncua's own server, run in-process on a free port (no external server needed).

The server historizes an asset's sensors in memory; the demo readings are written with their source timestamps,
so its history holds the demo rows, and ingest from the block must equal ingest from a CSV of the same rows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from asyncua import Node, Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.history import HistoryDict
from asyncua.server.user_managers import UserManager
from pydantic import ValidationError

from shopfloor.common.config import DataConfig, SensorColumns
from shopfloor.common.errors import ConfigError, StorageError
from shopfloor.common.sources import OpcUaSource, TimeRange, describe_location
from shopfloor.common.sources.opcua import read_opcua
from shopfloor.components.deploy.local_target import free_port
from shopfloor.components.ingest.ingest import ingest
from shopfloor.demo.plant import PlantDataSpec, generate_plant_data, site_sensors

USER = "shopfloor-reader"
PASSWORD = "opcua-test-password-3fK"
CANARY = "canary-7QxOpcUa-9wLr2"
ASSET = "A-PMP-01"
SENSORS = list(site_sensors(0))
LIVE = ["temperature_c", "vibration_mm_s"]
LIVE_START = pd.Timestamp("2026-01-03T00:00:00Z")


class _Users(UserManager):
    """Accepts one username and password, refuses everything else (anonymous included)."""

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None):
        return User(role=UserRole.User) if (username, password) == (USER, PASSWORD) else None


@dataclasses.dataclass
class _Plant:
    """The running server: its loop (in a thread of its own), endpoint and the node ids per column."""

    server: Server
    loop: asyncio.AbstractEventLoop
    endpoint: str
    history: dict[str, str]
    live: dict[str, str]
    rows: pd.DataFrame

    def call(self, coroutine: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


def _value(number: float, stamp: pd.Timestamp) -> ua.DataValue:
    return ua.DataValue(ua.Variant(float(number), ua.VariantType.Double), SourceTimestamp=stamp.to_pydatetime())


async def _start(endpoint: str, rows: pd.DataFrame) -> tuple[Server, dict[str, str], dict[str, str]]:
    """A server whose history holds ``rows`` (one historized variable per sensor) plus live variables."""
    server = Server(user_manager=_Users())
    await server.init()
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    server.set_identity_tokens([ua.UserNameIdentityToken])
    storage = HistoryDict()
    server.iserver.history_manager.set_storage(storage)
    namespace = await server.register_namespace("urn:shopfloor:test-plant")
    asset = await server.nodes.objects.add_object(namespace, ASSET)
    stamps = [pd.Timestamp(text) for text in rows["timestamp"]]
    variables: dict[str, Node] = {}
    for column in SENSORS:
        variable = await asset.add_variable(namespace, column, 0.0, varianttype=ua.VariantType.Double)
        await variable.write_value(_value(rows[column].iloc[0], stamps[0]))  # the first reading: historized at once
        await server.historize_node_data_change(variable, period=None)
        variables[column] = variable
    for index in range(1, len(rows)):
        for column, variable in variables.items():
            await variable.write_value(_value(rows[column].iloc[index], stamps[index]))
    deadline = time.monotonic() + 10
    for variable in variables.values():
        while len((await storage.read_node_history(variable.nodeid, None, None, 0))[0]) < len(rows):
            assert time.monotonic() < deadline, "the server did not historize every reading"
            await asyncio.sleep(0.01)
    live_asset = await server.nodes.objects.add_object(namespace, f"{ASSET}-live")
    live = {}
    for column in LIVE:
        variable = await live_asset.add_variable(namespace, column, 0.0, varianttype=ua.VariantType.Double)
        await variable.write_value(_value(0.0, LIVE_START))
        live[column] = variable.nodeid.to_string()
    await server.start()
    return server, {column: node.nodeid.to_string() for column, node in variables.items()}, live


@pytest.fixture(scope="module")
def plant() -> Iterator[_Plant]:
    """asyncua's server in a background thread with its own loop, holding one asset's demo readings."""
    data = generate_plant_data(PlantDataSpec(sites=1, assets_per_site=1, days=2))
    rows = data.sensors[data.sensors["asset_id"] == ASSET][["timestamp", "asset_id", *SENSORS]].reset_index(drop=True)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="opcua-test-server", daemon=True)
    thread.start()
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/shopfloor/"
    server, history, live = asyncio.run_coroutine_threadsafe(_start(endpoint, rows), loop).result(60)
    try:
        yield _Plant(server, loop, endpoint, history, live, rows)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPCUA_TEST_USER", USER)
    monkeypatch.setenv("OPCUA_TEST_PASSWORD", PASSWORD)


def _block(plant: _Plant, **fields: Any) -> OpcUaSource:
    settings: dict[str, Any] = {
        "endpoint": plant.endpoint,
        "nodes": plant.history,
        "asset_id": ASSET,
        "username_env": "OPCUA_TEST_USER",
        "password_env": "OPCUA_TEST_PASSWORD",
        "timeout_s": 5,
    }
    return OpcUaSource(**(settings | fields))


def _config(time_range: TimeRange | None = None) -> DataConfig:
    return DataConfig(sensor_columns=SensorColumns(site=None), time_range=time_range or TimeRange())


def _same_ingest(plant: _Plant, tmp_path: Path, time_range: TimeRange | None = None) -> None:
    """Ingest from the block and from a CSV of the same rows give the same tables and profile."""
    csv = tmp_path / "sensors.csv"
    plant.rows.to_csv(csv, index=False)
    from_csv = ingest(str(csv), None, _config(time_range))
    from_opcua = ingest(_block(plant), None, _config(time_range))
    pd.testing.assert_frame_equal(from_opcua.sensors, from_csv.sensors)
    pd.testing.assert_frame_equal(from_opcua.events, from_csv.events)
    assert from_opcua.features == from_csv.features == SENSORS
    assert {k: v for k, v in from_opcua.profile.items() if k != "sources"} == {
        k: v for k, v in from_csv.profile.items() if k != "sources"
    }
    assert from_opcua.profile["sources"]["sensors"]["kind"] == "opcua"


def test_history_ingests_like_the_csv_of_the_same_rows(plant: _Plant, tmp_path: Path) -> None:
    _same_ingest(plant, tmp_path)


def test_history_reads_only_the_time_range(plant: _Plant, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    window = TimeRange(since="2026-01-01T12:00:00Z", until="2026-01-02T06:00:00Z")
    with caplog.at_level(logging.DEBUG):
        frame = read_opcua(_block(plant), window, "timestamp")
    assert PASSWORD not in caplog.text, "asyncua logs the session request at DEBUG: the reader hides its token"
    expected = pd.date_range("2026-01-01T12:00:00Z", "2026-01-02T05:00:00Z", freq="h")
    assert list(frame["timestamp"]) == list(expected), "the end is exclusive, the start inclusive"
    assert list(frame.columns) == ["timestamp", "asset_id", *SENSORS]
    _same_ingest(plant, tmp_path, window)


def test_reads_from_a_thread_that_runs_an_event_loop(plant: _Plant) -> None:
    async def inside_a_loop() -> pd.DataFrame:
        return read_opcua(_block(plant, asset_column="machine"), TimeRange(), "time")

    frame = asyncio.run(inside_a_loop())
    assert list(frame.columns) == ["time", "machine", *SENSORS]
    assert len(frame) == len(plant.rows)
    assert (frame["machine"] == ASSET).all()


def test_a_block_names_its_assets_type_and_ingest_keeps_it(plant: _Plant) -> None:
    frame = read_opcua(_block(plant, asset_type="pump"), TimeRange(), "timestamp")
    assert list(frame.columns) == ["timestamp", "asset_id", "asset_type", *SENSORS]
    sensors = ingest(_block(plant, asset_type="pump"), None, _config()).sensors
    assert set(sensors["asset_type"]) == {"pump"}
    with pytest.raises(ValueError, match="asset_type_column 'asset_id' is already a column"):
        _block(plant, asset_type="pump", asset_type_column="asset_id")


async def _monitored_items(server: Server) -> int:
    subscriptions = server.iserver.subscription_service.subscriptions.values()
    return sum(len(subscription.monitored_item_srv._monitored_items) for subscription in subscriptions)


def test_subscribe_collects_the_values_written_while_subscribed(plant: _Plant) -> None:
    written = pd.DataFrame(
        {
            "timestamp": pd.date_range(LIVE_START + pd.Timedelta(hours=1), periods=5, freq="h"),
            "temperature_c": [41.5, 41.75, 42.0, 42.5, 43.0],
            "vibration_mm_s": [2.0, 2.25, 2.5, 3.0, 3.5],
        }
    )
    before = plant.call(_monitored_items(plant.server))
    failures: list[BaseException] = []

    def write_once_subscribed() -> None:
        try:
            deadline = time.monotonic() + 10
            while plant.call(_monitored_items(plant.server)) < before + len(LIVE):
                assert time.monotonic() < deadline, "the reader never subscribed"
                time.sleep(0.02)
            for row in written.itertuples(index=False):
                for column in LIVE:
                    node = plant.server.get_node(plant.live[column])
                    plant.call(node.write_value(_value(getattr(row, column), row.timestamp)))
                time.sleep(0.02)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    writer = threading.Thread(target=write_once_subscribed)
    writer.start()
    spec = _block(plant, nodes=plant.live, mode="subscribe", duration_s=1.5, sampling_ms=50)
    frame = read_opcua(spec, TimeRange(), "timestamp")
    writer.join(10)
    assert not failures, failures
    initial = pd.DataFrame({"timestamp": [LIVE_START], "temperature_c": [0.0], "vibration_mm_s": [0.0]})
    expected = pd.concat([initial, written], ignore_index=True)
    expected.insert(1, "asset_id", ASSET)
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_an_unknown_node_is_one_line_naming_its_column(plant: _Plant) -> None:
    spec = _block(plant, nodes={"temperature_c": plant.history["temperature_c"], "pressure_bar": "ns=2;i=99999"})
    with pytest.raises(ConfigError) as caught:
        read_opcua(spec, TimeRange(), "timestamp")
    message = str(caught.value)
    assert "node ns=2;i=99999 not found" in message
    assert "nodes.pressure_bar" in message and "\n" not in message


def test_a_node_without_history_is_one_line(plant: _Plant) -> None:
    spec = _block(plant, nodes={"vibration_mm_s": plant.live["vibration_mm_s"]})
    with pytest.raises(ConfigError, match=r"nodes\.vibration_mm_s: node .* keeps no history"):
        read_opcua(spec, TimeRange(), "timestamp")


def test_refused_credentials_never_show_the_password(
    plant: _Plant, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPCUA_TEST_PASSWORD", CANARY)
    spec = _block(plant)
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as caught:
        read_opcua(spec, TimeRange(), "timestamp")
    message = str(caught.value)
    assert "refused the credentials" in message and "\n" not in message
    assert CANARY not in message and CANARY not in caplog.text and CANARY not in describe_location(spec)
    assert all(CANARY not in record.getMessage() for record in caplog.records)


def test_an_unreachable_endpoint_is_one_bounded_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPCUA_TEST_PASSWORD", CANARY)
    spec = OpcUaSource(
        endpoint=f"opc.tcp://127.0.0.1:{free_port()}/nobody/",
        nodes={"temperature_c": "ns=2;i=2"},
        username_env="OPCUA_TEST_USER",
        password_env="OPCUA_TEST_PASSWORD",
        timeout_s=2,
    )
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(StorageError) as caught:
        read_opcua(spec, TimeRange(), "timestamp")
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert message.startswith(describe_location(spec)) and "cannot connect" in message and "\n" not in message
    assert CANARY not in message and CANARY not in caplog.text


def test_a_missing_credential_variable_is_a_config_error(plant: _Plant, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPCUA_TEST_PASSWORD")
    with pytest.raises(ConfigError, match="OPCUA_TEST_PASSWORD is not set"):
        read_opcua(_block(plant), TimeRange(), "timestamp")


def test_the_block_refuses_credentials_in_the_endpoint() -> None:
    with pytest.raises(ValidationError, match="username_env/password_env"):
        OpcUaSource(endpoint=f"opc.tcp://user:{CANARY}@127.0.0.1:4840/", nodes={"t": "ns=2;i=2"})
    with pytest.raises(ValidationError, match="the column asset_id fills"):
        OpcUaSource(endpoint="opc.tcp://127.0.0.1:4840/", nodes={"asset_id": "ns=2;i=2"}, asset_id="A-PMP-01")
