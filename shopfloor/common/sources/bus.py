"""Message-bus readers: a NATS JetStream subject or a RabbitMQ queue, one row per JSON message.

Both read the messages the subject or queue holds when the read starts, oldest first (at most ``messages``), and
stop early when none arrives for ``idle_s``; every network wait is bounded, so a read never hangs. The typical
use is maintenance events: the CMMS publishes its work orders, and a retrain reads all of them.

NATS JetStream: an ephemeral pull consumer (deliver all, no acknowledgements, filtered on the subject) reads the
stream from its first message; the stream is left as it is, so the next read gets the same messages again (as far
as the stream's retention keeps them). The consumer is deleted after the read and expires on its own otherwise.

RabbitMQ: a read never consumes. Messages are received without acknowledging them and go back to the queue, in
their order, when the connection closes, whether the read, or the ingest after it, succeeds or fails: events read
for training are never lost, and the next retrain reads them again. The queue is thus the plant's history, not a
work queue: bind a classic queue of its own to the CMMS exchange (a copy of the events) and bound it with
``x-max-length`` or ``x-message-ttl``. On a quorum queue before RabbitMQ 4.3 every read counts toward the
queue's delivery limit, which drops a message after that many reads.

Time range: neither pushes it down. A message's server time is when it was published, not when the event
happened (work orders are published late, scheduled ones early), so a server-side start time could drop events
of the window; ingest keeps the rows whose payload time lies in the range.

Payloads: a UTF-8 JSON object per message; the columns are ``fields`` (column -> dotted path, e.g.
``order.asset.id``; a missing path is an empty cell) or else the objects' top-level keys; a nested object or list
in a cell is kept as compact JSON text. A message that is not a JSON object (a heartbeat, a binary frame) is
skipped and counted, and logged once with the count; a read in which no message is a JSON object fails.

The URL (``url_env``) may hold credentials: no message or log line here ever shows it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
import pandas as pd
import pika
import pika.exceptions
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shopfloor.common.credentials import credential
from shopfloor.common.errors import ConfigError, DataValidationError, StorageError
from shopfloor.common.sources import BusSource, TimeRange, describe_location

__all__ = ["read_nats", "read_rabbitmq"]

_LOG = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 10
_REQUEST_TIMEOUT_S = 10.0
_HEARTBEAT_S = 20
_FETCH_BATCH = 500
_CONSUMER_EXPIRY_S = 120.0
_MAX_PREFETCH = 65_535
_NATS_SCHEMES = {"nats", "tls", "ws", "wss"}

_T = TypeVar("_T")


def read_nats(spec: BusSource, time_range: TimeRange, time_column: str) -> pd.DataFrame:
    """The JSON messages of a JetStream subject from the stream's start, one row each; the stream is unchanged."""
    del time_range, time_column  # ingest filters on the payload's time (see the module docstring)
    where = describe_location(spec)
    url = credential(spec.url_env, where, "url_env")
    return _rows(spec, _run(_read_stream(spec, url, where)), where)


def read_rabbitmq(spec: BusSource, time_range: TimeRange, time_column: str) -> pd.DataFrame:
    """The JSON messages of a RabbitMQ queue, one row each; never acknowledged, so the queue keeps them all."""
    del time_range, time_column  # a queue has no time index; ingest filters on the payload's time
    where = describe_location(spec)
    url = credential(spec.url_env, where, "url_env")
    with _quiet("pika"):
        return _rows(spec, _read_queue(spec, _amqp_parameters(url, where), where), where)


# --- NATS JetStream ---------------------------------------------------------------------------------------------


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to its end, also from code already inside an event loop (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _read_stream(spec: BusSource, url: str, where: str) -> list[bytes]:
    """Connect, read the subject's messages and close; any failure is one line naming the source."""
    client = await _connect_nats(url, spec.url_env, where)
    try:
        return await _pull_messages(client, spec, where)
    except (TimeoutError, nats.errors.Error, OSError) as exc:
        raise StorageError(where, f"reading failed ({_reason(exc)})", expected="a reachable NATS server") from None
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), _REQUEST_TIMEOUT_S)


async def _connect_nats(url: str, variable: str, where: str) -> NatsClient:
    """A connection with one attempt and bounded waits; its errors are kept for the message, never logged."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else "nats"
    if scheme not in _NATS_SCHEMES:
        raise ConfigError(where, "not a nats:// URL", field="url_env", expected="nats://[user:pass@]host:port")
    errors: list[BaseException] = []

    async def keep(error: Exception) -> None:
        errors.append(error)

    async def ignore() -> None:
        return None

    try:
        return await asyncio.wait_for(
            nats.connect(
                url,
                connect_timeout=_CONNECT_TIMEOUT_S,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=keep,
                disconnected_cb=ignore,
                closed_cb=ignore,
            ),
            2 * _CONNECT_TIMEOUT_S + 5,
        )
    except (TimeoutError, nats.errors.Error, OSError, ValueError) as exc:
        cause = errors[-1] if isinstance(exc, nats.errors.NoServersError) and errors else exc
        expected = f"a NATS server at the URL in ${variable}"
        if isinstance(cause, nats.errors.AuthorizationError) or "authorization" in str(cause).lower():
            raise ConfigError(where, "the server refused the credentials", field="url_env", expected=expected) from None
        if isinstance(cause, ValueError):
            raise ConfigError(where, "not a nats:// URL", field="url_env", expected=expected) from None
        raise StorageError(where, f"server not reachable ({_reason(cause)})", expected=expected) from None


async def _pull_messages(client: NatsClient, spec: BusSource, where: str) -> list[bytes]:
    """The payloads an ephemeral pull consumer delivers from the stream's first message on the subject."""
    jetstream = client.jetstream(timeout=_REQUEST_TIMEOUT_S)
    try:
        stream = await jetstream.find_stream_name_by_subject(spec.subject)
    except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError):
        raise StorageError(where, "the server has no JetStream", expected="a NATS server with JetStream") from None
    except nats.js.errors.NotFoundError:
        expected = "a subject bound to a JetStream stream"
        raise ConfigError(where, "no stream holds this subject", field="subject", expected=expected) from None
    name = f"shopfloor-{uuid.uuid4().hex[:16]}"
    config = ConsumerConfig(
        name=name,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.NONE,
        filter_subject=spec.subject,
        inactive_threshold=_CONSUMER_EXPIRY_S,
        mem_storage=True,
    )
    info = await jetstream.add_consumer(stream, config)
    try:
        subscription = await jetstream.pull_subscribe_bind(consumer=name, stream=stream)
        return await _fetch(subscription, _target(info.num_pending or 0, spec.messages), spec.idle_s)
    finally:
        with contextlib.suppress(Exception):
            await jetstream.delete_consumer(stream, name)


async def _fetch(subscription: Any, target: int, idle_s: float) -> list[bytes]:
    """Fetch in batches until ``target`` payloads arrived or a fetch waited ``idle_s`` for nothing."""
    payloads: list[bytes] = []
    while len(payloads) < target:
        try:
            batch = await subscription.fetch(min(_FETCH_BATCH, target - len(payloads)), timeout=idle_s)
        except nats.errors.TimeoutError:
            break
        payloads.extend(message.data for message in batch)
    return payloads


# --- RabbitMQ ---------------------------------------------------------------------------------------------------


def _amqp_parameters(url: str, where: str) -> pika.URLParameters:
    """Connection parameters from the URL with one attempt and bounded socket, handshake and liveness waits."""
    try:
        parameters = pika.URLParameters(url)
    except (ValueError, TypeError):
        expected = "amqp://user:pass@host:port/vhost"
        raise ConfigError(where, "not an amqp:// URL", field="url_env", expected=expected) from None
    parameters.connection_attempts = 1
    parameters.socket_timeout = _CONNECT_TIMEOUT_S
    parameters.stack_timeout = _CONNECT_TIMEOUT_S + 5
    parameters.heartbeat = _HEARTBEAT_S
    return parameters


def _read_queue(spec: BusSource, parameters: pika.URLParameters, where: str) -> list[bytes]:
    """Connect, receive the queue's messages unacknowledged and close, which returns them all to the queue."""
    connection = _connect_amqp(parameters, spec.url_env, where)
    try:
        channel = connection.channel()
        ready = channel.queue_declare(queue=spec.subject, passive=True).method.message_count
        return _receive(channel, spec, _target(ready, spec.messages))
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            expected = "an existing queue (declared by the plant)"
            raise ConfigError(where, "no such queue", field="subject", expected=expected) from None
        if exc.reply_code == 403:
            raise ConfigError(where, "access to the queue refused", field="subject", expected="read access") from None
        problem = f"the server closed the channel ({exc.reply_code})"
        raise StorageError(where, problem, expected="a readable queue") from None
    except pika.exceptions.AMQPError as exc:
        raise StorageError(where, f"reading failed ({_reason(exc)})", expected="a reachable RabbitMQ server") from None
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def _connect_amqp(parameters: pika.URLParameters, variable: str, where: str) -> pika.BlockingConnection:
    """A blocking connection, or one line saying whether the login was refused or the server not reachable."""
    expected = f"a RabbitMQ server at the URL in ${variable}"
    try:
        return pika.BlockingConnection(parameters)
    except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError):
        raise ConfigError(where, "the server refused the login", field="url_env", expected=expected) from None
    except pika.exceptions.ProbableAccessDeniedError:
        raise ConfigError(where, "access to the virtual host refused", field="url_env", expected=expected) from None
    except (pika.exceptions.AMQPError, OSError) as exc:
        raise StorageError(where, f"server not reachable ({_reason(exc)})", expected=expected) from None


def _receive(channel: Any, spec: BusSource, target: int) -> list[bytes]:
    """Up to ``target`` payloads, received without acknowledging, stopping after ``idle_s`` without one."""
    payloads: list[bytes] = []
    if target == 0:
        return payloads
    # Never acknowledged, so the prefetch window caps how many the broker sends at all (0 = no limit).
    channel.basic_qos(prefetch_count=target if target <= _MAX_PREFETCH else 0)
    for method, _properties, body in channel.consume(spec.subject, auto_ack=False, inactivity_timeout=spec.idle_s):
        if method is None:
            break
        payloads.append(body)
        if len(payloads) >= target:
            break
    return payloads


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a library's logger for a while: its connection failures log tracebacks our one-line errors replace."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


# --- both -------------------------------------------------------------------------------------------------------


def _target(available: int, limit: int | None) -> int:
    """How many messages to read: those there now, at most ``limit``."""
    return available if limit is None else min(available, limit)


def _rows(spec: BusSource, payloads: list[bytes], where: str) -> pd.DataFrame:
    """One row per JSON-object payload: the ``fields`` columns or the top-level keys; others skipped and counted."""
    objects = [parsed for parsed in map(_json_object, payloads) if parsed is not None]
    skipped = len(payloads) - len(objects)
    if skipped and not objects:
        expected = "a UTF-8 JSON object per message"
        raise DataValidationError(where, f"none of the {len(payloads)} messages is a JSON object", expected=expected)
    if skipped:
        _LOG.warning("%s: skipped %d of %d messages that are not JSON objects", where, skipped, len(payloads))
    if not spec.fields:
        return pd.DataFrame([{key: _cell(value) for key, value in item.items()} for item in objects])
    columns = list(spec.fields)
    rows = [[_cell(_at(item, spec.fields[column])) for column in columns] for item in objects]
    return pd.DataFrame(rows, columns=columns)


def _json_object(payload: bytes) -> dict[str, Any] | None:
    """A payload parsed as a JSON object, or None when it is not one."""
    try:
        parsed = json.loads(payload)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return None
    return parsed if isinstance(parsed, dict) else None


def _at(item: Any, path: str) -> Any:
    """The value at a dotted path (object keys, list indices), None where the path does not lead anywhere."""
    for key in path.split("."):
        if isinstance(item, dict) and key in item:
            item = item[key]
        elif isinstance(item, list) and key.isdigit() and int(key) < len(item):
            item = item[int(key)]
        else:
            return None
    return item


def _cell(value: Any) -> Any:
    """A JSON value as a table cell: a nested object or list as compact JSON text (as a CSV cell would hold it)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")) if isinstance(value, dict | list) else value


def _reason(error: BaseException) -> str:
    """A credential-free cause: the innermost wrapped error's class name (error texts may echo a URL)."""
    for _ in range(5):
        inner = getattr(error, "exception", None) or next(iter(error.args), None)
        if not isinstance(inner, BaseException):
            break
        error = inner
    return type(error).__name__
