"""Rows from the variable nodes of an OPC UA server (``kind: opcua``), read with asyncua.

``mode: history`` reads each node's raw history between the time range's bounds (an open start reads from 1970,
an open end up to a day past now; the exclusive ``until`` is applied here, as OPC UA's end time is inclusive).
``mode: subscribe`` subscribes to the nodes' data changes for ``duration_s`` at ``sampling_ms``; the first
notification of each node is its current value, as OPC UA reports it.

Values are joined into rows by source timestamp (the server timestamp when a server sends none): one row per
timestamp, a column per ``nodes`` key, ``time_column`` with the UTC timestamps and, when the block names an
``asset_id``, a column ``asset_column`` (default ``asset_id``, ingest's default ``sensor_columns.asset_id``) with it;
likewise ``asset_type`` in a column ``asset_type_column`` (default ``asset_type``, ingest's optional type column).
A node without a value at a timestamp leaves that cell empty (a missing reading); values with a bad status are not
readings and are skipped.

The client first lists the server's endpoints over an unsecured channel (OPC UA's discovery, which every server
answers): the block's ``security_policy`` and ``security_mode`` must be among them. With a policy other than None
the session is signed, or signed and encrypted, with the client's application certificate and RSA private key (PEM
text; the client's application URI is the one its certificate names), and the server's certificate is the one
its endpoint presents or, with ``server_certificate_env``, must equal the pinned one. No certificate is checked
against a CA chain or a revocation list here: the server decides whether it trusts the client's.

The reader is synchronous: it runs the client in an event loop of its own (``asyncio.run``), or in a worker thread
when the calling thread already runs one. Every network wait is bounded by ``timeout_s`` (listing the endpoints,
connecting, each request) or ``duration_s``. The username, password, certificates and key come only from the
variables the block names (``shopfloor.common.credentials``); none of them is ever in a message or a log line.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import pandas as pd
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeNotif
from asyncua.crypto import uacrypto
from asyncua.crypto.security_policies import (
    SecurityPolicy,
    SecurityPolicyAes128Sha256RsaOaep,
    SecurityPolicyAes256Sha256RsaPss,
    SecurityPolicyBasic256Sha256,
    SecurityPolicyNone,
)
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes, get_name_and_doc
from asyncua.ua.uaerrors import UaError, UaStatusCodeError
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shopfloor.common.credentials import credential
from shopfloor.common.errors import ConfigError, StorageError
from shopfloor.common.sources import OpcUaSource, TimeRange, describe_location

__all__ = ["read_opcua"]

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")
# OPC UA wants two of start, end and a value count: an open start is this, an open end now plus a margin for a
# server clock ahead of ours.
_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CLOCK_MARGIN = dt.timedelta(days=1)
# Data changes a server may queue per node between two publishes (a fast node must not lose readings).
_QUEUE_SIZE = 1000
_REFUSED_CREDENTIALS = frozenset(
    {
        StatusCodes.BadUserAccessDenied,
        StatusCodes.BadIdentityTokenInvalid,
        StatusCodes.BadIdentityTokenRejected,
        StatusCodes.BadUserSignatureInvalid,
    }
)
# What servers answer when they do not trust the client's certificate (at OpenSecureChannel or CreateSession).
_REFUSED_CERTIFICATE = frozenset(
    {
        StatusCodes.BadSecurityChecksFailed,
        StatusCodes.BadCertificateUntrusted,
        StatusCodes.BadCertificateInvalid,
        StatusCodes.BadCertificateUriInvalid,
        StatusCodes.BadCertificateUseNotAllowed,
        StatusCodes.BadCertificateTimeInvalid,
        StatusCodes.BadCertificateHostNameInvalid,
        StatusCodes.BadCertificateRevoked,
        StatusCodes.BadCertificateRevocationUnknown,
        StatusCodes.BadCertificateIssuerRevoked,
        StatusCodes.BadCertificateIssuerRevocationUnknown,
        StatusCodes.BadCertificateIssuerTimeInvalid,
        StatusCodes.BadCertificateIssuerUseNotAllowed,
        StatusCodes.BadCertificatePolicyCheckFailed,
        StatusCodes.BadApplicationSignatureInvalid,
    }
)
_REFUSED_SECURITY = frozenset({StatusCodes.BadSecurityPolicyRejected, StatusCodes.BadSecurityModeRejected})
_POLICIES: dict[str, type[SecurityPolicy]] = {
    "None": SecurityPolicyNone,
    "Basic256Sha256": SecurityPolicyBasic256Sha256,
    "Aes128_Sha256_RsaOaep": SecurityPolicyAes128Sha256RsaOaep,
    "Aes256_Sha256_RsaPss": SecurityPolicyAes256Sha256RsaPss,
}
_NO_HISTORY = frozenset(
    {
        StatusCodes.BadHistoryOperationUnsupported,
        StatusCodes.BadHistoryOperationInvalid,
        StatusCodes.BadNotReadable,
    }
)

Reading = tuple[pd.Timestamp, Any]
Bounds = tuple[pd.Timestamp | None, pd.Timestamp | None]


@dataclasses.dataclass(frozen=True)
class _Security:
    """A block's security policy with the client's certificate and key, read and checked before connecting."""

    policy: type[SecurityPolicy]
    mode: ua.MessageSecurityMode
    certificate: x509.Certificate
    private_key: uacrypto.CertProperties = dataclasses.field(repr=False)  # the PEM text and its password
    pinned: x509.Certificate | None  # the server's certificate from server_certificate_env


class _HideIdentityToken(logging.Filter):
    """asyncua logs every request it sends at DEBUG, ActivateSession's password too: that record loses its body."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, without the request that holds the identity token."""
        if isinstance(record.args, tuple) and any(isinstance(arg, ua.ActivateSessionRequest) for arg in record.args):
            record.msg, record.args = "Sending: ActivateSessionRequest (identity token not logged)", ()
        return True


def _hide_identity_tokens() -> None:
    """Install the filter on asyncua's request logger once (a logger's filters see the records logged on it)."""
    requests = logging.getLogger("asyncua.client.ua_client.UASocketProtocol")
    if not any(isinstance(existing, _HideIdentityToken) for existing in requests.filters):
        requests.addFilter(_HideIdentityToken())


_hide_identity_tokens()


def read_opcua(spec: OpcUaSource, time_range: TimeRange, time_column: str) -> pd.DataFrame:
    """Read the block's nodes (history or a subscription window) as one row per source timestamp."""
    where = describe_location(spec)
    named = {spec.asset_column} if spec.asset_id else set()
    named |= {spec.asset_type_column} if spec.asset_type else set()
    if time_column in spec.nodes or time_column in named:
        raise ConfigError(
            where,
            f"column '{time_column}' is both the time column and a value",
            field="nodes",
            expected="node and asset column names other than the time column",
        )
    node_ids = _node_ids(spec, where)
    credentials = _credentials(spec, where)
    security = _security(spec, where)
    bounds = time_range.bounds()
    readings = _run_sync(_collect(spec, node_ids, credentials, security, bounds, where))
    return _rows(readings, spec, time_column, bounds)


def _node_ids(spec: OpcUaSource, where: str) -> dict[str, ua.NodeId]:
    """Parse every node id of the block; a malformed one is one line naming its column."""
    parsed = {}
    for column, text in spec.nodes.items():
        try:
            parsed[column] = ua.NodeId.from_string(text)
        except (ValueError, UaError):
            raise ConfigError(
                where, f"'{text}' is not a node id", field=f"nodes.{column}", expected="e.g. ns=2;i=7 or ns=2;s=Name"
            ) from None
    return parsed


def _credentials(spec: OpcUaSource, where: str) -> tuple[str, str] | None:
    """Username and password from the environment variables the block names; None: anonymous."""
    if not spec.username_env and not spec.password_env:
        return None
    username = credential(spec.username_env, where, "username_env") if spec.username_env else ""
    password = credential(spec.password_env, where, "password_env") if spec.password_env else ""
    return username, password


def _security(spec: OpcUaSource, where: str) -> _Security | None:
    """The client's certificate, key and pinned server certificate from the block's variables; None: no policy."""
    if spec.security_policy == "None" or spec.certificate_env is None or spec.private_key_env is None:
        return None  # the block's validation ensures both variables with a policy
    certificate = _pem_certificate(spec.certificate_env, where, "certificate_env")
    password = (
        credential(spec.private_key_password_env, where, "private_key_password_env")
        if spec.private_key_password_env
        else None
    )
    key_text = credential(spec.private_key_env, where, "private_key_env").encode()
    key = _private_key(key_text, password, spec, where)
    if _public_der(key.public_key()) != _public_der(certificate.public_key()):
        raise ConfigError(
            where,
            f"the private key in {spec.private_key_env} does not belong to the certificate in {spec.certificate_env}",
            field="private_key_env",
            expected="the private key of the client certificate",
        )
    pinned = (
        _pem_certificate(spec.server_certificate_env, where, "server_certificate_env")
        if spec.server_certificate_env
        else None
    )
    return _Security(
        policy=_POLICIES[spec.security_policy],
        mode=ua.MessageSecurityMode[spec.security_mode],
        certificate=certificate,
        private_key=uacrypto.CertProperties(key_text, extension="pem", password=password),
        pinned=pinned,
    )


def _pem_certificate(variable: str, where: str, field: str) -> x509.Certificate:
    """The X.509 certificate a variable holds as PEM text; anything else is one line naming the field, not the text."""
    text = credential(variable, where, field)
    try:
        return x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        raise ConfigError(
            where,
            f"{variable} is not a PEM certificate",
            field=field,
            expected="the certificate's PEM text, -----BEGIN CERTIFICATE----- ...",
        ) from None


def _private_key(text: bytes, password: str | None, spec: OpcUaSource, where: str) -> rsa.RSAPrivateKey:
    """The client's RSA private key from its PEM text (decrypted with the password, if named); one line if not."""
    variable = spec.private_key_env
    if b"PRIVATE KEY-----" not in text:
        raise ConfigError(
            where,
            f"{variable} is not a PEM private key",
            field="private_key_env",
            expected="the key's PEM text, -----BEGIN PRIVATE KEY----- ...",
        )
    try:
        key = serialization.load_pem_private_key(text, password.encode() if password is not None else None)
    except TypeError:  # encrypted without a password, or a password for a key that is not encrypted
        if password is None:
            raise ConfigError(
                where,
                f"the private key in {variable} is encrypted",
                field="private_key_password_env",
                expected="the variable holding its password",
            ) from None
        raise ConfigError(
            where,
            f"the private key in {variable} is not encrypted",
            field="private_key_password_env",
            expected="none for an unencrypted key",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        if password is not None:
            raise ConfigError(
                where,
                f"the password in {spec.private_key_password_env} does not decrypt the private key in {variable}",
                field="private_key_password_env",
                expected="the key's password",
            ) from None
        raise ConfigError(
            where, f"{variable} holds no readable private key", field="private_key_env", expected="a PEM private key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(
            where,
            f"the private key in {variable} is not an RSA key",
            field="private_key_env",
            expected="an RSA key: every OPC UA security policy signs with RSA",
        )
    return key


def _public_der(key: Any) -> bytes:
    """A public key's DER bytes, to tell whether a private key belongs to a certificate."""
    return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def _run_sync(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion from synchronous code, in a worker thread if this thread runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="shopfloor-opcua") as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _collect(
    spec: OpcUaSource,
    node_ids: dict[str, ua.NodeId],
    credentials: tuple[str, str] | None,
    security: _Security | None,
    bounds: Bounds,
    where: str,
) -> dict[str, list[Reading]]:
    """Connect, check the nodes and read them as the block's mode says; always disconnect (bounded)."""
    client = Client(spec.endpoint, timeout=spec.timeout_s)
    if credentials is not None:
        client.set_user(credentials[0])
        client.set_password(credentials[1])
    endpoint = await _endpoint(client, spec, where)
    if security is not None:
        await _secure(client, security, endpoint, spec, where)
    await _connect(client, spec, security, where)
    try:
        nodes = {column: client.get_node(node_id) for column, node_id in node_ids.items()}
        await _check_nodes(client, nodes, spec, where)
        if spec.mode == "history":
            return await _history(nodes, bounds, where)
        return await _subscription(client, nodes, spec, where)
    except (TimeoutError, OSError, ConnectionError) as exc:
        raise StorageError(
            where, f"the server stopped answering ({_reason(exc)})", expected=f"answers within {spec.timeout_s:g} s"
        ) from None
    except UaStatusCodeError as exc:
        raise StorageError(where, f"the server answered {_status_name(exc.code)}", expected="a readable node") from None
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), spec.timeout_s)


async def _endpoint(client: Client, spec: OpcUaSource, where: str) -> ua.EndpointDescription:
    """The server's endpoint with the block's security policy and mode, listed over an unsecured channel."""
    try:
        endpoints = await asyncio.wait_for(client.connect_and_get_server_endpoints(), spec.timeout_s)
    except UaStatusCodeError as exc:
        raise StorageError(
            where, f"cannot list the server's endpoints: {_status_name(exc.code)}", expected="an OPC UA server"
        ) from None
    except (TimeoutError, OSError, UaError) as exc:
        raise _unreachable(exc, spec, where) from None
    policy = _POLICIES[spec.security_policy].URI
    mode = (
        ua.MessageSecurityMode.None_ if spec.security_policy == "None" else ua.MessageSecurityMode[spec.security_mode]
    )
    binary = [endpoint for endpoint in endpoints if (endpoint.EndpointUrl or "").startswith(ua.OPC_TCP_SCHEME)]
    for endpoint in binary:
        if endpoint.SecurityPolicyUri == policy and endpoint.SecurityMode == mode:
            return endpoint
    offered = ", ".join(dict.fromkeys(map(_offer, binary))) or "nothing"
    if spec.security_policy == "None":
        raise ConfigError(
            where,
            f"the server needs a security policy: it offers {offered}",
            field="security_policy",
            expected="one of those, with certificate_env and private_key_env",
        )
    same_policy = any(endpoint.SecurityPolicyUri == policy for endpoint in binary)
    raise ConfigError(
        where,
        f"the server offers no {spec.security_policy} {spec.security_mode} endpoint: it offers {offered}",
        field="security_mode" if same_policy else "security_policy",
        expected="a security policy and mode the server offers",
    )


def _offer(endpoint: ua.EndpointDescription) -> str:
    """An endpoint's security as a block names it, e.g. Basic256Sha256 SignAndEncrypt, or None."""
    policy = str(endpoint.SecurityPolicyUri).rpartition("#")[2]
    mode = ua.MessageSecurityMode(endpoint.SecurityMode)
    return policy if mode == ua.MessageSecurityMode.None_ else f"{policy} {mode.name}"


async def _secure(
    client: Client, security: _Security, endpoint: ua.EndpointDescription, spec: OpcUaSource, where: str
) -> None:
    """Check the server's certificate (pinned, or the endpoint's); hand the client's certificate and key to asyncua."""
    try:
        presented = uacrypto.x509_from_der(endpoint.ServerCertificate)
    except ValueError:
        raise StorageError(
            where, "the server's endpoint presents an unreadable certificate", expected="an X.509 certificate"
        ) from None
    if security.pinned is not None and presented is not None and presented != security.pinned:
        raise ConfigError(
            where,
            f"the server presents the certificate SHA-256 {_fingerprint(presented)}, not the pinned one in "
            f"{spec.server_certificate_env} (SHA-256 {_fingerprint(security.pinned)})",
            field="server_certificate_env",
            expected="the server's own certificate",
        )
    server_certificate = security.pinned or presented
    if server_certificate is None:
        raise ConfigError(
            where,
            "the server's endpoint presents no certificate",
            field="server_certificate_env",
            expected="the variable holding the server's certificate",
        )
    uris = _application_uris(security.certificate)
    if uris:
        client.application_uri = uris[0]  # what servers compare with the certificate's own
    await client.set_security(
        security.policy,
        certificate=security.certificate.public_bytes(serialization.Encoding.DER),
        private_key=security.private_key,
        server_certificate=server_certificate.public_bytes(serialization.Encoding.DER),
        mode=security.mode,
    )


def _application_uris(certificate: x509.Certificate) -> list[str]:
    """The URIs of a certificate's subjectAltName: an OPC UA application certificate names its application's."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(uri) for uri in names.get_values_for_type(x509.UniformResourceIdentifier)]


def _fingerprint(certificate: x509.Certificate) -> str:
    """The start of a certificate's SHA-256 fingerprint, as a server's certificate store shows it."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()[:23] + "..."


async def _connect(client: Client, spec: OpcUaSource, security: _Security | None, where: str) -> None:
    """Open the session within ``timeout_s``; unreachable: a StorageError; refused: a ConfigError naming the field."""
    try:
        await asyncio.wait_for(client.connect(), spec.timeout_s)
    except UaStatusCodeError as exc:
        raise _refusal(exc.code, spec, security, where) from None
    except UaError as exc:
        if security is None or "certificate mismatch" not in str(exc):
            raise _unreachable(exc, spec, where) from None
        raise ConfigError(  # asyncua's check: the session's certificate is not the endpoint's (or the pinned one)
            where,
            "the server's session presents another certificate than its endpoint or the pin",
            field="server_certificate_env",
            expected="the server's own certificate",
        ) from None
    except ConnectionError as exc:
        if security is None or isinstance(exc, ConnectionRefusedError):
            raise _unreachable(exc, spec, where) from None
        raise ConfigError(  # it listed its endpoints a moment ago: servers hang up on a certificate they distrust
            where,
            f"the server closed the connection while opening the secure session ({_reason(exc)})",
            field="certificate_env",
            expected="a client certificate the server trusts",
        ) from None
    except (TimeoutError, OSError) as exc:
        raise _unreachable(exc, spec, where) from None


def _refusal(code: int, spec: OpcUaSource, security: _Security | None, where: str) -> ConfigError | StorageError:
    """The error for a status that refused the session: the credentials, the certificate, the policy or else."""
    if code in _REFUSED_CREDENTIALS:
        return ConfigError(
            where,
            f"the server refused the credentials ({_status_name(code)})",
            field="username_env/password_env",
            expected="a username and password the server accepts",
        )
    if security is not None and code in _REFUSED_CERTIFICATE:
        return ConfigError(
            where,
            f"the server refused the client certificate in {spec.certificate_env} ({_status_name(code)})",
            field="certificate_env",
            expected="a client certificate the server trusts",
        )
    if code in _REFUSED_SECURITY:
        security_text = (
            "a session without security" if security is None else f"{spec.security_policy} {spec.security_mode}"
        )
        return ConfigError(
            where,
            f"the server refused {security_text} ({_status_name(code)})",
            field="security_policy",
            expected="a security policy and mode the server offers",
        )
    return StorageError(
        where, f"cannot open a session: {_status_name(code)}", expected="an OPC UA server that accepts it"
    )


def _unreachable(exc: BaseException, spec: OpcUaSource, where: str) -> StorageError:
    """A server that cannot be reached or did not answer in time, as one line."""
    return StorageError(
        where, f"cannot connect: {_reason(exc)}", expected=f"an OPC UA server answering within {spec.timeout_s:g} s"
    )


async def _check_nodes(client: Client, nodes: dict[str, Node], spec: OpcUaSource, where: str) -> None:
    """Every node exists and is a variable; in history mode it must keep a readable history."""
    classes = await client.read_attributes(nodes.values(), AttributeIds.NodeClass)
    access = await client.read_attributes(nodes.values(), AttributeIds.UserAccessLevel)
    for (column, node), node_class, level in zip(nodes.items(), classes, access, strict=True):
        name = node.nodeid.to_string()
        field = f"nodes.{column}"
        status = node_class.StatusCode or ua.StatusCode()
        if status.value == StatusCodes.BadNodeIdUnknown:
            raise ConfigError(where, f"node {name} not found", field=field, expected="a node id the server has")
        status.check()
        if _value(node_class) != ua.NodeClass.Variable:
            raise ConfigError(where, f"node {name} is not a variable", field=field, expected="a variable node")
        if spec.mode == "history" and not int(_value(level) or 0) & (1 << ua.AccessLevel.HistoryRead):
            raise ConfigError(
                where,
                f"node {name} keeps no history",
                field=field,
                expected="a node the server historizes, or mode: subscribe",
            )


async def _history(nodes: dict[str, Node], bounds: Bounds, where: str) -> dict[str, list[Reading]]:
    """Each node's raw history within the time range's bounds (an open side: all of it)."""
    start, end = bounds
    start_time = start.to_pydatetime() if start is not None else _EARLIEST
    end_time = end.to_pydatetime() if end is not None else dt.datetime.now(dt.UTC) + _CLOCK_MARGIN
    readings = {}
    for column, node in nodes.items():
        try:
            values = await node.read_raw_history(start_time, end_time, numvalues=0, return_bounds=False)
        except UaStatusCodeError as exc:
            if exc.code in _NO_HISTORY:
                raise ConfigError(
                    where,
                    f"node {node.nodeid.to_string()} keeps no history ({_status_name(exc.code)})",
                    field=f"nodes.{column}",
                    expected="a node the server historizes, or mode: subscribe",
                ) from None
            raise
        readings[column] = [reading for value in values if (reading := _reading(value)) is not None]
    _LOGGER.info("%s: read %d history values", where, sum(map(len, readings.values())))
    return readings


class _Collector:
    """Subscription handler: keeps every data change per column and whether the subscription ended."""

    def __init__(self, columns: dict[ua.NodeId, str]) -> None:
        self.columns = columns
        self.readings: dict[str, list[Reading]] = {column: [] for column in columns.values()}
        self.lost: str | None = None

    def datachange_notification(self, node: Node, val: Any, data: DataChangeNotif) -> None:
        """A data change: one reading of the node's column."""
        reading = _reading(data.monitored_item.Value)
        if reading is not None and node.nodeid in self.columns:
            self.readings[self.columns[node.nodeid]].append(reading)

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        """The server ended the subscription (timeout, shutdown)."""
        self.lost = _status_name(status.Status.value)


async def _subscription(
    client: Client, nodes: dict[str, Node], spec: OpcUaSource, where: str
) -> dict[str, list[Reading]]:
    """The nodes' data changes during ``duration_s``, sampled and published every ``sampling_ms``."""
    collector = _Collector({node.nodeid: column for column, node in nodes.items()})
    subscription = await client.create_subscription(spec.sampling_ms, collector)
    handles = await subscription.subscribe_data_change(
        list(nodes.values()), queuesize=_QUEUE_SIZE, sampling_interval=ua.Double(spec.sampling_ms)
    )
    for column, handle in zip(nodes, handles, strict=True):
        if isinstance(handle, ua.StatusCode):
            raise StorageError(
                where,
                f"cannot subscribe to node {spec.nodes[column]}: {_status_name(handle.value)}",
                expected="a node the server lets this user monitor",
            )
    _LOGGER.info("%s: subscribed, collecting for %g s", where, spec.duration_s)
    await asyncio.sleep(spec.duration_s)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(subscription.delete(), spec.timeout_s)
    if collector.lost is not None:
        raise StorageError(where, f"the subscription ended early ({collector.lost})", expected="a server that keeps it")
    return collector.readings


def _reading(value: ua.DataValue) -> Reading | None:
    """A data value as (UTC time, value); None for a bad status or a value without a time."""
    if value.StatusCode is not None and not value.StatusCode.is_good():
        return None
    moment = value.SourceTimestamp or value.ServerTimestamp
    if moment is None or value.Value is None:
        return None
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    content = value.Value.Value
    return stamp, content if content is None or isinstance(content, int | float | str | bool) else str(content)


def _rows(readings: dict[str, list[Reading]], spec: OpcUaSource, time_column: str, bounds: Bounds) -> pd.DataFrame:
    """Join the columns' readings into one row per timestamp within the time range, oldest first."""
    columns = {}
    for column in spec.nodes:
        stamps = pd.DatetimeIndex([stamp for stamp, _ in readings.get(column, [])], dtype="datetime64[ns, UTC]")
        series = pd.Series([content for _, content in readings.get(column, [])], index=stamps, dtype=None)
        columns[column] = series[~series.index.duplicated(keep="last")]
    wide = pd.concat(columns, axis=1).sort_index()
    start, end = bounds
    if start is not None:
        wide = wide[wide.index >= start]
    if end is not None:
        wide = wide[wide.index < end]
    frame = wide.reset_index(drop=True)
    if spec.asset_type:
        frame.insert(0, spec.asset_type_column, spec.asset_type)
    if spec.asset_id:
        frame.insert(0, spec.asset_column, spec.asset_id)
    frame.insert(0, time_column, wide.index.to_numpy())
    frame[time_column] = pd.to_datetime(frame[time_column], utc=True)
    return frame


def _value(data: ua.DataValue) -> Any:
    """The Python value a DataValue carries (None if empty)."""
    return data.Value.Value if data.Value is not None else None


def _status_name(code: int) -> str:
    """An OPC UA status code's name, e.g. BadNodeIdUnknown."""
    return str(get_name_and_doc(code)[0])


def _reason(exc: BaseException) -> str:
    """A short, credential-free reason of a network error."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
