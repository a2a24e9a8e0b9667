"""Ingest logic: read CSV/Parquet from a path or ``s3://``, validate against the scenario's column mapping.

Validation happens before anything is written and stops at the first problem with a one-line error naming the
file, the column and the expected content. Output tables use canonical id column names (``timestamp``,
``asset_id``, ``site``, ``asset_type``, ``event_type``) so later steps need no mapping; sensor features keep the
plant's names. The asset-type column is optional under its default name (a table without it has no types, as
before); every source kind delivers it when the plant's rows hold it: files, SQL tables and queries, and the JSON
messages of MQTT and the buses (their top-level keys, or a ``fields``/``topic_levels`` entry naming it); an OPC UA
block reads one asset and fills it from its ``asset_type`` setting.

Output layout (TFX-style, documented because downstream steps and monitoring read it):
  sensors  : Parquet, columns timestamp (UTC), asset_id, [site], [asset_type], <features...>, sorted by asset_id,
             timestamp; asset_type is one per asset, '' where the plant did not say
  events   : Parquet, columns timestamp (UTC), asset_id, event_type, sorted by timestamp
  profile  : JSON, {"features": [...], "sensors": <table profile>, "events": {...}, "sources": {...}} and, when the
             data has a site column, "sites": {<site>: <table profile of its readings>} (per-site drift's reference);
             with an asset-type column, "asset_types": {<type>: assets of that type} ('' = unknown)
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd

from shopfloor.common.config import ASSET_TYPE_DEFAULT, SINGLE_ASSET_ID, DataConfig, EventColumns, SensorColumns
from shopfloor.common.errors import DataValidationError
from shopfloor.common.fleet import ASSET_TYPE_COLUMN, site_profiles
from shopfloor.common.profile import profile_table
from shopfloor.common.sources import Location, TimeRange, describe_location, read_source
from shopfloor.common.storage import atomic_write_bytes, read_bytes, sha256_hex, write_json
from shopfloor.common.tables import read_table

__all__ = [
    "IngestResult",
    "ingest",
    "resample",
    "validate_events",
    "validate_sensors",
    "write_outputs",
]

CANONICAL_TIMESTAMP = "timestamp"
CANONICAL_ASSET = "asset_id"
CANONICAL_SITE = "site"
CANONICAL_ASSET_TYPE = ASSET_TYPE_COLUMN
CANONICAL_EVENT_TYPE = "event_type"


@dataclasses.dataclass(frozen=True)
class IngestResult:
    """Validated tables, the feature names found, and the profile describing them."""

    sensors: pd.DataFrame
    events: pd.DataFrame
    features: list[str]
    profile: dict


def _require_columns(frame: pd.DataFrame, required: dict[str, str], uri: str) -> None:
    """Fail on the first configured column the table does not have, listing the columns it does have."""
    for field, column in required.items():
        if column not in frame.columns:
            available = ", ".join(map(str, frame.columns))
            raise DataValidationError(
                uri, f"column '{column}' not found", field=field, expected=f"one of the file's columns: {available}"
            )


def _parse_timestamps(values: pd.Series, uri: str, field: str) -> pd.Series:
    """Parse timestamps as UTC, naming the first row (1-based data line) that does not parse."""
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    bad = parsed.isna()
    if bad.any():
        position = int(bad.to_numpy().argmax())
        raise DataValidationError(
            uri,
            f"row {position + 1}: '{values.iloc[position]}' is not a timestamp",
            field=f"{field} ({values.name})",
            expected="ISO 8601 timestamps, e.g. 2026-01-01T00:00:00Z",
        )
    return parsed


INDEX_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def _parse_steps(values: pd.Series, uri: str, field: str) -> pd.Series:
    """An integer time index (cycles, counts) as timestamps, one hour per step, so hours in the config count steps."""
    steps = pd.to_numeric(values, errors="coerce")
    bad = steps.isna() | (steps != steps.round()) | (steps.abs() > 1e9)
    if bad.any():
        position = int(bad.to_numpy().argmax())
        raise DataValidationError(
            uri,
            f"row {position + 1}: '{values.iloc[position]}' is not a step number",
            field=f"{field} ({values.name})",
            expected="whole numbers (cycles or counts), as sensor_columns.time_unit: index says",
        )
    return INDEX_EPOCH + pd.to_timedelta(steps.astype("int64"), unit="h")


def _parse_times(values: pd.Series, uri: str, field: str, time_unit: str) -> pd.Series:
    """The time column as UTC timestamps: parsed dates, or an integer index mapped to hours."""
    if time_unit == "index":
        return _parse_steps(values, uri, field)
    return _parse_timestamps(values, uri, field)


def _asset_ids(frame: pd.DataFrame, column: str | None, uri: str, field: str) -> pd.Series:
    """The asset id of every row: the mapped column, or the single machine's id when there is none."""
    if column is None:
        return pd.Series(SINGLE_ASSET_ID, index=frame.index, dtype=object)
    return _parse_ids(frame[column], uri, field)


def _parse_ids(values: pd.Series, uri: str, field: str) -> pd.Series:
    """Asset/site ids as non-empty strings."""
    text = values.astype("string").str.strip()
    bad = text.isna() | (text == "")
    if bad.any():
        position = int(bad.to_numpy().argmax())
        raise DataValidationError(
            uri,
            f"row {position + 1}: empty id",
            field=f"{field} ({values.name})",
            expected="a non-empty id in every row",
        )
    return text.astype(str)


def _asset_types(values: pd.Series, asset: pd.Series, uri: str) -> pd.Series:
    """Each row's asset type, one per asset: its non-empty value ('' where none); two types for one asset is an error.

    Empty cells are allowed (a type the plant did not record); an asset with two types would put its windows in two
    groups of the evaluation by type, so it is refused, naming the asset and both types.
    """
    pairs = pd.DataFrame(
        {"asset": asset.to_numpy(dtype=object), "type": values.astype("string").str.strip().fillna("").to_numpy()}
    )
    types = pairs[pairs["type"] != ""].groupby("asset")["type"].unique()
    mixed = types[types.map(len) > 1]
    if not mixed.empty:
        first, found = str(mixed.index[0]), sorted(map(str, mixed.iloc[0]))
        raise DataValidationError(
            uri,
            f"asset '{first}' has {len(found)} types ({', '.join(found[:3])})",
            field=f"sensor_columns.asset_type ({values.name})",
            expected="one type per asset (empty cells = unknown)",
        )
    one = {str(a): str(t[0]) for a, t in types.items()}
    return pd.Series(pairs["asset"].map(one).fillna("").to_numpy(dtype=str), index=asset.index, dtype=object)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _parse_numeric(values: pd.Series, uri: str) -> pd.Series:
    """A sensor column as float; empty cells are missing readings, any other non-number is an error.

    Models compute in float32, so a reading beyond its range (|x| > 3.4e38, inf too) is refused here, naming the
    cell, instead of collapsing training later.
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype(float)
        unparsed: pd.Series = pd.Series(False, index=values.index)
    else:
        numbers = pd.to_numeric(values, errors="coerce").astype(float)
        text = values.astype("string").str.strip()
        unparsed = numbers.isna() & values.notna() & (text != "")
    beyond = pd.Series(np.abs(numbers.to_numpy()) > _FLOAT32_MAX, index=values.index)
    bad = unparsed | beyond
    if bad.any():
        position = int(bad.to_numpy().argmax())
        problem = "is beyond float32 (|x| > 3.4e38)" if beyond.iloc[position] else "is not a number"
        raise DataValidationError(
            uri,
            f"row {position + 1}: '{values.iloc[position]}' {problem}",
            field=f"features ({values.name})",
            expected="finite numeric sensor readings within float32 (empty cell = missing)",
        )
    return numbers


def _looks_numeric(values: pd.Series) -> bool:
    """Whether a column is a sensor: numeric, or text whose non-empty cells are mostly numbers.

    The second case is a sensor column with a few corrupt cells; it must fail validation naming the bad cell,
    not silently drop out of the feature set.
    """
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    text = values.dropna().astype("string").str.strip()
    text = text[text != ""]
    return bool(text.size) and pd.to_numeric(text, errors="coerce").notna().mean() > 0.5


def _infer_features(frame: pd.DataFrame, id_columns: set[str]) -> list[str]:
    """Every numeric column that is not an id, when the config lists no features."""
    return [c for c in frame.columns if c not in id_columns and _looks_numeric(frame[c])]


def validate_sensors(frame: pd.DataFrame, columns: SensorColumns, uri: str) -> tuple[pd.DataFrame, list[str]]:
    """Check the sensor table against the mapping; return it with canonical id names and the feature list."""
    required = {"sensor_columns.timestamp": columns.timestamp}
    if columns.asset_id:
        required["sensor_columns.asset_id"] = columns.asset_id
    if columns.site:
        required["sensor_columns.site"] = columns.site
    if columns.asset_type and columns.asset_type != ASSET_TYPE_DEFAULT:  # a name the config gave must be there
        required["sensor_columns.asset_type"] = columns.asset_type
    required.update({f"sensor_columns.features[{i}]": name for i, name in enumerate(columns.features)})
    _require_columns(frame, required, uri)
    type_column = columns.asset_type if columns.asset_type in frame.columns else None
    id_columns = {columns.timestamp, *(c for c in (columns.asset_id, columns.site, type_column) if c)}
    features = list(columns.features) or _infer_features(frame, id_columns)
    if not features:
        raise DataValidationError(
            uri,
            "no numeric sensor columns",
            field="sensor_columns.features",
            expected="at least one numeric column besides the time and id columns",
        )
    out = pd.DataFrame(
        {
            CANONICAL_TIMESTAMP: _parse_times(
                frame[columns.timestamp], uri, "sensor_columns.timestamp", columns.time_unit
            ),
            CANONICAL_ASSET: _asset_ids(frame, columns.asset_id, uri, "sensor_columns.asset_id"),
        }
    )
    if columns.site:
        out[CANONICAL_SITE] = _parse_ids(frame[columns.site], uri, "sensor_columns.site")
    if type_column:
        out[CANONICAL_ASSET_TYPE] = _asset_types(frame[type_column], out[CANONICAL_ASSET], uri)
    for name in features:
        out[name] = _parse_numeric(frame[name], uri)
        if out[name].isna().all():
            raise DataValidationError(
                uri,
                f"column '{name}' has no readings",
                field="sensor_columns.features",
                expected="at least one numeric value per feature",
            )
    duplicated = out.duplicated([CANONICAL_ASSET, CANONICAL_TIMESTAMP])
    if duplicated.any():
        row = out[duplicated].iloc[0]
        raise DataValidationError(
            uri,
            f"two readings for asset '{row[CANONICAL_ASSET]}' at {row[CANONICAL_TIMESTAMP].isoformat()}",
            field="sensor_columns.timestamp",
            expected="one reading per asset and timestamp",
        )
    return out.sort_values([CANONICAL_ASSET, CANONICAL_TIMESTAMP], kind="stable").reset_index(drop=True), features


def validate_events(
    frame: pd.DataFrame, columns: EventColumns, known_assets: set[str], uri: str, time_unit: str = "datetime"
) -> pd.DataFrame:
    """Check the event table against the mapping and the sensor table's assets; return canonical columns.

    ``time_unit`` is the sensor table's: events are on the same clock (dates, or the same step index).
    """
    required = {"event_columns.timestamp": columns.timestamp}
    if columns.asset_id:
        required["event_columns.asset_id"] = columns.asset_id
    elif len(known_assets) > 1:
        raise DataValidationError(
            uri, f"no asset column, but the sensor data has {len(known_assets)} assets", field="event_columns.asset_id"
        )
    if columns.event_type:
        required["event_columns.event_type"] = columns.event_type
    _require_columns(frame, required, uri)
    single = next(iter(known_assets)) if len(known_assets) == 1 else SINGLE_ASSET_ID
    out = pd.DataFrame(
        {
            CANONICAL_TIMESTAMP: _parse_times(frame[columns.timestamp], uri, "event_columns.timestamp", time_unit),
            CANONICAL_ASSET: (
                _parse_ids(frame[columns.asset_id], uri, "event_columns.asset_id")
                if columns.asset_id
                else pd.Series(single, index=frame.index, dtype=object)
            ),
        }
    )
    unknown = ~out[CANONICAL_ASSET].isin(known_assets)
    if unknown.any():
        position = int(unknown.to_numpy().argmax())
        raise DataValidationError(
            uri,
            f"row {position + 1}: unknown asset id '{out[CANONICAL_ASSET].iloc[position]}'",
            field=f"event_columns.asset_id ({columns.asset_id})",
            expected=f"an asset id present in the sensor data ({len(known_assets)} assets)",
        )
    if columns.event_type:
        out[CANONICAL_EVENT_TYPE] = _parse_ids(frame[columns.event_type], uri, "event_columns.event_type")
    else:
        out[CANONICAL_EVENT_TYPE] = "failure"
    return out.sort_values([CANONICAL_TIMESTAMP, CANONICAL_ASSET], kind="stable").reset_index(drop=True)


def _source_record(uri: str, raw: bytes) -> dict:
    """Where a table came from and its content hash, for lineage and the model card."""
    return {"uri": uri, "sha256": sha256_hex(raw), "bytes": len(raw)}


def _read_location(location: Location, time_range: TimeRange, time_column: str) -> tuple[pd.DataFrame, dict, str]:
    """A table from a file or a source block, its lineage record, and the name errors use for it."""
    if isinstance(location, str):
        raw = read_bytes(location)
        return read_table(location, raw), _source_record(location, raw), location
    table = read_source(location, time_range, time_column)
    return table.frame, table.record, describe_location(location)


def _within(frame: pd.DataFrame, time_range: TimeRange, where: str, field: str) -> pd.DataFrame:
    """The rows whose canonical timestamp lies in the time range; none left is an error naming the range."""
    start, end = time_range.bounds()
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= frame[CANONICAL_TIMESTAMP] >= start
    if end is not None:
        keep &= frame[CANONICAL_TIMESTAMP] < end
    if field == "sensors" and not keep.any():
        first, last = (bound.isoformat() if bound is not None else "..." for bound in (start, end))
        window = f"[{first}, {last})"
        raise DataValidationError(where, f"no readings in the time range {window}", field="time_range")
    return frame[keep].reset_index(drop=True)


def resample(sensors: pd.DataFrame, features: list[str], every: str, rule: str) -> pd.DataFrame:
    """Each asset's readings on a regular grid of step ``every``: the ``rule`` of the readings in a step.

    A step without readings becomes a row of missing readings (windows then see the gap, as in a file with empty
    cells); the grid starts at each asset's first step, so no asset gains readings before its first.
    """
    parts = []
    for asset, readings in sensors.groupby(CANONICAL_ASSET, sort=True):
        indexed = readings.set_index(CANONICAL_TIMESTAMP)
        grid = indexed[features].resample(every).agg(rule)
        for column in (CANONICAL_ASSET_TYPE, CANONICAL_SITE):  # one per asset: every step of the grid has it
            if column in indexed.columns:
                grid.insert(0, column, indexed[column].iloc[0])
        grid.insert(0, CANONICAL_ASSET, asset)
        parts.append(grid.reset_index())
    return pd.concat(parts, ignore_index=True)[list(sensors.columns)]


def _no_events() -> pd.DataFrame:
    """The events table of a plant that records none: canonical columns, no rows."""
    return pd.DataFrame(
        {
            CANONICAL_TIMESTAMP: pd.Series([], dtype="datetime64[ns, UTC]"),
            CANONICAL_ASSET: pd.Series([], dtype=object),
            CANONICAL_EVENT_TYPE: pd.Series([], dtype=object),
        }
    )


def ingest(sensors_location: Location, events_location: Location | None, config: DataConfig) -> IngestResult:
    """Read and validate both tables and profile them; writes nothing, so bad input leaves no artifact.

    A location is a file (path or ``s3://``) or a source block (``shopfloor.common.sources``); no events
    location means the plant records none. Only readings and events in ``config.time_range`` are kept.
    """
    frame, sensors_record, sensors_where = _read_location(
        sensors_location, config.time_range, config.sensor_columns.timestamp
    )
    sensors, features = validate_sensors(frame, config.sensor_columns, sensors_where)
    sensors = _within(sensors, config.time_range, sensors_where, "sensors")
    if config.resample.every is not None:
        sensors = resample(sensors, features, config.resample.every, config.resample.rule)
    if events_location is None:
        events, events_record = _no_events(), {"uri": "(none: the plant records no events)", "sha256": "", "bytes": 0}
    else:
        frame, events_record, events_where = _read_location(
            events_location, config.time_range, config.event_columns.timestamp
        )
        known = set(sensors[CANONICAL_ASSET].unique())
        events = validate_events(frame, config.event_columns, known, events_where, config.sensor_columns.time_unit)
        events = _within(events, config.time_range, events_where, "events")
    profile = {
        "features": features,
        "sensors": profile_table(sensors, features),
        "events": {
            "rows": len(events),
            "by_type": {str(k): int(v) for k, v in events[CANONICAL_EVENT_TYPE].value_counts().sort_index().items()},
        },
        "assets": int(sensors[CANONICAL_ASSET].nunique()),
        "sources": {"sensors": sensors_record, "events": events_record},
        **site_profiles(sensors, features),
        **_asset_type_profile(sensors),
    }
    return IngestResult(sensors=sensors, events=events, features=features, profile=profile)


def _asset_type_profile(sensors: pd.DataFrame) -> dict:
    """``{"asset_types": {type: assets}}`` for data with an asset-type column ('' = unknown), else {}."""
    if CANONICAL_ASSET_TYPE not in sensors.columns:
        return {}
    per_asset = sensors.groupby(CANONICAL_ASSET, sort=True)[CANONICAL_ASSET_TYPE].first()
    return {"asset_types": {str(k): int(v) for k, v in per_asset.value_counts().sort_index().items()}}


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Serialize a table to Parquet in memory so it can be written atomically."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_outputs(result: IngestResult, sensors_path: str, events_path: str, profile_path: str) -> None:
    """Write the validated tables and the profile, each atomically."""
    atomic_write_bytes(sensors_path, _parquet_bytes(result.sensors))
    atomic_write_bytes(events_path, _parquet_bytes(result.events))
    write_json(profile_path, result.profile)
