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

The reader is synchronous: it runs the client in an event loop of its own (``asyncio.run``), or in a worker thread
when the calling thread already runs one. Every network wait is bounded by ``timeout_s`` (connecting, each request)
or ``duration_s``. The username and password come only from the environment variables the block names.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

import pandas as pd
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeNotif
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes, get_name_and_doc
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

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
_NO_HISTORY = frozenset(
    {
        StatusCodes.BadHistoryOperationUnsupported,
        StatusCodes.BadHistoryOperationInvalid,
        StatusCodes.BadNotReadable,
    }
)

Reading = tuple[pd.Timestamp, Any]
Bounds = tuple[pd.Timestamp | None, pd.Timestamp | None]


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
    bounds = time_range.bounds()
    readings = _run_sync(_collect(spec, node_ids, credentials, bounds, where))
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
    bounds: Bounds,
    where: str,
) -> dict[str, list[Reading]]:
    """Connect, check the nodes and read them as the block's mode says; always disconnect (bounded)."""
    client = Client(spec.endpoint, timeout=spec.timeout_s)
    if credentials is not None:
        client.set_user(credentials[0])
        client.set_password(credentials[1])
    await _connect(client, spec, where)
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


async def _connect(client: Client, spec: OpcUaSource, where: str) -> None:
    """Open the session within ``timeout_s``; unreachable is a StorageError, refused credentials a ConfigError."""
    try:
        await asyncio.wait_for(client.connect(), spec.timeout_s)
    except UaStatusCodeError as exc:
        if exc.code in _REFUSED_CREDENTIALS:
            raise ConfigError(
                where,
                f"the server refused the credentials ({_status_name(exc.code)})",
                field="username_env/password_env",
                expected="a username and password the server accepts",
            ) from None
        raise StorageError(
            where, f"cannot open a session: {_status_name(exc.code)}", expected="an OPC UA server that accepts it"
        ) from None
    except (TimeoutError, OSError, ConnectionError, UaError) as exc:
        raise StorageError(
            where, f"cannot connect: {_reason(exc)}", expected=f"an OPC UA server answering within {spec.timeout_s:g} s"
        ) from None


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
