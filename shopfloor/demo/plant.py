"""Seeded generator of process-plant predictive-maintenance demo data.

Several sites with different sensor sets, noise levels, climates and operating points (load) run pumps, valves
and compressors (with heat exchangers).
Each asset carries a hidden degradation state that grows along a convex curve until the asset fails, is repaired and
starts a new life; scheduled maintenance partially resets the state and sometimes prevents a failure.
The sensor grid stays regular (no rows are skipped): the reading after a failure already shows the repaired asset.
Everything is pure numpy/pandas and fully determined by :class:`PlantDataSpec`, so the same spec always yields
byte-identical CSV files.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import pandas as pd

__all__ = [
    "ASSET_TYPES",
    "EVENT_COLUMNS",
    "ID_COLUMNS",
    "SENSOR_COLUMNS",
    "SITE_SENSOR_PATTERNS",
    "PlantData",
    "PlantDataSpec",
    "generate_plant_data",
    "site_name",
    "site_sensors",
    "write_plant_data",
]

ID_COLUMNS: tuple[str, ...] = ("timestamp", "site", "asset_id", "asset_type")
SENSOR_COLUMNS: tuple[str, ...] = (
    "temperature_c",
    "pressure_bar",
    "vibration_mm_s",
    "flow_m3_h",
    "valve_position_pct",
    "motor_current_a",
    "differential_pressure_bar",
)
EVENT_COLUMNS: tuple[str, ...] = ("timestamp", "asset_id", "event_type", "description")
ASSET_TYPES: tuple[str, ...] = ("pump", "valve", "compressor")

# Sensors each site lacks; sites beyond the third cycle through these patterns.
SITE_SENSOR_PATTERNS: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset({"motor_current_a", "differential_pressure_bar"}),
    frozenset({"vibration_mm_s"}),
)

_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_FLOAT_DECIMALS = 3
_MAX_SITES = 6
_SITE_NOISE = (1.0, 1.8, 1.3, 1.1, 1.6, 1.2)
_SITE_AMBIENT_C = (14.0, 9.0, 22.0, 17.0, 5.0, 25.0)
# Each site's operating point: its load (flow setpoint) relative to site-a's; site-b runs lighter, site-c harder.
_SITE_LOAD = (1.0, 0.88, 1.1, 0.95, 0.82, 1.05)
_TYPE_CODES = {"pump": "PMP", "valve": "VLV", "compressor": "CMP"}
# Days of healthy life drawn per degradation cycle, by asset type.
_LIFE_DAYS = {"pump": (10.0, 30.0), "valve": (8.0, 26.0), "compressor": (12.0, 30.0)}
_FAILURE_TEXT = {
    "pump": ("bearing failure", "bearing failure", "bearing seizure"),
    "valve": ("valve stuck", "valve stuck", "valve trim eroded"),
    "compressor": ("heat exchanger fouled", "heat exchanger fouled", "high discharge temperature trip"),
}
_MAINTENANCE_TEXT = "scheduled maintenance"
# Sensor noise standard deviation at noise level 1.0, in the sensor's own unit.
_NOISE_STD = {
    "temperature_c": 0.5,
    "pressure_bar": 0.06,
    "vibration_mm_s": 0.12,
    "flow_m3_h": 1.8,
    "valve_position_pct": 0.9,
    "motor_current_a": 1.2,
    "differential_pressure_bar": 0.015,
}
_DROPOUT_RATE = 0.003
_MAINTENANCE_KEEP = 0.3  # maintenance multiplies the degradation state by this factor
_MAINTENANCE_DAYS = (20.0, 40.0)
_MAINTENANCE_SKIP_AFTER_REPAIR_DAYS = 2.0
_WALK_STD_PER_HOUR = 0.004


@dataclasses.dataclass(frozen=True)
class PlantDataSpec:
    """Size and shape of the generated plant; small by default so a laptop run takes seconds.

    Attributes:
        seed: Root seed; every random draw derives from it.
        sites: Number of sites (1..6), named ``site-a``, ``site-b``, ...
        assets_per_site: Assets per site (1..99), cycling pump, valve, compressor.
        days: Simulated days (1..3650).
        interval_minutes: Sampling interval (1..1440) that must divide a day evenly.
        start: First timestamp, ISO 8601; naive values are taken as UTC.
    """

    seed: int = 7
    sites: int = 3
    assets_per_site: int = 8
    days: int = 90
    interval_minutes: int = 60
    start: str = "2026-01-01T00:00:00Z"


@dataclasses.dataclass(frozen=True)
class PlantData:
    """Generated sensor readings (one row per asset and interval) and failure/maintenance events."""

    sensors: pd.DataFrame
    events: pd.DataFrame


@dataclasses.dataclass(frozen=True)
class _Asset:
    """Identity of one simulated asset and the site context it runs in."""

    site_index: int
    asset_index: int
    asset_id: str
    asset_type: str


def site_name(site_index: int) -> str:
    """Returns the site name for a zero-based site index, e.g. ``site-a`` for 0."""
    return f"site-{chr(ord('a') + site_index)}"


def site_sensors(site_index: int) -> tuple[str, ...]:
    """Returns the sensor columns a site actually measures; the others stay empty in the output."""
    missing = SITE_SENSOR_PATTERNS[site_index % len(SITE_SENSOR_PATTERNS)]
    return tuple(column for column in SENSOR_COLUMNS if column not in missing)


def _require_int(name: str, value: object, low: int, high: int) -> int:
    """Checks that a spec field is an int within [low, high] so errors name the field and range."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise ValueError(f"PlantDataSpec.{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def _parse_start(start: str) -> pd.Timestamp:
    """Parses the spec start as a UTC timestamp; rejects unparsable values with a field-naming error."""
    try:
        stamp = pd.Timestamp(start)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"PlantDataSpec.start must be an ISO 8601 timestamp, got {start!r}") from exc
    if pd.isna(stamp):
        raise ValueError(f"PlantDataSpec.start must be an ISO 8601 timestamp, got {start!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _validate(spec: PlantDataSpec) -> pd.Timestamp:
    """Validates every spec field, raising ValueError that names the field and its allowed range."""
    _require_int("seed", spec.seed, 0, 2**63 - 1)
    _require_int("sites", spec.sites, 1, _MAX_SITES)
    _require_int("assets_per_site", spec.assets_per_site, 1, 99)
    _require_int("days", spec.days, 1, 3650)
    _require_int("interval_minutes", spec.interval_minutes, 1, 1440)
    if 1440 % spec.interval_minutes:
        raise ValueError(
            f"PlantDataSpec.interval_minutes must divide 1440 (a day) evenly, in [1, 1440], got {spec.interval_minutes}"
        )
    return _parse_start(spec.start)


def _plan_assets(spec: PlantDataSpec) -> list[_Asset]:
    """Lays out assets per site, cycling pump/valve/compressor and numbering each type per site."""
    assets = []
    for site_index in range(spec.sites):
        letter = chr(ord("A") + site_index)
        counts = dict.fromkeys(ASSET_TYPES, 0)
        for asset_index in range(spec.assets_per_site):
            asset_type = ASSET_TYPES[asset_index % len(ASSET_TYPES)]
            counts[asset_type] += 1
            asset_id = f"{letter}-{_TYPE_CODES[asset_type]}-{counts[asset_type]:02d}"
            assets.append(_Asset(site_index, asset_index, asset_id, asset_type))
    return assets


def _asset_rngs(seed: int, asset: _Asset) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Derives independent health, process and noise generators for one asset from the root seed.

    Keying by (site, asset) keeps an asset's data stable when the plant grows by more sites or assets.
    """
    root = np.random.SeedSequence(seed, spawn_key=(asset.site_index, asset.asset_index))
    health, process, noise = root.spawn(3)
    return np.random.default_rng(health), np.random.default_rng(process), np.random.default_rng(noise)


def _simulate_health(
    rng: np.random.Generator, asset_type: str, n: int, steps_per_day: int
) -> tuple[np.ndarray, list[tuple[int, str, str]]]:
    """Simulates the hidden degradation state per step plus failure and maintenance events.

    Within a life the state is ``residual + (age / life) ** k + random walk``; it fails at 1, after which the crew
    repairs the asset within a few hours and a new life starts from a small residual. Maintenance follows its own
    calendar and multiplies the state by ``_MAINTENANCE_KEEP``, which sometimes postpones a failure past the horizon.

    Returns:
        The degradation state per step and a list of ``(step, event_type, description)`` tuples.
    """
    health = np.empty(n)
    events: list[tuple[int, str, str]] = []
    walk_std = _WALK_STD_PER_HOUR * np.sqrt(24.0 / steps_per_day)
    next_maintenance = int(rng.uniform(5.0, _MAINTENANCE_DAYS[1]) * steps_per_day)
    last_failure = -(10**9)
    step = 0
    while step < n:
        life = rng.uniform(*_LIFE_DAYS[asset_type]) * steps_per_day
        exponent = rng.uniform(2.0, 4.0)
        residual = rng.uniform(0.0, 0.06)
        age, walk = 0.0, 0.0
        while step < n:
            end = min(n, next_maintenance)
            if end > step:
                length = end - step
                walks = walk + np.cumsum(rng.normal(0.0, walk_std, length))
                segment = residual + ((age + np.arange(length)) / life) ** exponent + walks
                crossed = np.flatnonzero(segment >= 1.0)
                if crossed.size:
                    fail = int(crossed[0])
                    health[step : step + fail + 1] = segment[: fail + 1]
                    step += fail + 1
                    last_failure = step - 1
                    events.append((last_failure, "failure", str(rng.choice(_FAILURE_TEXT[asset_type]))))
                    break
                health[step:end] = segment
                age, walk, step = age + length, float(walks[-1]), end
            if step >= n:
                break
            if step - last_failure > _MAINTENANCE_SKIP_AFTER_REPAIR_DAYS * steps_per_day:
                events.append((step, "maintenance", _MAINTENANCE_TEXT))
                age *= _MAINTENANCE_KEEP ** (1.0 / exponent)
                residual *= _MAINTENANCE_KEEP
                walk *= _MAINTENANCE_KEEP
            next_maintenance = step + int(rng.uniform(*_MAINTENANCE_DAYS) * steps_per_day)
    return np.clip(health, 0.0, None), events


def _smooth(values: np.ndarray, tau_steps: float) -> np.ndarray:
    """Applies a first-order lag so setpoint steps ramp like a real control loop instead of jumping."""
    if tau_steps <= 0.5:
        return values
    width = int(np.ceil(5 * tau_steps))
    kernel = np.exp(-np.arange(width) / tau_steps)
    kernel /= kernel.sum()
    padded = np.concatenate([np.full(width - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def _load_profile(rng: np.random.Generator, n: int, steps_per_day: int) -> np.ndarray:
    """Draws the relative load (flow setpoint) that changes every few days and ramps between levels."""
    levels = np.empty(n)
    step = 0
    while step < n:
        length = max(1, int(rng.uniform(2.0, 6.0) * steps_per_day))
        levels[step : step + length] = rng.uniform(0.75, 1.1)
        step += length
    return _smooth(levels, tau_steps=3.0 * steps_per_day / 24.0)


def _ambient(hours: np.ndarray, site_index: int, rng: np.random.Generator) -> np.ndarray:
    """Builds the site ambient temperature: daily cycle peaking mid-afternoon plus slow weather swings."""
    daily = 6.0 * np.sin(2.0 * np.pi * (hours - 9.0) / 24.0)
    weather = 3.0 * np.sin(2.0 * np.pi * hours / (24.0 * rng.uniform(5.0, 9.0)) + rng.uniform(0.0, 2.0 * np.pi))
    return _SITE_AMBIENT_C[site_index] + daily + weather


def _pump_readings(
    h: np.ndarray, load: np.ndarray, ambient: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Pump physics: bearing wear raises vibration and temperature and slightly raises motor current."""
    flow0, pressure0, temp0 = rng.uniform(90, 150), rng.uniform(5.0, 8.0), rng.uniform(30, 40)
    vib0, current0, dp0 = rng.uniform(1.6, 2.4), rng.uniform(60, 110), rng.uniform(0.3, 0.5)
    return {
        "temperature_c": 0.35 * ambient + temp0 + 6.0 * (load - 1.0) + 14.0 * h**1.5,
        "pressure_bar": pressure0 * (0.55 + 0.45 * load**2),
        "vibration_mm_s": vib0 * (0.85 + 0.15 * load) * (1.0 + 2.5 * h**2),
        "flow_m3_h": flow0 * load,
        "valve_position_pct": 55.0 + 60.0 * (load - 0.9),
        "motor_current_a": current0 * (0.4 + 0.6 * load) * (1.0 + 0.08 * h),
        "differential_pressure_bar": dp0 * load**2 * (1.0 + 0.1 * h),
    }


def _valve_readings(
    h: np.ndarray, load: np.ndarray, ambient: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Control-valve physics: the flow-vs-position characteristic loses capacity and bends as the trim wears.

    The controller holds the flow setpoint, so a worn valve opens further for the same flow and saturates at 100%.
    """
    flow0, pressure0, temp0 = rng.uniform(60, 110), rng.uniform(3.0, 6.0), rng.uniform(15, 25)
    current0, dp0 = rng.uniform(1.5, 3.0), rng.uniform(0.4, 0.8)
    capacity = 1.6 * flow0 * (1.0 - 0.35 * h)
    shape = 1.0 + 0.6 * h
    position = 100.0 * np.clip(flow0 * load / capacity, 0.0, 1.0) ** (1.0 / shape)
    flow = capacity * (position / 100.0) ** shape
    return {
        "temperature_c": 0.5 * ambient + temp0 + 2.0 * h,
        "pressure_bar": pressure0 * (0.8 + 0.2 * load),
        "vibration_mm_s": 0.5 + 0.3 * load + 0.5 * h,
        "flow_m3_h": flow,
        "valve_position_pct": position + (0.5 + 2.5 * h) * rng.standard_normal(h.size),
        "motor_current_a": current0 * (1.0 + 0.8 * h),
        "differential_pressure_bar": dp0 * load**2 * (1.0 + 0.5 * h),
    }


def _compressor_readings(
    h: np.ndarray, load: np.ndarray, ambient: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Compressor/heat-exchanger physics: fouling raises pressure drop, temperature and current and lowers flow."""
    flow0, pressure0, temp0 = rng.uniform(150, 300), rng.uniform(8.0, 12.0), rng.uniform(60, 75)
    vib0, current0, dp0 = rng.uniform(2.0, 3.0), rng.uniform(150, 250), rng.uniform(0.2, 0.35)
    return {
        "temperature_c": 0.4 * ambient + temp0 + 10.0 * (load - 1.0) + 18.0 * h,
        "pressure_bar": pressure0 * (0.6 + 0.4 * load) * (1.0 + 0.05 * h),
        "vibration_mm_s": vib0 * (0.9 + 0.1 * load) * (1.0 + 0.3 * h),
        "flow_m3_h": flow0 * load * (1.0 - 0.22 * h),
        "valve_position_pct": 20.0 + 30.0 * (1.1 - load) + 15.0 * h,
        "motor_current_a": current0 * (0.35 + 0.65 * load) * (1.0 + 0.18 * h),
        "differential_pressure_bar": dp0 * load**2 * (1.0 + 1.5 * h),
    }


_PHYSICS = {"pump": _pump_readings, "valve": _valve_readings, "compressor": _compressor_readings}


def _measure(truth: dict[str, np.ndarray], site_index: int, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Turns true values into readings: site-scaled noise, single-reading dropouts and absent site sensors."""
    measured = set(site_sensors(site_index))
    noise_level = _SITE_NOISE[site_index]
    readings = {}
    for column in SENSOR_COLUMNS:
        noise = rng.standard_normal(n) * _NOISE_STD[column] * noise_level
        dropped = rng.random(n) < _DROPOUT_RATE
        values = np.clip(truth[column] + noise, 0.0, None)
        if column == "valve_position_pct":
            values = np.clip(values, 0.0, 100.0)
        values[dropped] = np.nan
        readings[column] = np.round(values, _FLOAT_DECIMALS) if column in measured else np.full(n, np.nan)
    return readings


def _simulate_asset(
    spec: PlantDataSpec, asset: _Asset, hours: np.ndarray, steps_per_day: int
) -> tuple[dict[str, np.ndarray], list[tuple[int, str, str]]]:
    """Simulates one asset end to end and returns its sensor columns and its events by step index."""
    health_rng, process_rng, noise_rng = _asset_rngs(spec.seed, asset)
    n = hours.size
    health, events = _simulate_health(health_rng, asset.asset_type, n, steps_per_day)
    load = _load_profile(process_rng, n, steps_per_day) * _SITE_LOAD[asset.site_index]
    ambient = _ambient(hours, asset.site_index, process_rng)
    truth = _PHYSICS[asset.asset_type](health, load, ambient, process_rng)
    return _measure(truth, asset.site_index, noise_rng, n), events


def generate_plant_data(spec: PlantDataSpec = PlantDataSpec()) -> PlantData:
    """Generates sensor readings and events for the whole plant described by ``spec``.

    Args:
        spec: Plant size, sampling and seed.

    Returns:
        Sensors sorted by asset_id then timestamp, and events sorted by timestamp then asset_id.

    Raises:
        ValueError: If a spec field is outside its allowed range.
    """
    start = _validate(spec)
    steps_per_day = 1440 // spec.interval_minutes
    n = spec.days * steps_per_day
    hours = np.arange(n) * (spec.interval_minutes / 60.0)
    stamps = pd.date_range(start, periods=n, freq=pd.Timedelta(minutes=spec.interval_minutes))
    timestamps = np.asarray(stamps.strftime(_TIMESTAMP_FORMAT), dtype=object)
    hours_of_day = hours + start.hour + start.minute / 60.0

    frames: list[pd.DataFrame] = []
    event_rows: list[tuple[str, str, str, str]] = []
    for asset in _plan_assets(spec):
        readings, events = _simulate_asset(spec, asset, hours_of_day, steps_per_day)
        frame = pd.DataFrame(
            {
                "timestamp": timestamps,
                "site": site_name(asset.site_index),
                "asset_id": asset.asset_id,
                "asset_type": asset.asset_type,
                **readings,
            }
        )
        frames.append(frame)
        event_rows.extend((timestamps[step], asset.asset_id, kind, text) for step, kind, text in events)

    sensors = pd.concat(frames, ignore_index=True)
    sensors = sensors.sort_values(["asset_id", "timestamp"], kind="mergesort", ignore_index=True)
    events_frame = pd.DataFrame(event_rows, columns=list(EVENT_COLUMNS))
    events_frame = events_frame.sort_values(["timestamp", "asset_id"], kind="mergesort", ignore_index=True)
    return PlantData(sensors=sensors[list(ID_COLUMNS + SENSOR_COLUMNS)], events=events_frame)


def write_plant_data(
    out_dir: pathlib.Path,
    spec: PlantDataSpec = PlantDataSpec(),
) -> dict[str, pathlib.Path]:
    """Writes sensors.csv and events.csv into out_dir (created if needed); returns {"sensors": path, "events": path}."""
    data = generate_plant_data(spec)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"sensors": out_dir / "sensors.csv", "events": out_dir / "events.csv"}
    float_format = f"%.{_FLOAT_DECIMALS}f"
    data.sensors.to_csv(paths["sensors"], index=False, float_format=float_format, lineterminator="\n")
    data.events.to_csv(paths["events"], index=False, lineterminator="\n")
    return paths
