"""Where a plant's tables come from, by config alone: files and ``s3://`` objects, SQL, MQTT, OPC UA, a message bus.

A data location in a scenario config (``data.sensors``, ``data.events``) is either a path / ``s3://`` URI, as
before, or a source block with a ``kind``::

    sensors:
      kind: sql
      url_env: PLANT_DB_URL          # the SQLAlchemy URL, from a Secret; never in the config
      table: readings

Every kind reads the rows as the plant has them (its own column names) into one table, which ingest then
validates, maps and profiles exactly as it does a file: the same rows give the same Parquet and profile whatever
the source. Credentials come only from environment variables named in the block (``*_env`` fields), so neither
the config, nor the compiled pipeline, nor a log line or an error ever holds one.

``TimeRange`` (``data.time_range``) reads only a window of time: the newest days for ``shopfloor monitor`` and a
retrain. Sources that can, push it down (SQL ``WHERE``, OPC UA history bounds); ingest applies it to every table.

In a pipeline a location travels as one string parameter: the path or URI itself, or the block as JSON
(``location_parameter`` / ``parse_location``), so the compiled YAML holds the same parameters for every kind.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import importlib
import json
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from shopfloor.common.errors import ConfigError, DataValidationError

if TYPE_CHECKING:  # pandas loads when a table is read, not with the config (the deploy step never needs it)
    import pandas as pd

__all__ = [
    "BusSource",
    "Location",
    "MqttSource",
    "OpcUaSource",
    "SourceSpec",
    "SourceTable",
    "SqlSource",
    "TimeRange",
    "describe_location",
    "is_live",
    "location_parameter",
    "parse_location",
    "read_source",
]


class _Block(BaseModel):
    """Base of source blocks: unknown keys are errors, like every config section."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# a query's first keyword after comments and opening parentheses: only reads are sent to a plant's database
_SELECT = re.compile(r"\A(?:\s|--[^\n]*(?:\n|\Z)|/\*.*?\*/|\()*(?:select|with)\b", re.IGNORECASE | re.DOTALL)


class SqlSource(_Block):
    """Rows of a SQL table or query (PostgreSQL, MariaDB/MySQL, SQLite...), read in chunks."""

    kind: Literal["sql"] = "sql"
    url_env: str = Field(
        "SHOPFLOOR_SQL_URL", description="environment variable holding the SQLAlchemy URL (from a Secret)"
    )
    table: str | None = Field(None, description="a table (or view) to read; or give a query")
    query: str | None = Field(None, description="a SELECT; may use :since and :until (UTC) for the time range")
    time_column: str | None = Field(
        None, description="the table's time column the time range filters on (default: the mapped timestamp)"
    )
    chunk_rows: int = Field(50_000, ge=100, le=10_000_000, description="rows fetched per round trip")
    timeout_s: float = Field(10.0, gt=0, le=600, description="bound on connecting to the server")
    read_timeout_s: float = Field(
        300.0, gt=0, le=86_400, description="bound on each wait for the server's rows (PostgreSQL: per statement)"
    )

    @model_validator(mode="after")
    def _one_of_table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table and query")
        if self.query is not None and not _SELECT.match(self.query):
            raise ValueError("query must be a SELECT (or WITH ... SELECT)")
        return self


class MqttSource(_Block):
    """JSON messages of an MQTT topic, subscribed for a time window or a number of messages (QoS 1)."""

    kind: Literal["mqtt"] = "mqtt"
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    topic: str = Field(..., min_length=1, description="topic filter; + and # wildcards allowed")
    qos: Literal[0, 1, 2] = 1
    duration_s: float = Field(60.0, gt=0, le=86_400, description="stop listening after this many seconds")
    messages: int | None = Field(
        None, ge=1, description="stop after this many usable messages (rows; whichever comes first)"
    )
    fields: dict[str, str] = Field(
        default_factory=dict, description="column -> dotted path in the JSON payload; empty: its top-level keys"
    )
    topic_levels: dict[str, int] = Field(
        default_factory=dict,
        description="column -> topic level (0-based, negative from the end) it is taken from, e.g. asset_id: 2",
    )
    username_env: str | None = Field(None, description="environment variable holding the username (from a Secret)")
    password_env: str | None = Field(None, description="environment variable holding the password (from a Secret)")
    tls: bool = Field(False, description="TLS, verified against the system's CA certificates (port 8883 usually)")
    timeout_s: float = Field(10.0, gt=0, le=300, description="bound on connecting and on the broker's answers")


class OpcUaSource(_Block):
    """Values of OPC UA variable nodes: their history for the time range, or a subscription for a window.

    One block reads one asset: a row per source timestamp, a column per ``nodes`` key, the time column and, when
    ``asset_id`` is set, an ``asset_column`` column holding it (``asset_type``, the asset's type, likewise).
    With ``security_policy`` the session is signed (and encrypted) with the client certificate and key the
    ``*_env`` fields name.
    """

    kind: Literal["opcua"] = "opcua"
    endpoint: str = Field(..., pattern=r"^opc\.tcp://", description="opc.tcp://host:port/path, without credentials")
    nodes: dict[str, str] = Field(..., min_length=1, description="column -> node id, e.g. temperature: ns=2;i=7")
    asset_id: str = Field("", description="the asset these nodes measure; set: a column asset_column holds it")
    asset_column: str = Field(
        "asset_id", min_length=1, description="name of that column (the mapping's sensor_columns.asset_id)"
    )
    asset_type: str = Field(
        "", description="the asset's type (pump, valve...); set: a column asset_type_column holds it"
    )
    asset_type_column: str = Field(
        "asset_type", min_length=1, description="name of that column (the mapping's sensor_columns.asset_type)"
    )
    mode: Literal["history", "subscribe"] = "history"
    duration_s: float = Field(10.0, gt=0, le=86_400, description="subscribe: how long to collect data changes")
    sampling_ms: float = Field(100.0, gt=0, description="subscribe: the publishing interval asked of the server")
    timeout_s: float = Field(10.0, gt=0, le=300, description="bound on connecting and on each request to the server")
    username_env: str | None = None
    password_env: str | None = None
    security_policy: Literal["None", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"] = Field(
        "None", description="the endpoint's security policy; other than None: certificate_env and private_key_env"
    )
    security_mode: Literal["Sign", "SignAndEncrypt"] = Field(
        "SignAndEncrypt", description="with a security policy: sign the messages, or sign and encrypt them"
    )
    certificate_env: str | None = Field(
        None, description="environment variable holding the client's application certificate (PEM) the server trusts"
    )
    private_key_env: str | None = Field(
        None, description="environment variable holding that certificate's RSA private key (PEM)"
    )
    private_key_password_env: str | None = Field(
        None, description="environment variable holding the private key's password, when the key is encrypted"
    )
    server_certificate_env: str | None = Field(
        None,
        description="environment variable holding the server's certificate (PEM) to pin; unset: the certificate "
        "the server's endpoint presents is trusted as it is",
    )

    @field_validator("endpoint")
    @classmethod
    def _no_credentials_in_endpoint(cls, value: str) -> str:
        """A user or password in the URL would reach logs and the compiled pipeline: only *_env fields hold them."""
        if "@" in value.split("/", 3)[2]:
            raise ValueError("credentials belong in username_env/password_env, not in the endpoint")
        return value

    @model_validator(mode="after")
    def _asset_column_is_free(self) -> OpcUaSource:
        if self.asset_id and self.asset_column in self.nodes:
            raise ValueError(f"nodes has a column '{self.asset_column}', the column asset_id fills")
        if self.asset_type and self.asset_type_column in {*self.nodes, self.asset_column}:
            raise ValueError(f"asset_type_column '{self.asset_type_column}' is already a column of the block")
        return self

    @model_validator(mode="after")
    def _security_is_complete(self) -> OpcUaSource:
        """A security policy needs the client's certificate and key; certificate fields without one would be unused."""
        fields = ("certificate_env", "private_key_env", "private_key_password_env", "server_certificate_env")
        named = [name for name in fields if getattr(self, name)]
        if self.security_policy == "None" and named:
            raise ValueError(f"{named[0]} needs security_policy (Basic256Sha256, Aes128_Sha256_RsaOaep...)")
        missing = [name for name in ("certificate_env", "private_key_env") if not getattr(self, name)]
        if self.security_policy != "None" and missing:
            raise ValueError(
                f"security_policy {self.security_policy} needs {' and '.join(missing)} "
                "(variables holding the client's certificate and private key)"
            )
        return self


class BusSource(_Block):
    """JSON messages of a NATS JetStream subject or a RabbitMQ queue: those it holds when the read starts.

    Reading changes nothing: NATS reads the stream from its first message; RabbitMQ receives without acknowledging,
    so the queue keeps every message for the next read (``shopfloor.common.sources.bus``).
    """

    kind: Literal["nats", "rabbitmq"]
    url_env: str = Field(..., description="environment variable with the server URL (nats://..., amqp://...)")
    subject: str = Field(..., min_length=1, description="NATS subject (JetStream stream's) or RabbitMQ queue name")
    messages: int | None = Field(None, ge=1, description="read at most this many, oldest first; default: all there are")
    idle_s: float = Field(2.0, gt=0, le=3600, description="stop early when no message came for this long (seconds)")
    fields: dict[str, str] = Field(
        default_factory=dict, description="column -> dotted path in the JSON payload; empty: its top-level keys"
    )


SourceSpec = Annotated[SqlSource | MqttSource | OpcUaSource | BusSource, Field(discriminator="kind")]
Location = str | SourceSpec
_SOURCE_BLOCK: TypeAdapter[Any] = TypeAdapter(SourceSpec)

_READERS = {
    "sql": "shopfloor.common.sources.sql:read_sql",
    "mqtt": "shopfloor.common.sources.mqtt:read_mqtt",
    "opcua": "shopfloor.common.sources.opcua:read_opcua",
    "nats": "shopfloor.common.sources.bus:read_nats",
    "rabbitmq": "shopfloor.common.sources.bus:read_rabbitmq",
}


class TimeRange(_Block):
    """Which readings to read: ``since``/``until`` (ISO 8601, UTC) or the last N days up to now."""

    since: dt.datetime | None = Field(None, description="first reading time to read (inclusive)")
    until: dt.datetime | None = Field(None, description="reading time to stop before (exclusive)")
    last_days: float | None = Field(None, gt=0, le=36_600, description="the newest N days, up to now")

    @field_validator("since", "until", "last_days", mode="before")
    @classmethod
    def _blank_is_open(cls, value: object) -> object:
        """'' (how a KFP parameter carries null) leaves that side open."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _one_way(self) -> TimeRange:
        if self.last_days is not None and (self.since is not None or self.until is not None):
            raise ValueError("give last_days or since/until, not both")
        return self

    def bounds(self, now: dt.datetime | None = None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """The window as UTC timestamps (None: open on that side)."""
        import pandas as pd

        if self.last_days is not None:
            end = pd.Timestamp(now or dt.datetime.now(dt.UTC))
            return _utc(end - pd.Timedelta(days=self.last_days)), None
        return _utc(self.since), _utc(self.until)

    @property
    def is_open(self) -> bool:
        """Whether it reads everything (no bound at all)."""
        return self.since is None and self.until is None and self.last_days is None


def _utc(moment: dt.datetime | pd.Timestamp | None) -> pd.Timestamp | None:
    """A moment as a UTC timestamp; a naive one is taken as UTC."""
    import pandas as pd

    if moment is None:
        return None
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@dataclasses.dataclass(frozen=True)
class SourceTable:
    """A table as a source delivered it, and its lineage record for the profile (never a credential)."""

    frame: pd.DataFrame
    record: dict[str, Any]


def describe_location(location: Location) -> str:
    """A credential-free name of a location for messages: the path, or kind and what is read."""
    if isinstance(location, str):
        return location
    if isinstance(location, SqlSource):
        return f"sql ${location.url_env} " + (f"table {location.table}" if location.table else "query")
    if isinstance(location, MqttSource):
        return f"mqtt://{location.host}:{location.port}/{location.topic}"
    if isinstance(location, OpcUaSource):
        security = (
            "" if location.security_policy == "None" else f", {location.security_policy} {location.security_mode}"
        )
        return f"{location.endpoint} ({location.mode}, {len(location.nodes)} nodes{security})"
    return f"{location.kind} ${location.url_env} {location.subject}"


def is_live(location: Location | None) -> bool:
    """Whether a location is a server whose content changes without a new URI (never cached by content)."""
    return location is not None and not isinstance(location, str)


def location_parameter(location: Location | None) -> str:
    """A location as a KFP string parameter: the path itself, the block as JSON, '' for none."""
    if location is None:
        return ""
    return location if isinstance(location, str) else json.dumps(location.model_dump(mode="json"), sort_keys=True)


def parse_location(text: str, field: str) -> Location | None:
    """A KFP string parameter back into a location ('' = none); a bad block is one line naming ``field``."""
    if not text:
        return None
    if not text.lstrip().startswith("{"):
        return text
    try:
        parsed: Location = _SOURCE_BLOCK.validate_python(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as exc:
        problem = (
            exc.errors()[0]["msg"].removeprefix("Value error, ")
            if isinstance(exc, ValidationError)
            else "not valid JSON"
        )
        expected = "a path, s3:// URI or source block"
        raise ConfigError("pipeline parameter", problem, field=field, expected=expected) from None
    return parsed


def read_source(spec: SourceSpec, time_range: TimeRange, time_column: str) -> SourceTable:
    """Read a source block's rows as one table (the plant's column names), within the time range if it can."""
    module_name, _, function = _READERS[spec.kind].partition(":")
    reader = getattr(importlib.import_module(module_name), function)
    import pandas as pd

    frame: pd.DataFrame = reader(spec, time_range, time_column)
    where = describe_location(spec)
    if frame.empty:
        raise DataValidationError(where, "no rows", expected="at least one row from the source in the time range")
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    record = {
        "uri": where,
        "sha256": hashlib.sha256(hashes.tobytes()).hexdigest(),  # of the rows as read, for lineage like a file's
        "bytes": int(frame.memory_usage(deep=True).sum()),
        "kind": spec.kind,
        "rows": len(frame),
    }
    return SourceTable(frame=frame, record=record)
