"""Prometheus metrics of the model server: requests, latency, errors, batches, scores, alarms, payload log, model.

Registries: kserve defines its own histograms (``request_predict_seconds``, ``request_explain_seconds``,
``request_preprocess_seconds``, ``request_postprocess_seconds``, by ``model_name``) in prometheus_client's
default ``REGISTRY`` when it is imported, and records them in ``kserve.Model.__call__``. Ours that the request
path records (requests, latency, errors, batch sizes, scores, alarms) are defined once, here, at import, in that
same default registry and labelled by ``model_name``, so a process may build many apps (the tests do) without
registering a name twice. What belongs to one app (the served model's version, readiness and load time, its
payload logger's counters) is read at scrape time by a ``ServerCollector`` in a registry of the app's own
(``app_registry``), which also exposes everything in the default registry: ``GET /metrics`` serves that one.

Names follow Prometheus conventions (snake_case, base units, ``_total`` counters, ``_seconds`` durations) with a
``shopfloor_`` prefix; labels use kserve's ``model_name``. Label values are bounded: routes and protocols come
from a fixed list, model names other than the served ones are counted as ``unknown``. Requests are HTTP ones
(``MetricsMiddleware``: protocol ``v1``, ``v2`` or ``none``, code the HTTP status) and, with ``--grpc-port``,
gRPC ones (``serving.grpc_server`` records them: protocol ``grpc``, code the status name, ``OK`` or ``NOT_FOUND``).
"""

from __future__ import annotations

import re
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "ALARM_OUTPUTS",
    "SCORE_OUTPUTS",
    "MetricsMiddleware",
    "ServerCollector",
    "app_registry",
    "batch_observer",
    "classify",
    "classify_grpc",
    "observe_outputs",
    "record_request",
    "timed_load",
]

SCORE_OUTPUTS = ("failure_probability", "anomaly_score", "defect_score")
"""The served score of each model family, as its output is named (the first one present is observed)."""
ALARM_OUTPUTS = ("fails_within_horizon", "anomalous", "defective")
"""The alarm (a boolean per window or image) of each model family, as its output is named."""

_REQUEST_LABELS = ["model_name", "protocol", "route"]
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
# probabilities (0-1) in steps of 0.05, then anomaly scores (reconstruction error in standard units) above 1
_SCORE_BUCKETS = tuple(round(step / 20, 2) for step in range(1, 21)) + (1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0)

REQUESTS = Counter(
    "shopfloor_requests",
    "Requests answered, by model, protocol, route and status code (HTTP status, or gRPC status name)",
    [*_REQUEST_LABELS, "code"],
)
REQUEST_ERRORS = Counter(
    "shopfloor_request_errors",
    "Requests answered with an HTTP 4xx or 5xx status code, or a gRPC status other than OK",
    [*_REQUEST_LABELS, "code"],
)
REQUEST_SECONDS = Histogram(
    "shopfloor_request_duration_seconds",
    "Time from a request's arrival to its answer, by model, protocol and route",
    _REQUEST_LABELS,
    buckets=_LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "shopfloor_model_batch_size",
    "Rows (windows or images) per model call: concurrent predicts are scored together",
    ["model_name"],
    buckets=_BATCH_BUCKETS,
)
SCORE = Histogram(
    "shopfloor_prediction_score",
    "Served scores (failure probability, anomaly score or defect score), one observation per window or image",
    ["model_name", "output"],
    buckets=_SCORE_BUCKETS,
)
PREDICTIONS = Counter("shopfloor_predictions", "Windows or images predicted", ["model_name"])
ALARMS = Counter(
    "shopfloor_alarms", "Predictions that raised the alarm (alarm rate: over predictions)", ["model_name", "output"]
)

_LOADS: weakref.WeakKeyDictionary[Any, tuple[float, float]] = weakref.WeakKeyDictionary()
_V = r"(?:/versions/[^/]+)?"
_ROUTES: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(pattern), protocol, route)
    for pattern, protocol, route in [
        (r"/v1/models/(?P<model>[^/:]+):predict", "v1", "predict"),
        (r"/v1/models/(?P<model>[^/:]+):explain", "v1", "explain"),
        (r"/v1/models/(?P<model>[^/:]+)/feedback", "v1", "feedback"),
        (r"/v1/models/(?P<model>[^/:]+)", "v1", "metadata"),
        (r"/v1/models", "v1", "models"),
        (r"/v1/payload-log", "none", "payload_log"),
        (rf"/v2/models/(?P<model>[^/]+){_V}/infer", "v2", "predict"),
        (rf"/v2/models/(?P<model>[^/]+){_V}/explain", "v2", "explain"),
        (rf"/v2/models/(?P<model>[^/]+){_V}/ready", "v2", "ready"),
        (rf"/v2/models/(?P<model>[^/]+){_V}", "v2", "metadata"),
        (r"/v2/models", "v2", "models"),
        (r"/v2/health/(?:live|ready)", "v2", "health"),
        (r"/v2/repository/models/(?P<model>[^/]+)/(?:load|unload)", "v2", "repository"),
        (r"/v2/repository/.*", "v2", "repository"),
        (r"/v2/?", "v2", "metadata"),
        (r"/", "none", "health"),
    ]
]
_GRPC_ROUTES = {
    "ModelInfer": "predict",
    "ModelReady": "ready",
    "ModelMetadata": "metadata",
    "ServerMetadata": "metadata",
    "ServerLive": "health",
    "ServerReady": "health",
    "RepositoryModelLoad": "repository",
    "RepositoryModelUnload": "repository",
}


def classify(path: str, known: Callable[[str], bool]) -> tuple[str, str, str]:
    """``(model_name, protocol, route)`` of a request path; names ``known`` refuses become ``unknown``."""
    for pattern, protocol, route in _ROUTES:
        found = pattern.fullmatch(path)
        if found is not None:
            name = found.groupdict().get("model") or ""
            return (name if not name or known(name) else "unknown"), protocol, route
    return "", "none", "other"


def classify_grpc(method: str, model_name: str, known: Callable[[str], bool]) -> tuple[str, str, str]:
    """``(model_name, "grpc", route)`` of an OIP gRPC method (``ModelInfer`` is ``predict``, as V2 ``/infer``)."""
    name = model_name if not model_name or known(model_name) else "unknown"
    return name, "grpc", _GRPC_ROUTES.get(method, "other")


def record_request(labels: tuple[str, str, str], code: str, seconds: float, *, error: bool) -> None:
    """Count one answered request (and, if ``error``, one error) with its code; observe its duration."""
    REQUESTS.labels(*labels, code).inc()
    if error:
        REQUEST_ERRORS.labels(*labels, code).inc()
    REQUEST_SECONDS.labels(*labels).observe(seconds)


class MetricsMiddleware:
    """ASGI middleware counting every HTTP request by model, protocol, route and status code, and timing it.

    Outermost of our middlewares, so the 408/413 of ``BodyLimits`` are counted; an exception that escapes the app
    (Starlette answers it with a 500 further out) counts as a 500. ``/metrics`` itself is not counted.
    """

    def __init__(self, app: ASGIApp, known: Callable[[str], bool]):
        self.app = app
        self.known = known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; count and time it once it is answered."""
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._record(scope["path"], status[0], time.perf_counter() - started)

    def _record(self, path: str, status: int, seconds: float) -> None:
        """Count one answered request and observe its duration."""
        record_request(classify(path, self.known), str(status), seconds, error=status >= 400)


def batch_observer(model_name: str) -> Callable[[int], None]:
    """A ``MicroBatcher`` hook observing the rows of each model call of ``model_name``."""
    return BATCH_SIZE.labels(model_name).observe


def observe_outputs(model_name: str, arrays: dict[str, np.ndarray]) -> None:
    """Count the predictions of one answer, observe their scores and count their alarms (~1 µs per window)."""
    score = next((name for name in SCORE_OUTPUTS if name in arrays), None)
    alarm = next((name for name in ALARM_OUTPUTS if name in arrays), None)
    if score is None and alarm is None:
        return
    count = len(arrays[score if score is not None else alarm])  # type: ignore[index]
    PREDICTIONS.labels(model_name).inc(count)
    if score is not None:
        histogram = SCORE.labels(model_name, score)
        for value in np.asarray(arrays[score], dtype=np.float64).reshape(-1).tolist():
            histogram.observe(value)
    if alarm is not None:
        ALARMS.labels(model_name, alarm).inc(int(np.count_nonzero(arrays[alarm])))


def timed_load(model: Any) -> bool:
    """``model.load()``, remembering when it finished and how long it took (``shopfloor_model_load_*``)."""
    started = time.perf_counter()
    ready = bool(model.load())
    _LOADS[model] = (time.time(), time.perf_counter() - started)
    return ready


class ServerCollector(Collector):
    """Read at scrape time: the served model's version, readiness and last load, its payload logger's counters."""

    def __init__(self, model: Any, payload_logger: Any = None, ready: Callable[[], bool] | None = None):
        self.model = model
        self.payload_logger = payload_logger
        self.ready = ready or (lambda: bool(getattr(model, "ready", False)))

    def collect(self) -> Iterable[Metric]:
        """The model's families, then the payload logger's."""
        yield from self._model_families()
        yield from self._payload_log_families()

    def _model_families(self) -> Iterator[Metric]:
        """Info (name, version, class, runtime), readiness, and when and how long the last load took."""
        name = self.model.name
        info = InfoMetricFamily("shopfloor_model", "The served model", labels=["model_name"])
        details = {
            "model_version": str(getattr(self.model, "model_version", "") or ""),
            "model_class": type(self.model).__name__,
            "runtime": str(getattr(self.model, "runtime", "keras")),
        }
        info.add_metric([name], details)
        yield info
        ready = GaugeMetricFamily("shopfloor_model_ready", "1 while the model answers, 0 else", labels=["model_name"])
        ready.add_metric([name], 1.0 if self.ready() else 0.0)
        yield ready
        load = _LOADS.get(self.model)
        if load is not None:
            at = GaugeMetricFamily(
                "shopfloor_model_loaded_timestamp_seconds", "When the model was last loaded", labels=["model_name"]
            )
            at.add_metric([name], load[0])
            took = GaugeMetricFamily(
                "shopfloor_model_load_duration_seconds",
                "How long the last load of the model took",
                labels=["model_name"],
            )
            took.add_metric([name], load[1])
            yield from (at, took)

    def _payload_log_families(self) -> Iterator[Metric]:
        """The payload logger's counters (``PayloadLogger.stats``) and queue depth; only ``enabled`` 0 without one."""
        name = self.model.name
        enabled = GaugeMetricFamily(
            "shopfloor_payload_log_enabled", "1 when answered requests are payload-logged", labels=["model_name"]
        )
        enabled.add_metric([name], 0.0 if self.payload_logger is None else 1.0)
        yield enabled
        if self.payload_logger is None:
            return
        stats = self.payload_logger.stats
        pending = GaugeMetricFamily(
            "shopfloor_payload_log_pending_records",
            "Records queued or being written (queue depth)",
            labels=["model_name"],
        )
        pending.add_metric([name], stats.get("pending", 0))
        yield pending
        for key, help_text in [
            ("recorded", "Request/response pairs handed to the payload logger"),
            ("written", "Payload records the store took"),
            ("dropped", "Payload records dropped (queue or spool full, not encodable, no spool at shutdown)"),
            ("failed_writes", "Batch writes to the payload store that failed (the records are retried)"),
            ("spooled", "Payload records left in the local spool at shutdown"),
            ("unspooled", "Payload records an earlier run spooled that this one took over"),
        ]:
            counter = CounterMetricFamily(f"shopfloor_payload_log_{key}", help_text, labels=["model_name"])
            counter.add_metric([name], stats.get(key, 0))
            yield counter


class _Default(Collector):
    """Everything in prometheus_client's default registry: kserve's histograms, ours, the process's."""

    def collect(self) -> Iterable[Metric]:
        """The default registry's families, as it collects them."""
        return REGISTRY.collect()


def app_registry(collector: ServerCollector) -> CollectorRegistry:
    """One app's registry: the default registry's metrics plus ``collector``'s (nothing registered globally)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Default())
    registry.register(collector)
    return registry
