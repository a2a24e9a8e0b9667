"""The OPC UA source against asyncua's own server, run in-process on a free port (no external server needed).

The server historizes an asset's sensors in memory; the demo readings are written with their source timestamps,
so its history holds the demo rows, and ingest from the block must equal ingest from a CSV of the same rows.
A second server offers only Basic256Sha256 SignAndEncrypt and trusts one client certificate (a trust list): the
certificates and keys are made here, for the test, and reach the reader as PEM text in variables.
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
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.history import HistoryDict
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import ValidationError

from shopfloor.common.config import DataConfig, SensorColumns
from shopfloor.common.credentials import CREDENTIALS_DIR_ENV
from shopfloor.common.errors import ConfigError, StorageError
from shopfloor.common.sources import OpcUaSource, TimeRange, describe_location, location_parameter, parse_location
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


CLIENT_URI = "urn:shopfloor:test-client"
CERTIFICATE_VARIABLES = {
    "certificate_env": "OPCUA_TEST_CERT",
    "private_key_env": "OPCUA_TEST_KEY",
    "private_key_password_env": "OPCUA_TEST_KEY_PASSWORD",
    "server_certificate_env": "OPCUA_TEST_SERVER_CERT",
}


class _Users(UserManager):
    """Accepts one username and password, refuses everything else (anonymous too, unless it is allowed)."""

    def __init__(self, anonymous: bool = False) -> None:
        self.anonymous = anonymous

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None):
        if (username, password) == (USER, PASSWORD) or (self.anonymous and username is None):
            return User(role=UserRole.User)
        return None


@dataclasses.dataclass(frozen=True)
class _Identity:
    """An application instance certificate and its private key, as PEM text."""

    certificate: str
    key: str

    def encrypted_key(self, password: str) -> str:
        """The same key, encrypted with a password."""
        key = serialization.load_pem_private_key(self.key.encode(), None)
        encryption = serialization.BestAvailableEncryption(password.encode())
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()


def _identity(uri: str, usage: x509.ObjectIdentifier) -> _Identity:
    """A self-signed OPC UA application certificate (its URI in subjectAltName) with a fresh RSA key."""
    key = cert_gen.generate_private_key()
    names = [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")]
    certificate = cert_gen.generate_self_signed_app_certificate(key, uri, {}, names, [usage], days=2)
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    return _Identity(pem, cert_gen.dump_private_key_as_pem(key).decode())


@dataclasses.dataclass(frozen=True)
class _Pki:
    """The secure server's identity, a client it trusts, one it does not, and a server certificate of no server."""

    server: _Identity
    trusted: _Identity
    stranger: _Identity
    other_server: _Identity


@pytest.fixture(scope="module")
def pki() -> _Pki:
    server, other = (_identity("urn:shopfloor:test-plant", ExtendedKeyUsageOID.SERVER_AUTH) for _ in range(2))
    trusted, stranger = (_identity(CLIENT_URI, ExtendedKeyUsageOID.CLIENT_AUTH) for _ in range(2))
    return _Pki(server, trusted, stranger, other)


class _Gate:
    """The secure server's check of a client certificate: against its trust list, or hanging up on the client."""

    def __init__(self, validator: CertificateValidator) -> None:
        self.validator = validator
        self.server: Server | None = None
        self.hang_up = False

    async def __call__(self, certificate: x509.Certificate, description: ua.ApplicationDescription) -> None:
        if self.hang_up and self.server is not None and self.server.bserver is not None:
            for connection in list(self.server.bserver.clients):
                if connection.transport is not None:
                    connection.transport.close()
        await self.validator(certificate, description)


@dataclasses.dataclass
class _Plant:
    """The running server: its loop (in a thread of its own), endpoint and the node ids per column."""

    server: Server
    loop: asyncio.AbstractEventLoop
    endpoint: str
    history: dict[str, str]
    live: dict[str, str]
    rows: pd.DataFrame
    gate: _Gate | None = None

    def call(self, coroutine: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


def _value(number: float, stamp: pd.Timestamp) -> ua.DataValue:
    return ua.DataValue(ua.Variant(float(number), ua.VariantType.Double), SourceTimestamp=stamp.to_pydatetime())


async def _start(
    endpoint: str, rows: pd.DataFrame, secure: tuple[_Identity, _Gate] | None = None
) -> tuple[Server, dict[str, str], dict[str, str]]:
    """A server whose history holds ``rows`` (one historized variable per sensor) plus live variables.

    ``secure``: its only endpoint is Basic256Sha256 SignAndEncrypt with that identity, the gate checks each
    client's certificate, and anonymous users are let in too (the username and password work on top).
    """
    server = Server(user_manager=_Users(anonymous=secure is not None))
    await server.init()
    server.set_endpoint(endpoint)
    if secure is None:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens([ua.UserNameIdentityToken])
    else:
        identity, gate = secure
        server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        server.set_identity_tokens([ua.AnonymousIdentityToken, ua.UserNameIdentityToken])
        await server.set_application_uri("urn:shopfloor:test-plant")
        await server.load_certificate(identity.certificate.encode(), "pem")
        await server.load_private_key(identity.key.encode(), None, "pem")
        server.set_certificate_validator(gate)
        gate.server = server
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


def _rows() -> pd.DataFrame:
    data = generate_plant_data(PlantDataSpec(sites=1, assets_per_site=1, days=2))
    return data.sensors[data.sensors["asset_id"] == ASSET][["timestamp", "asset_id", *SENSORS]].reset_index(drop=True)


def _serve(rows: pd.DataFrame, secure: tuple[_Identity, _Gate] | None = None) -> Iterator[_Plant]:
    """asyncua's server in a background thread with its own loop, holding one asset's demo readings."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="opcua-test-server", daemon=True)
    thread.start()
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/shopfloor/"
    server, history, live = asyncio.run_coroutine_threadsafe(_start(endpoint, rows, secure), loop).result(60)
    try:
        yield _Plant(server, loop, endpoint, history, live, rows, secure[1] if secure else None)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
def plant() -> Iterator[_Plant]:
    """The unsecured server (NoSecurity only), holding one asset's demo readings."""
    yield from _serve(_rows())


@pytest.fixture(scope="module")
def secure_plant(pki: _Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Plant]:
    """The same readings behind Basic256Sha256 SignAndEncrypt only, trusting just the ``trusted`` client."""
    trusted = tmp_path_factory.mktemp("trusted")
    (trusted / "client.pem").write_text(pki.trusted.certificate)
    store = TrustStore([trusted], [])
    asyncio.run(store.load())
    options = CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT
    yield from _serve(_rows(), (pki.server, _Gate(CertificateValidator(options, store))))


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPCUA_TEST_USER", USER)
    monkeypatch.setenv("OPCUA_TEST_PASSWORD", PASSWORD)
    for variable in CERTIFICATE_VARIABLES.values():
        monkeypatch.delenv(variable, raising=False)


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


def _secure_block(plant: _Plant, **fields: Any) -> OpcUaSource:
    """A Basic256Sha256 SignAndEncrypt block, anonymous, with the client certificate and key in variables."""
    settings: dict[str, Any] = {
        "security_policy": "Basic256Sha256",
        "certificate_env": "OPCUA_TEST_CERT",
        "private_key_env": "OPCUA_TEST_KEY",
        "username_env": None,
        "password_env": None,
    }
    return _block(plant, **(settings | fields))


def _same_ingest(
    plant: _Plant, tmp_path: Path, time_range: TimeRange | None = None, block: OpcUaSource | None = None
) -> None:
    """Ingest from the block and from a CSV of the same rows give the same tables and profile."""
    csv = tmp_path / "sensors.csv"
    plant.rows.to_csv(csv, index=False)
    from_csv = ingest(str(csv), None, _config(time_range))
    from_opcua = ingest(block or _block(plant), None, _config(time_range))
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


@pytest.mark.parametrize("user", [False, True], ids=["anonymous", "with-username-and-encrypted-key"])
def test_secure_history_ingests_like_the_unsecured_read(
    plant: _Plant, secure_plant: _Plant, pki: _Pki, user: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPCUA_TEST_CERT", pki.trusted.certificate)
    fields: dict[str, Any] = {}
    if user:  # the username and password travel encrypted inside the secure session
        monkeypatch.setenv("OPCUA_TEST_KEY", pki.trusted.encrypted_key(CANARY))
        monkeypatch.setenv("OPCUA_TEST_KEY_PASSWORD", CANARY)
        fields = {
            "username_env": "OPCUA_TEST_USER",
            "password_env": "OPCUA_TEST_PASSWORD",
            "private_key_password_env": "OPCUA_TEST_KEY_PASSWORD",
        }
    else:
        monkeypatch.setenv("OPCUA_TEST_KEY", pki.trusted.key)
    secure = _secure_block(secure_plant, **fields)
    pd.testing.assert_frame_equal(
        read_opcua(secure, TimeRange(), "timestamp"), read_opcua(_block(plant), TimeRange(), "timestamp")
    )
    _same_ingest(secure_plant, tmp_path, block=secure)
    if user:
        monkeypatch.setenv("OPCUA_TEST_PASSWORD", CANARY)
        with pytest.raises(ConfigError, match="refused the credentials"):
            read_opcua(secure, TimeRange(), "timestamp")


def test_secure_certificates_from_the_mounted_secret(
    plant: _Plant, secure_plant: _Plant, pki: _Pki, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mounted = tmp_path / "credentials"  # a pod's mount of the Secret: a file per key, none of them in the env
    mounted.mkdir()
    (mounted / "OPCUA_TEST_CERT").write_text(pki.trusted.certificate)
    (mounted / "OPCUA_TEST_KEY").write_text(pki.trusted.key)
    (mounted / "OPCUA_TEST_SERVER_CERT").write_text(pki.server.certificate)
    monkeypatch.setenv(CREDENTIALS_DIR_ENV, str(mounted))
    secure = _secure_block(secure_plant, server_certificate_env="OPCUA_TEST_SERVER_CERT")
    pd.testing.assert_frame_equal(
        read_opcua(secure, TimeRange(), "timestamp"), read_opcua(_block(plant), TimeRange(), "timestamp")
    )


def test_a_block_without_the_servers_security_is_one_line(
    secure_plant: _Plant, pki: _Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as unsecured:
        read_opcua(_block(secure_plant), TimeRange(), "timestamp")
    message = str(unsecured.value)
    assert "security_policy: the server needs a security policy: it offers Basic256Sha256 SignAndEncrypt" in message
    assert "\n" not in message
    monkeypatch.setenv("OPCUA_TEST_CERT", pki.trusted.certificate)
    monkeypatch.setenv("OPCUA_TEST_KEY", pki.trusted.key)
    with pytest.raises(ConfigError, match=r"security_mode: the server offers no Basic256Sha256 Sign endpoint"):
        read_opcua(_secure_block(secure_plant, security_mode="Sign"), TimeRange(), "timestamp")
    with pytest.raises(ConfigError, match=r"security_policy: the server offers no Aes256_Sha256_RsaPss Sign"):
        read_opcua(_secure_block(secure_plant, security_policy="Aes256_Sha256_RsaPss"), TimeRange(), "timestamp")


def _never_shown(secret: str, message: str, caplog: pytest.LogCaptureFixture) -> None:
    """Neither the secret nor any line of it is in the message or the log records."""
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    for line in [secret, *(line for line in secret.splitlines() if len(line) > 20)]:
        assert line not in message and line not in logged


@pytest.mark.parametrize("hang_up", [False, True], ids=["refused", "hung-up"])
def test_an_untrusted_client_certificate_is_one_line(
    secure_plant: _Plant, pki: _Pki, hang_up: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    key = pki.stranger.encrypted_key(CANARY)
    monkeypatch.setenv("OPCUA_TEST_CERT", pki.stranger.certificate)
    monkeypatch.setenv("OPCUA_TEST_KEY", key)
    monkeypatch.setenv("OPCUA_TEST_KEY_PASSWORD", CANARY)
    spec = _secure_block(secure_plant, private_key_password_env="OPCUA_TEST_KEY_PASSWORD")
    assert secure_plant.gate is not None
    monkeypatch.setattr(secure_plant.gate, "hang_up", hang_up)
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as caught:
        read_opcua(spec, TimeRange(), "timestamp")
    assert time.monotonic() - started < spec.timeout_s
    message = str(caught.value)
    assert message.startswith(describe_location(spec) + ": certificate_env: ") and "\n" not in message
    assert message.endswith("(expected a client certificate the server trusts)")
    if hang_up:
        assert "the server closed the connection while opening the secure session" in message
    else:
        assert "refused the client certificate in OPCUA_TEST_CERT (BadCertificateUntrusted)" in message
    _never_shown(key, message, caplog)
    _never_shown(pki.stranger.key, message, caplog)
    _never_shown(CANARY, message, caplog)


def test_a_pinned_server_certificate_must_be_the_servers(
    secure_plant: _Plant, pki: _Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPCUA_TEST_CERT", pki.trusted.certificate)
    monkeypatch.setenv("OPCUA_TEST_KEY", pki.trusted.key)
    monkeypatch.setenv("OPCUA_TEST_SERVER_CERT", pki.other_server.certificate)
    spec = _secure_block(secure_plant, server_certificate_env="OPCUA_TEST_SERVER_CERT")
    with pytest.raises(ConfigError) as caught:
        read_opcua(spec, TimeRange(), "timestamp")
    message = str(caught.value)
    assert "server_certificate_env: the server presents the certificate SHA-256 " in message and "\n" not in message
    assert "not the pinned one in OPCUA_TEST_SERVER_CERT" in message
    monkeypatch.setenv("OPCUA_TEST_SERVER_CERT", pki.server.certificate)
    assert len(read_opcua(spec, TimeRange(), "timestamp")) == len(secure_plant.rows)


def test_certificates_and_keys_that_do_not_parse_are_one_line(pki: _Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = OpcUaSource(
        endpoint=f"opc.tcp://127.0.0.1:{free_port()}/nobody/",  # read before connecting: no server needed
        nodes={"temperature_c": "ns=2;i=2"},
        security_policy="Aes128_Sha256_RsaOaep",
        **{field: variable for field, variable in CERTIFICATE_VARIABLES.items() if field != "private_key_password_env"},
    )

    def refused(field: str, problem: str, block: OpcUaSource = spec) -> None:
        with pytest.raises(ConfigError) as caught:
            read_opcua(block, TimeRange(), "timestamp")
        message = str(caught.value)
        assert f"{field}: {problem}" in message and "\n" not in message
        assert CANARY not in message and CANARY[::-1] not in message  # the key's password, the wrong one
        assert not any(
            line in message for key in (pki.trusted.key, pki.stranger.key) for line in key.splitlines()[1:-1]
        )

    monkeypatch.setenv("OPCUA_TEST_CERT", CANARY)
    monkeypatch.setenv("OPCUA_TEST_KEY", pki.trusted.key)
    monkeypatch.setenv("OPCUA_TEST_SERVER_CERT", pki.server.certificate)
    refused("certificate_env", "OPCUA_TEST_CERT is not a PEM certificate")
    monkeypatch.setenv("OPCUA_TEST_CERT", pki.trusted.key)  # the key where the certificate belongs
    refused("certificate_env", "OPCUA_TEST_CERT is not a PEM certificate")
    monkeypatch.setenv("OPCUA_TEST_CERT", pki.trusted.certificate)
    monkeypatch.setenv("OPCUA_TEST_KEY", CANARY)
    refused("private_key_env", "OPCUA_TEST_KEY is not a PEM private key")
    monkeypatch.setenv("OPCUA_TEST_KEY", pki.stranger.key)
    refused(
        "private_key_env", "the private key in OPCUA_TEST_KEY does not belong to the certificate in OPCUA_TEST_CERT"
    )
    monkeypatch.setenv("OPCUA_TEST_KEY", pki.trusted.encrypted_key(CANARY))
    refused("private_key_password_env", "the private key in OPCUA_TEST_KEY is encrypted")
    with_password = spec.model_copy(update={"private_key_password_env": "OPCUA_TEST_KEY_PASSWORD"})
    monkeypatch.setenv("OPCUA_TEST_KEY_PASSWORD", CANARY[::-1])
    refused(
        "private_key_password_env",
        "the password in OPCUA_TEST_KEY_PASSWORD does not decrypt the private key in OPCUA_TEST_KEY",
        with_password,
    )
    monkeypatch.setenv("OPCUA_TEST_KEY", pki.trusted.key)
    refused("private_key_password_env", "the private key in OPCUA_TEST_KEY is not encrypted", with_password)
    monkeypatch.setenv("OPCUA_TEST_KEY", pki.trusted.key)
    monkeypatch.setenv("OPCUA_TEST_SERVER_CERT", "-----BEGIN CERTIFICATE-----\n" + CANARY)
    refused("server_certificate_env", "OPCUA_TEST_SERVER_CERT is not a PEM certificate")


def test_the_block_checks_its_security_fields() -> None:
    endpoint = "opc.tcp://127.0.0.1:4840/"
    with pytest.raises(
        ValidationError, match="security_policy Basic256Sha256 needs certificate_env and private_key_env"
    ):
        OpcUaSource(endpoint=endpoint, nodes={"t": "ns=2;i=2"}, security_policy="Basic256Sha256")
    with pytest.raises(ValidationError, match="security_policy Basic256Sha256 needs private_key_env"):
        OpcUaSource(endpoint=endpoint, nodes={"t": "ns=2;i=2"}, security_policy="Basic256Sha256", certificate_env="C")
    with pytest.raises(ValidationError, match="certificate_env needs security_policy"):
        OpcUaSource(endpoint=endpoint, nodes={"t": "ns=2;i=2"}, certificate_env="C", private_key_env="K")
    with pytest.raises(ValidationError, match="server_certificate_env needs security_policy"):
        OpcUaSource(endpoint=endpoint, nodes={"t": "ns=2;i=2"}, server_certificate_env="S")
    secure = OpcUaSource(
        endpoint=endpoint,
        nodes={"t": "ns=2;i=2"},
        security_policy="Aes256_Sha256_RsaPss",
        security_mode="Sign",
        **CERTIFICATE_VARIABLES,
    )
    assert describe_location(secure) == f"{endpoint} (history, 1 nodes, Aes256_Sha256_RsaPss Sign)"
    assert parse_location(location_parameter(secure), "sensors") == secure, "a pipeline parameter keeps the block"
