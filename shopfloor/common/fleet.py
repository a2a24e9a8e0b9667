"""Fleets of plants that differ: per-site overlays over the fleet's config, and the one way to apply them.

A scenario config's ``sites:`` maps a site (a value of the data's site column) to an overlay: the sensors that
site measures (``features``), a linear conversion of its readings into the fleet's units (``scale``), and partial
config sections (labelling horizon, gate, monitor thresholds, deployment) whose keys replace the fleet default's
for that site only. An overlay's sections are *partial* models of the fleet's sections (``partial_section``): the
same fields, constraints and unknown-key errors, every field optional, so ``validated`` names a bad key as
``sites.site-b.gate.min_roc_au``. ``merge_overlay`` is the one merge rule (mappings merge key by key, anything else
replaces); ``site_section`` applies it to one section as a step receives it (plain pipeline-parameter dicts), and
``site_view`` to a whole config.
"""

from __future__ import annotations

import copy
import functools
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pydantic
from pydantic import BaseModel, Field, create_model

from shopfloor.common.config import StrictSection, validated
from shopfloor.common.errors import ConfigError, DataValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ASSET_TYPE_COLUMN",
    "SITE_COLUMN",
    "SensorScale",
    "apply_site_readings",
    "check_known_sites",
    "check_site_overlays",
    "fleet_schema",
    "merge_overlay",
    "partial_section",
    "site_overlay_model",
    "site_section",
    "site_view",
    "sites_of",
    "site_profiles",
    "sites_parameter",
]

SITE_COLUMN = "site"
"""The canonical name of the site column in ingested tables (ingest renames the plant's own column to it)."""

ASSET_TYPE_COLUMN = "asset_type"
"""The canonical name of the asset-type column in ingested tables ('' = unknown; evaluation reports by type)."""

SITES_KEY = "sites"
"""Where the overlays travel in the ``data_schema`` pipeline parameter, which every sensor step already receives."""

FLEET_KEY = "fleet"
"""Where a non-default ``fleet`` section (the model strategy of a fleet) travels in ``data_schema``."""

_Section = TypeVar("_Section", bound=BaseModel)
_Config = TypeVar("_Config", bound=BaseModel)


class SensorScale(StrictSection):
    """A site's readings of one sensor in the fleet's units: ``reading * factor + offset`` (e.g. degF -> degC)."""

    factor: float = Field(1.0, description="multiplies the site's reading")
    offset: float = Field(0.0, description="added after the factor")

    @pydantic.field_validator("factor")
    @classmethod
    def _not_zero(cls, value: float) -> float:
        """A zero factor would turn every reading into the offset: no conversion, a lost sensor."""
        if value == 0:
            raise ValueError("a factor of 0 erases the sensor; expected a non-zero number")
        return value


@functools.cache
def partial_section(model: type[_Section], keep: frozenset[str] | None = None) -> type[BaseModel]:
    """``model`` with every field optional (default null), its constraints and strictness kept.

    ``keep`` limits the fields a site may override (a global model needs one window length, so a site may not
    change it). The overlay is read back with ``model_dump(exclude_unset=True)``: only what the file set.
    """
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if keep is not None and name not in keep:
            continue
        optional = copy.copy(info)
        optional.default, optional.default_factory = None, None
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = partial_section(annotation)  # nested sections (monitor.retrain) are partial too
        fields[name] = (cast(Any, annotation) | None, optional)
    partial: type[BaseModel] = create_model(f"Site{model.__name__}", __base__=StrictSection, **fields)
    partial.__doc__ = f"A site's overrides of {model.__name__}: every key optional, the same limits."
    return partial


def site_overlay_model(name: str, sections: dict[str, type[BaseModel]]) -> type[BaseModel]:
    """The overlay model of one scenario: ``features``, ``scale`` and a partial model per overridable section."""
    fields: dict[str, Any] = {
        "features": (
            list[str] | None,
            Field(None, description="the fleet's sensors this site measures; the others are missing there"),
        ),
        "scale": (
            dict[str, SensorScale],
            Field(default_factory=dict, description="per sensor, the site's readings into the fleet's units"),
        ),
    }
    for section, partial in sections.items():
        fields[section] = (partial | None, Field(None, description=f"the site's overrides of {section}"))
    overlay: type[BaseModel] = create_model(name, __base__=StrictSection, **fields)
    overlay.__doc__ = "One site's differences from the fleet: its sensors, their units and partial config sections."
    return overlay


def merge_overlay(base: dict, overlay: dict) -> dict:
    """``overlay`` over ``base``: mappings merge key by key (recursively), any other value replaces."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overlay(merged[key], value)
        else:
            merged[key] = value
    return merged


def _overlay_values(overlay: object) -> dict:
    """What an overlay sets, as plain values (a validated overlay model or the dict a pipeline parameter holds)."""
    if isinstance(overlay, BaseModel):
        return overlay.model_dump(mode="json", exclude_unset=True)
    return dict(overlay) if isinstance(overlay, dict) else {}


def site_section(model: type[_Section], base: dict, sites: dict, site: str, section: str, source: str) -> _Section:
    """The ``section`` config of ``site``: the fleet's values (``base``) with the site's overlay, validated.

    ``sites`` is the ``sites`` pipeline parameter (site -> overlay dict); a site without an overlay, or an overlay
    without this section, gets the fleet's section. Errors name ``source`` and ``sites.<site>.<section>``.
    """
    patch = _overlay_values(sites.get(site)).get(section) or {}
    patch = {k: v for k, v in patch.items() if v is not None and v != ""}  # '' = null in a pipeline parameter
    try:
        return model.model_validate(merge_overlay(base, patch))
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(["sites", site, section, *(str(p) for p in error["loc"])])
        raise ConfigError(source, error["msg"].lower(), field=field) from None


def site_view(config: _Config, site: str) -> _Config:
    """The whole config as site ``site`` sees it: the fleet's sections with the site's overlay over them.

    The overlay's ``features`` become ``data.sensor_columns.features``; ``scale`` stays in ``config.sites``. A site
    with no overlay sees the fleet's config. The view has no ``sites`` of its own.
    """
    sites = getattr(config, "sites", {}) or {}
    values = _overlay_values(sites.get(site))
    features = values.pop("features", None)
    values.pop("scale", None)
    if features is not None:
        values["data"] = {"sensor_columns": {"features": features}}
    merged = merge_overlay(config.model_dump(mode="python", exclude={"sites"}), values)
    return validated(type(config), merged, f"site {site}")


def sites_of(site: object, size: int) -> list[str]:
    """The site of each of ``size`` rows: a site array as stored, or '' everywhere for data without sites."""
    import numpy as np

    values = np.asarray(site if site is not None else [], dtype=str)
    return values.tolist() if values.size == size else [""] * size


def check_known_sites(sites: dict, found: list[str], source: str) -> None:
    """Every overlay names a site the data has; an overlay for a site the data lacks is a typo or stale config."""
    unknown = sorted(set(sites) - set(found))
    if unknown:
        raise DataValidationError(
            source,
            f"an overlay for site '{unknown[0]}', which the data does not have"
            + (f" (+{len(unknown) - 1} more)" if len(unknown) > 1 else ""),
            field=f"sites.{unknown[0]}",
            expected=f"one of the data's sites: {', '.join(sorted(found)) or 'none'}",
        )


def apply_site_readings(sensors: pd.DataFrame, sites: dict, features: list[str], source: str) -> pd.DataFrame:
    """Readings in the fleet's units, with the sensors a site does not measure blanked (missing, which the model masks).

    ``sites`` is the validated overlays or the ``sites`` pipeline parameter; ``sensors`` has the canonical ``site``
    column. A site's ``features`` or ``scale`` naming a sensor the data lacks is an error naming the site.
    """
    if not sites or SITE_COLUMN not in sensors.columns:
        return sensors
    check_known_sites(sites, sorted(sensors[SITE_COLUMN].astype(str).unique()), source)
    out = sensors.copy()
    for site, overlay in sorted(sites.items()):
        values = _overlay_values(overlay)
        rows = out[SITE_COLUMN].astype(str) == site
        measured = values.get("features") or None
        for key, names in (("features", measured or []), ("scale", list(values.get("scale") or {}))):
            strange = [n for n in names if n not in features]
            if strange:
                raise DataValidationError(
                    source,
                    f"site '{site}' names sensor '{strange[0]}', which is not a feature",
                    field=f"sites.{site}.{key}",
                    expected=f"some of: {', '.join(features)}",
                )
        for name, conversion in (values.get("scale") or {}).items():
            factor, offset = float(conversion.get("factor", 1.0)), float(conversion.get("offset", 0.0))
            out.loc[rows, name] = out.loc[rows, name] * factor + offset
        if measured is not None:
            absent = [name for name in features if name not in measured]
            out.loc[rows, absent] = float("nan")
    return out


def sites_parameter(config: BaseModel) -> dict:
    """The config's overlays as they travel in ``data_schema``: ``{"sites": {site: what it sets}}``, {} for none.

    Only what a site's overlay sets travels (JSON types, no nulls, which KFP parameters cannot hold), and a config
    without overlays adds nothing, so a plain config's pipeline parameters stay as they were.
    """
    sites = getattr(config, "sites", None) or {}
    return {SITES_KEY: {site: _overlay_values(overlay) for site, overlay in sorted(sites.items())}} if sites else {}


def fleet_schema(data_schema: dict) -> tuple[dict, dict]:
    """The ``data_schema`` parameter split into the data section proper and the per-site overlays ({} if none).

    The fleet's model strategy (key ``fleet``, which training reads) is not part of the data section either.
    """
    schema = {k: v for k, v in data_schema.items() if k not in (SITES_KEY, FLEET_KEY)}
    return schema, dict(data_schema.get(SITES_KEY) or {})


def check_site_overlays(sites: dict, data: object) -> dict:
    """Validator of a scenario's ``sites``: overlays need a site column, and a site's sensors must be the fleet's.

    ``data`` is the scenario's validated data section (absent when it failed validation itself).
    """
    if not sites or data is None:
        return sites
    columns = getattr(data, "sensor_columns", None)
    if columns is not None and not columns.site:
        raise ValueError("site overlays need a site column, but data.sensor_columns.site is null")
    fleet = list(getattr(columns, "features", None) or [])
    for site, overlay in sorted(sites.items()):
        values = _overlay_values(overlay)
        named = [*(values.get("features") or []), *(values.get("scale") or {})]
        strange = [name for name in named if fleet and name not in fleet]
        if strange:
            raise ValueError(f"site '{site}' names sensor '{strange[0]}', not one of the fleet's: {', '.join(fleet)}")
    return sites


def site_profiles(sensors: pd.DataFrame, features: list[str]) -> dict:
    """``{"sites": {site: profile of its readings}}`` for data with a site column, else {}.

    Sites differ in sensors, noise and operating point, so a site's drift is judged against its own readings, not
    the fleet's mixture (per-site monitoring reads these).
    """
    from shopfloor.common.profile import profile_table

    if SITE_COLUMN not in sensors.columns:
        return {}
    grouped = sensors.groupby(sensors[SITE_COLUMN].astype(str), sort=True)
    return {"sites": {str(site): profile_table(rows[features], features) for site, rows in grouped}}
