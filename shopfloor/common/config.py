"""The config sections every scenario shares: what the data columns mean, the search, deploy and monitoring.

One YAML file per plant describes its data, so no step is hard-wired to a column layout. Each model family adds
its own sections and its scenario config in ``shopfloor.families.<kind>.config``, built on ``StrictSection``.
Loading reports the first problem as one line naming the file and the dotted field, with a suggestion for a
misspelt key (``validated``).
"""

from __future__ import annotations

import difflib
import os
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from shopfloor.common.errors import ConfigError
from shopfloor.common.sources import Location, TimeRange
from shopfloor.common.storage import is_s3_uri, join_uri

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic_core import ErrorDetails


__all__ = [
    "ASSET_TYPE_DEFAULT",
    "DASHBOARD_URL",
    "SINGLE_ASSET_ID",
    "AlertsConfig",
    "DataConfig",
    "DeployConfig",
    "EventColumns",
    "HpoConfig",
    "MonitorConfig",
    "ResampleConfig",
    "RetrainPolicy",
    "SensorColumns",
    "SensorDataLocations",
    "StrictSection",
    "as_parameter",
    "blank_is_none",
    "over_scenario_search",
    "require_builder",
    "validated",
]


class StrictSection(BaseModel):
    """Base for config sections: unknown keys are errors, so a typo never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def as_parameter(section: BaseModel, exclude: set[str] | None = None) -> dict:
    """A config section as a KFP pipeline parameter value: JSON types, and '' for null.

    KFP parameters cannot hold null (the local runner rejects it), so an optional field that is null travels as
    '' and the section's validators read '' back as null.
    """

    def blank(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: blank(v) for k, v in value.items()}
        if isinstance(value, list):
            return [blank(v) for v in value]
        return "" if value is None else value

    return blank(section.model_dump(mode="json", exclude=exclude))


def blank_is_none(value: object) -> object:
    """Validator for optional fields: '' (how a KFP parameter carries null) means null."""
    return value or None


SINGLE_ASSET_ID = "asset"

ASSET_TYPE_DEFAULT = "asset_type"
"""The asset-type column read when the config names none; optional in the data, unlike a column the config names."""


class SensorColumns(StrictSection):
    """Which columns of the sensor table hold the time, the asset, the site and the sensor features."""

    timestamp: str = "timestamp"
    time_unit: Literal["datetime", "index"] = Field(
        "datetime",
        description="index: the time column counts cycles or steps (integers); windows, horizons and hours in the "
        "config then count those steps, one step standing for one hour",
    )
    asset_id: str | None = Field(
        "asset_id", description=f"null (or ''): one machine's series without an asset column (id '{SINGLE_ASSET_ID}')"
    )
    site: str | None = Field("site", description="null (or ''): the data has no site column")
    features: list[str] = Field(default_factory=list, description="empty: every numeric column but the ids")
    asset_type: str | None = Field(
        ASSET_TYPE_DEFAULT,
        description=f"the asset's type (pump, compressor...), for evaluation by type; the default column "
        f"'{ASSET_TYPE_DEFAULT}' is optional (a table without it has no types), another name must exist; "
        "null (or ''): not read",
    )

    _blank_is_none = pydantic.field_validator("site", "asset_id", "asset_type", mode="before")(blank_is_none)

    @pydantic.field_validator("asset_type")
    @classmethod
    def _asset_type_is_its_own_column(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        """The type column is none of the time, id or feature columns: one column cannot mean two things."""
        taken = {info.data.get(name): name for name in ("timestamp", "asset_id", "site") if info.data.get(name)}
        if value in taken:
            raise ValueError(f"'{value}' is already the {taken[value]} column; expected a column of its own")
        if value is not None and value in (info.data.get("features") or []):
            raise ValueError(f"'{value}' is listed among the features; expected a text column of asset types")
        return value


class EventColumns(StrictSection):
    """Which columns of the maintenance-event table hold the time, the asset and the event type."""

    timestamp: str = "timestamp"
    asset_id: str | None = Field("asset_id", description="null (or ''): every event is the single machine's")
    event_type: str | None = Field("event_type", description="null (or ''): every row is a failure")

    _blank_is_none = pydantic.field_validator("event_type", "asset_id", mode="before")(blank_is_none)


class ResampleConfig(StrictSection):
    """Irregular readings onto a regular grid per asset, so a window's readings span equal times."""

    every: str | None = Field(
        None, description="grid step as a pandas offset, e.g. 1h, 10min (index time: 1h = one step); null: as read"
    )
    rule: Literal["mean", "median", "last", "max", "min"] = Field(
        "mean", description="how the readings inside one step become its value; an empty step is a missing reading"
    )

    _blank_is_none = pydantic.field_validator("every", mode="before")(blank_is_none)

    @pydantic.field_validator("every")
    @classmethod
    def _an_offset(cls, value: str | None) -> str | None:
        """A step pandas understands and that moves time forward (not '0h', not 'abc')."""
        if value is None:
            return value
        import pandas as pd

        try:
            step = pd.Timedelta(value)  # a fixed step: calendar offsets (1M) have no one length
        except (ValueError, TypeError):
            raise ValueError(f"'{value}' is not a time step like 1h or 10min") from None
        if step <= pd.Timedelta(0):
            raise ValueError(f"'{value}' does not move time forward")
        return value


class DataConfig(StrictSection):
    """Where the sensor readings and failure events are, and how to read them."""

    sensors: Location = Field(
        "sensors.csv", description="a CSV/Parquet path or s3:// URI, or a source block (kind: sql | mqtt | opcua ...)"
    )
    events: Location | None = Field("events.csv", description="like sensors; null (or ''): the plant has no events")
    sensor_columns: SensorColumns = Field(default_factory=SensorColumns)
    event_columns: EventColumns = Field(default_factory=EventColumns)
    failure_values: list[str] = Field(default_factory=lambda: ["failure"], min_length=1)
    time_range: TimeRange = Field(default_factory=TimeRange, description="read only readings in this window")
    resample: ResampleConfig = Field(default_factory=ResampleConfig, description="irregular sampling onto a grid")

    _blank_is_none = pydantic.field_validator("events", mode="before")(blank_is_none)

    def schema_parameter(self) -> dict:
        """The section without its locations (pipeline parameters of their own) as a KFP parameter value."""
        return as_parameter(self, exclude={"sensors", "events"})


class HpoConfig(StrictSection):
    """The hyperparameter search: builder, budget, parallel workers and where the shared study lives."""

    enabled: bool = Field(True, description="false: train with the model section as given (quick runs)")
    required: bool = Field(
        False, description="true: a search the data cannot score fails the run; false: the configured model trains"
    )
    builder: Literal["predictive-maintenance", "anomaly-detection", "visual-inspection"] = Field(
        "predictive-maintenance", description="the model family whose keras-tuner space is searched (the scenario's)"
    )
    trials: int = Field(8, ge=1, description="trials to complete (pruned ones count)")
    timeout_s: float = Field(1800.0, gt=0, description="no new trial starts after this many seconds")
    workers: int = Field(2, ge=1, le=32, description="parallel workers sharing one study")
    max_epochs: int = Field(8, ge=1, description="epochs per trial; bad trials are pruned earlier")
    overfit_penalty: float = Field(
        0.5, ge=0, description="a trial's score loses this times its train-minus-validation gap beyond the tolerance"
    )
    overfit_tolerance: float = Field(0.05, ge=0, le=1, description="the train/validation gap that costs nothing")
    storage: str = Field("", description="Optuna storage URL; '' = env SHOPFLOOR_OPTUNA_STORAGE (from a Secret)")
    seed: int = 7


def require_builder(hpo: HpoConfig, builder: str) -> HpoConfig:
    """Validator for a scenario's ``hpo`` section: the search must build the scenario's own model family."""
    if hpo.builder != builder:
        raise ValueError(f"builder '{hpo.builder}' searches another scenario's model; expected '{builder}'")
    return hpo


def over_scenario_search(value: object, defaults: HpoConfig) -> object:
    """Validator (before) for a scenario's ``hpo`` section: the keys given override the scenario's own defaults.

    So ``hpo: {enabled: false}`` keeps the scenario's builder and budget instead of ``HpoConfig``'s.
    """
    return {**defaults.model_dump(), **value} if isinstance(value, dict) else value


class DeployConfig(StrictSection):
    """Where a blessed model is served: KServe on a cluster, or our model server on this machine."""

    target: Literal["kserve", "local"] = "kserve"
    namespace: str = "kubeflow-user-example-com"
    service_account: str = Field("shopfloor-s3", description="its Secret holds the S3 credentials")
    canary_traffic_percent: int = Field(10, gt=0, le=100, description="traffic to a new version; 100 = all")
    ready_timeout_s: float = Field(600.0, gt=0)
    explainer: bool = True
    runtime: Literal["keras", "tflite-float32", "tflite-int8", "edge-float32", "edge-int8"] = Field(
        "keras",
        description="what answers predict: keras; image models: tflite-* (the full server on a TFLite export, "
        "explain stays Keras); any kind: edge-* (the edge runtime shopfloor.edge, no TensorFlow, no explainer)",
    )
    payload_log_uri: str = Field("", description="folder or s3:// prefix for request/response logs; '' = off")
    local_state_dir: str = Field("", description="local target: where server state and logs go (set by the CLI)")

    @pydantic.model_validator(mode="after")
    def _edge_runtime_has_no_explainer(self) -> DeployConfig:
        """Refuse an explainer with an edge runtime: ``shopfloor.edge`` has no explain route to deploy one for.

        Refused rather than dropped, so a config never silently loses the explanations it asks for.
        """
        if self.runtime.startswith("edge-") and self.explainer:
            raise ValueError(
                f"deploy.explainer must be false with runtime {self.runtime}: the edge runtime has no explain route"
            )
        return self


class RetrainPolicy(StrictSection):
    """When drift may start a retrain: automatically, after a human approves, never; and how often at most."""

    mode: Literal["auto", "approval", "off"] = Field("approval", description="approval: an operator decides")
    cooldown_hours: float = Field(
        24.0, ge=0, le=87840, allow_inf_nan=False, description="no new retrain (or request) this long after one started"
    )
    max_runs_per_day: int = Field(2, ge=0, description="retrains started in any rolling 24 h window")
    request_ttl_hours: float = Field(
        72.0, gt=0, le=87840, allow_inf_nan=False, description="a pending approval request expires after this"
    )


_ALERT_SCHEMES = {
    "mqtt": ("mqtt", "mqtts"),
    "nats": ("nats", "tls"),
    "amqp": ("amqp", "amqps"),
    "webhook": ("http", "https"),
}


class AlertsConfig(StrictSection):
    """The plant's channel for events people act on (``shopfloor.common.alerts``); credentials only from env.

    ``kind`` none publishes nothing. The addresses follow from ``prefix`` (see the README's "Alerts"): MQTT topic
    ``<prefix>/events/<model>/<type>``, NATS subject ``<prefix>.events.<model>.<type>`` in the JetStream stream
    ``<prefix>-events``, AMQP topic exchange ``<prefix>.events`` (routing key ``<model>.<type>``) with the durable
    queue ``<prefix>.events`` bound to it, or a POST to the webhook URL. Approval answers come back on
    ``<prefix>/answers/<model>`` (MQTT), ``<prefix>.answers.<model>`` (NATS) or the queue of that name (AMQP).
    """

    kind: Literal["none", "mqtt", "nats", "amqp", "webhook"] = Field(
        "none", description="none | mqtt | nats | amqp | webhook"
    )
    url: str = Field(
        "", description="mqtt[s]://host:port, nats://host:port, amqp[s]://host:port/vhost or http[s]:// webhook URL"
    )
    prefix: str = Field(
        "shopfloor", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="first level of every topic, subject, queue"
    )
    username_env: str = Field("", description="environment variable holding the broker username (from a Secret)")
    password_env: str = Field("", description="environment variable holding the broker password (from a Secret)")
    token_env: str = Field("", description="webhook: environment variable holding a bearer token (from a Secret)")
    retries: int = Field(3, ge=0, le=20, description="tries after the first, with doubling waits")
    backoff_s: float = Field(0.5, ge=0, le=60, description="wait before the first retry")
    timeout_s: float = Field(5.0, gt=0, le=120, description="bound on connecting and on each acknowledgement")
    outbox: str = Field(
        "",
        description="folder holding events not delivered, sent first by the next publish; "
        "'' = env SHOPFLOOR_ALERTS_OUTBOX, else <tmp>/shopfloor-alerts-outbox",
    )

    @pydantic.model_validator(mode="after")
    def _url_fits_kind(self) -> AlertsConfig:
        """A channel needs a URL of its scheme, and credentials never sit in it (they would reach logs and YAML)."""
        if self.kind == "none":
            return self
        schemes = _ALERT_SCHEMES[self.kind]
        scheme, _, rest = self.url.partition("://")
        if scheme.lower() not in schemes or not rest:
            raise ValueError(f"url must be {' or '.join(s + '://...' for s in schemes)} for kind {self.kind}")
        if "@" in rest.split("/", 1)[0]:
            raise ValueError("credentials belong in username_env/password_env/token_env, not in the url")
        return self


DASHBOARD_URL = "http://localhost:3000/d/shopfloor-serving-monitoring"
"""Where Grafana shows ``infra/grafana/shopfloor-dashboard.json`` once imported (its uid), on a local Grafana."""


class MonitorConfig(StrictSection):
    """Drift thresholds of the monitor and the retrain policy it applies."""

    window_days: int = Field(7, ge=1, description="days of payload logs compared with the training data")
    min_rows: int = Field(200, ge=1, description="fewer readings: 'not enough data', never a retrain")
    psi_threshold: float = Field(0.2, gt=0, description="a sensor with PSI at or above this has drifted")
    alpha: float = Field(0.01, gt=0, lt=1, description="KS test level, together with min_effect")
    min_effect: float = Field(0.1, ge=0, description="Wasserstein distance / training std a KS drift must reach")
    min_share_drifted: float = Field(0.25, gt=0, le=1, description="share of sensors that must drift to act")
    max_alarm_rate: float = Field(
        0.1, gt=0, le=1, description="anomaly models: a larger share of windows in alarm is a plant alert"
    )
    min_labels: int = Field(50, ge=1, description="labelled windows needed before performance is judged")
    max_performance_drop: float = Field(
        0.1, gt=0, le=1, description="a test metric (ROC-AUC, PR-AUC, F1, recall) falling more than this: retrain"
    )
    push_gateway: str = Field(
        "",
        description="Pushgateway URL monitoring runs push their results to; "
        "'' = env SHOPFLOOR_PUSHGATEWAY_URL, else none",
    )
    dashboard_url: str = Field(DASHBOARD_URL, description="the Grafana dashboard the HTML report links to; '' = none")
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="the channel events for people go to")
    retrain: RetrainPolicy = Field(default_factory=RetrainPolicy)


class SensorDataLocations:
    """Mixin for scenario configs whose data section names sensor and event tables."""

    if TYPE_CHECKING:  # provided by the pydantic model the mixin is combined with
        data: DataConfig

        def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
            """Pydantic's copy with updated fields."""

    def resolve_data(self, base: str | os.PathLike) -> Self:
        """Make relative data paths absolute against ``base`` (the data folder or the config's folder)."""

        def resolve(location: Location | None) -> Location | None:
            if not isinstance(location, str) or is_s3_uri(location) or Path(location).is_absolute():
                return location  # a source block or no events: nothing to resolve
            return join_uri(base if is_s3_uri(base) else Path(base).resolve(), location)

        data = self.data.model_copy(update={"sensors": resolve(self.data.sensors), "events": resolve(self.data.events)})
        return self.model_copy(update={"data": data})


def _section_model(annotation: object) -> tuple[type[BaseModel] | None, bool]:
    """The section model a field holds, and whether it holds one per key (``dict[str, Model]``, e.g. ``sites``)."""
    keyed = typing.get_origin(annotation) is dict
    candidates = typing.get_args(annotation)[-1:] if keyed else (annotation, *typing.get_args(annotation))
    for candidate in candidates:  # ``Model | None`` holds a Model too
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate, keyed
    return None, False


def _field_names(model: type[BaseModel], loc: tuple) -> list[str]:
    """Names allowed at the parent of ``loc``, for the 'did you mean' hint."""
    parts = list(loc[:-1])
    while parts:
        part = parts.pop(0)
        field = model.model_fields.get(part) if isinstance(part, str) else None
        inner, keyed = _section_model(field.annotation if field else None)
        if inner is None or (keyed and not parts):
            return []
        if keyed:
            parts.pop(0)  # the key (a site's name) is not a field
        model = inner
    return list(model.model_fields)


def _describe(error: ErrorDetails, model: type[BaseModel]) -> tuple[str, str, str | None]:
    """Field path, problem and expectation for one pydantic error, phrased for a plant engineer."""
    loc = tuple(error["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        names = _field_names(model, loc)
        close = difflib.get_close_matches(str(loc[-1]), names, n=1)
        problem = f"unknown field, did you mean '{close[0]}'?" if close else "unknown field"
        return field, problem, f"one of: {', '.join(names)}"
    if error["type"] == "missing":
        return field, "missing field", "a value"
    return field, error["msg"].lower(), None


_Model = TypeVar("_Model", bound=BaseModel)


def validated(model: type[_Model], values: dict, source: str) -> _Model:
    """Build a config section from plain values, raising a one-line ``ConfigError`` naming ``source``."""
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        field, problem, expected = _describe(errors[0], model)
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(source, problem + more, field=field, expected=expected) from None
