"""Rows of a SQL table or query (``kind: sql``), streamed in chunks through SQLAlchemy.

The SQLAlchemy URL comes only from the environment variable ``url_env`` names (PostgreSQL via psycopg2,
MariaDB/MySQL via PyMySQL, SQLite...). A ``table`` (``schema.table`` allowed) is read as
``SELECT <its columns> FROM <table>``, names quoted by SQLAlchemy, never formatted into the SQL; with a bounded
time range and a date-time column ``time_column`` (default: the mapped timestamp) the range is pushed down as
``WHERE time >= :since AND time < :until``. A ``query`` is a SELECT that may use ``:since`` and ``:until``
(UTC; an open side binds 1000-01-01 / 9999-12-31); no other parameter is bound. Ingest filters on the time range
again, so a query without them or a text time column still gives the window's rows.

Rows are fetched ``chunk_rows`` at a time with a server-side cursor and concatenated; values arrive as the driver
gives them (date-times as datetime objects, naive ones meaning UTC: sessions run in UTC). Every wait is bounded:
connecting by ``timeout_s``, each read by ``read_timeout_s`` (PostgreSQL: statement timeout and TCP keepalives).
The URL and its password never reach a message or a log line: errors are one line built from the driver's short
reason, with the password masked; a server that refuses the credentials or the SQL is a ``ConfigError``, one that
cannot be reached or drops the connection a ``StorageError``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import column, table

from shopfloor.common.credentials import credential
from shopfloor.common.errors import ConfigError, StorageError
from shopfloor.common.sources import SqlSource, TimeRange, describe_location

__all__ = ["read_sql"]

_LOGGER = logging.getLogger(__name__)
# what an open side of the time range binds in a query: within every server's date-time range
_OPEN_SINCE = dt.datetime(1000, 1, 1, tzinfo=dt.UTC)
_OPEN_UNTIL = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
# a dead PostgreSQL peer is noticed after about idle + interval * count seconds
_PG_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
_RANGE_PARAMETERS = frozenset({"since", "until"})
_REASON_LENGTH = 300


def read_sql(spec: SqlSource, time_range: TimeRange, time_column: str) -> pd.DataFrame:
    """The rows of the block's table or query (the plant's columns), within the time range where it can."""
    where = describe_location(spec)
    url = _url(spec, where)
    engine = _engine(url, spec, where)
    try:
        with _connected(engine, url, spec, where) as connection:
            statement, parameters = _statement(connection, spec, time_range, time_column, url, where)
            frame = _fetch(connection, statement, parameters, spec, url, where)
    finally:
        engine.dispose()
    _LOGGER.info("%s: read %d rows", where, len(frame))
    return frame


def _url(spec: SqlSource, where: str) -> URL:
    """The SQLAlchemy URL from the environment; a malformed one is named by its variable, never shown."""
    raw = credential(spec.url_env, where, "url_env")
    try:
        return sa.make_url(raw)
    except Exception:  # its message quotes the URL, password included
        expected = "a SQLAlchemy URL, e.g. postgresql+psycopg2://user:password@host:5432/database"
        raise ConfigError(
            where, f"${spec.url_env} is not a SQLAlchemy URL", field="url_env", expected=expected
        ) from None


def _connect_args(url: URL, spec: SqlSource) -> dict[str, Any]:
    """Driver options bounding every wait and running the session in UTC; the URL's own query wins."""
    backend, driver = url.get_backend_name(), url.get_driver_name()
    options: dict[str, Any] = {}
    if backend == "postgresql" and driver == "psycopg2":
        statement_ms = math.ceil(spec.read_timeout_s * 1000)
        options = {
            "connect_timeout": max(2, math.ceil(spec.timeout_s)),  # libpq: whole seconds, at least 2
            "options": f"-c TimeZone=UTC -c statement_timeout={statement_ms}",
            **_PG_KEEPALIVES,
        }
    elif backend in ("mysql", "mariadb") and driver == "pymysql":
        options = {
            "connect_timeout": spec.timeout_s,
            "read_timeout": spec.read_timeout_s,
            "write_timeout": spec.read_timeout_s,
            "init_command": "SET time_zone = '+00:00'",
        }
    return {key: value for key, value in options.items() if key not in url.query}


def _engine(url: URL, spec: SqlSource, where: str) -> Engine:
    """An engine without a pool (one read, one connection); an unknown dialect or missing driver is one line."""
    try:
        return sa.create_engine(url, poolclass=NullPool, connect_args=_connect_args(url, spec))
    except (sa.exc.NoSuchModuleError, ImportError):
        dialect = url.drivername
        expected = "postgresql+psycopg2://, mysql+pymysql:// (MariaDB, MySQL) or sqlite:///"
        raise ConfigError(where, f"no installed driver for '{dialect}'", field="url_env", expected=expected) from None
    except Exception as exc:
        raise ConfigError(
            where, f"cannot use the URL in ${spec.url_env}: {_reason(exc, url)}", field="url_env"
        ) from None


@contextmanager
def _connected(engine: Engine, url: URL, spec: SqlSource, where: str) -> Iterator[Connection]:
    """An open connection (read-only on PostgreSQL); failing to connect is one line saying why."""
    try:
        connection = engine.connect()
    except Exception as exc:
        reason = _reason(exc, url)
        if _server_refused(exc):
            raise ConfigError(
                where,
                f"the server refused the connection: {reason}",
                field="url_env",
                expected=f"a user, password and database in ${spec.url_env} the server accepts",
            ) from None
        raise StorageError(
            where,
            f"cannot connect: {reason}",
            expected=f"a reachable database server at the URL in ${spec.url_env}",
        ) from None
    try:
        if url.get_backend_name() == "postgresql":
            connection = connection.execution_options(postgresql_readonly=True)
        yield connection
    finally:
        connection.close()


def _statement(
    connection: Connection, spec: SqlSource, time_range: TimeRange, time_column: str, url: URL, where: str
) -> tuple[sa.Executable, dict[str, Any]]:
    """The SELECT to run and its parameters: the table with the time range pushed down, or the query."""
    if spec.query is not None:
        return _query_statement(spec.query, time_range, url, where)
    assert spec.table is not None  # the block holds exactly one of table and query
    schema, _, name = spec.table.rpartition(".")
    columns = _table_columns(connection, name, schema or None, url, where)
    selected = table(name, *(column(str(info["name"])) for info in columns), schema=schema or None)
    statement = sa.select(*selected.columns)
    wanted = spec.time_column or time_column
    known = {str(info["name"]): info["type"] for info in columns}
    if spec.time_column is not None and spec.time_column not in known:
        available = ", ".join(known)
        raise ConfigError(where, f"column '{spec.time_column}' not found", field="time_column", expected=available)
    start, end = time_range.bounds()
    if wanted not in known or not _pushes_down(known[wanted], url):
        return statement, {}
    aware = bool(getattr(known[wanted], "timezone", False))
    time: sa.ColumnClause[Any] = column(wanted)
    parameters: dict[str, Any] = {}
    if start is not None:
        statement = statement.where(time >= sa.bindparam("since"))
        parameters["since"] = _moment(start, aware)
    if end is not None:
        statement = statement.where(time < sa.bindparam("until"))
        parameters["until"] = _moment(end, aware)
    return statement, parameters


def _table_columns(connection: Connection, name: str, schema: str | None, url: URL, where: str) -> list[Any]:
    """The table's columns as the database reflects them; a missing table is one line."""
    try:
        columns = sa.inspect(connection).get_columns(name, schema=schema)
    except sa.exc.NoSuchTableError:
        columns = []
    except Exception as exc:
        raise _read_error(exc, url, where, "table") from None
    if not columns:
        raise ConfigError(where, "no such table (or view)", field="table", expected="a table the URL's user can read")
    return list(columns)


def _pushes_down(column_type: Any, url: URL) -> bool:
    """Whether comparing the column with a date-time is exact: a date-time type, not SQLite's free-form text."""
    return isinstance(column_type, sa.DateTime) and url.get_backend_name() != "sqlite"


def _moment(stamp: pd.Timestamp, aware: bool) -> dt.datetime:
    """A UTC bound as the driver should send it: aware for a zoned column, naive (UTC) otherwise."""
    moment = stamp.tz_convert("UTC").to_pydatetime()
    return moment if aware else moment.replace(tzinfo=None)


def _query_statement(query: str, time_range: TimeRange, url: URL, where: str) -> tuple[sa.Executable, dict[str, Any]]:
    """The block's query with :since / :until bound (UTC); any other parameter is a config error."""
    statement = sa.text(query)
    names = set(statement.compile().params)
    unknown = sorted(names - _RANGE_PARAMETERS)
    if unknown:
        raise ConfigError(where, f"unbound parameter :{unknown[0]}", field="query", expected="only :since and :until")
    start, end = time_range.bounds()
    bounds = {
        "since": start.to_pydatetime() if start is not None else _OPEN_SINCE,
        "until": end.to_pydatetime() if end is not None else _OPEN_UNTIL,
    }
    aware = url.get_backend_name() == "postgresql"  # other drivers drop or mangle the zone: send UTC wall time
    return statement, {
        key: value if aware else value.replace(tzinfo=None) for key, value in bounds.items() if key in names
    }


def _fetch(
    connection: Connection, statement: sa.Executable, parameters: dict[str, Any], spec: SqlSource, url: URL, where: str
) -> pd.DataFrame:
    """Stream the rows with a server-side cursor, ``chunk_rows`` per round trip, into one frame."""
    field = "table" if spec.table is not None else "query"
    try:
        result = connection.execution_options(yield_per=spec.chunk_rows).execute(statement, parameters)
        keys = [str(key) for key in result.keys()]
        chunks = [pd.DataFrame.from_records(rows, columns=keys) for rows in result.partitions()]
    except Exception as exc:
        raise _read_error(exc, url, where, field) from None
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        raise ConfigError(where, f"column '{duplicated[0]}' appears twice", field=field, expected="unique column names")
    if not chunks:
        return pd.DataFrame({key: pd.Series([], dtype=object) for key in keys})
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    return _plain_numbers(frame.infer_objects())


def _plain_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """NUMERIC/DECIMAL columns (Decimal objects) as floats, as a CSV of the same readings would read."""
    for name in frame.select_dtypes(include="object").columns:
        values = frame[name].dropna()
        if len(values) and all(isinstance(value, decimal.Decimal) for value in values):
            frame[name] = pd.to_numeric(frame[name]).astype(float)
    return frame


def _read_error(exc: Exception, url: URL, where: str, field: str) -> ConfigError | StorageError:
    """A failed read as one line: a lost connection is storage, the server refusing the SQL is config."""
    reason = _reason(exc, url)
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return StorageError(where, f"lost the connection while reading: {reason}", expected="a reachable server")
    return ConfigError(where, f"the server refused the {field}: {reason}", field=field, expected=f"a readable {field}")


def _server_refused(exc: Exception) -> bool:
    """Whether the server answered and said no (credentials, database), rather than not answering at all."""
    original = getattr(exc, "orig", None)
    arguments: tuple[Any, ...] = getattr(original, "args", ())
    if arguments and isinstance(arguments[0], int):  # PyMySQL: (code, message); 2000 and up are client-side
        return arguments[0] < 2000
    return "FATAL:" in str(original)  # libpq: the server's own refusal


def _reason(exc: Exception, url: URL) -> str:
    """The driver's short reason on one line, without the statement, parameters, URL or password."""
    original = getattr(exc, "orig", None) or exc
    arguments: tuple[Any, ...] = getattr(original, "args", ())
    if len(arguments) == 2 and isinstance(arguments[0], int):  # PyMySQL: (code, message)
        text = f"{arguments[1]} ({arguments[0]})"
    else:
        text = next((line for line in str(original).splitlines() if line.strip()), "")
    text = re.sub(r"\s+", " ", text).strip() or type(original).__name__
    for secret in (url.render_as_string(hide_password=False), url.password):
        if secret:
            text = text.replace(str(secret), "***")
    if len(text) > _REASON_LENGTH:
        text = text[: _REASON_LENGTH - 3] + "..."
    return f"{type(original).__name__}: {text}"
