"""The edge runtime's HTTP server: KServe V1 and Open Inference V2 routes and Prometheus metrics, stdlib only.

Routes (the full server's bodies and answers; ``NAME`` is the served model's name):

  POST /v1/models/NAME:predict      {"instances": [...]} -> {"predictions": [...]}
  GET  /v1/models/NAME              {"name", "ready"}
  POST /v2/models/NAME/infer        V2 request -> V2 response
  GET  /v2/models/NAME, /v2/models/NAME/ready, /v2/health/live, /v2/health/ready
  GET  /v1/payload-log              the payload logger's counters: recorded, written, pending, dropped, spooled, ...
  GET  /metrics                     shopfloor_requests_total, shopfloor_request_duration_seconds, ... (Prometheus)

A refused request is one line ``{"error": "<field>: <what was expected>"}`` with 400 (413 for too many inputs or
too large a body, 404 for another model or route, 503 before a model is loaded).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from shopfloor.contracts.request_codec import InvalidRequest, PayloadTooLarge
from shopfloor.edge.model import ServedEdgeModel, json_values

__all__ = ["EdgeMetrics", "EdgeServer", "PayloadLogCollector", "V2Body", "V2Input"]

_LOGGER = logging.getLogger("shopfloor.edge")
MAX_BODY_BYTES = 8 * 1024 * 1024
_V1 = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?P<verb>:predict)?$")
_V2 = re.compile(r"^/v2/models/(?P<name>[^/]+)(?P<rest>/ready|/infer)?$")


@dataclass
class V2Input:
    """One V2 input tensor from a JSON body."""

    name: str
    datatype: str
    shape: list[int]
    data: Any


@dataclass
class V2Body:
    """A V2 inference request from a JSON body."""

    id: str
    inputs: list[V2Input]


def v2_body(document: Any) -> V2Body:
    """A V2 request from its JSON document, refusing what is not one (naming the field)."""
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list):
        raise InvalidRequest('request body: missing field "inputs" (expected a list of tensors)')
    inputs = []
    for index, tensor in enumerate(document["inputs"]):
        where = f"inputs[{index}]"
        if not isinstance(tensor, dict):
            raise InvalidRequest(f"{where}: expected an object with name, datatype, shape and data")
        shape = tensor.get("shape")
        if not isinstance(shape, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape):
            raise InvalidRequest(f"{where}.shape: expected a list of integers")
        if "data" not in tensor:
            raise InvalidRequest(f"{where}.data: missing")
        inputs.append(V2Input(str(tensor.get("name", "")), str(tensor.get("datatype", "")), shape, tensor["data"]))
    request_id = document.get("id")
    return V2Body(id=str(request_id) if request_id else uuid.uuid4().hex, inputs=inputs)


_PAYLOAD_COUNTERS = {
    "recorded": "Request/response pairs handed to the payload logger",
    "written": "Payload records the store took",
    "dropped": "Payload records dropped (queue or spool full, not encodable)",
    "failed_writes": "Batch writes to the payload store that failed (the records go to the spool)",
    "spooled": "Payload records put in the local spool (store unreachable, or at shutdown)",
    "unspooled": "Spooled payload records taken over from the spool (then written or dropped)",
}


class PayloadLogCollector(Collector):
    """The payload logger's ``stats`` at scrape time, under the full server's metric names."""

    def __init__(self, name: str, payload_logger: Any):
        self.name, self.payload_logger = name, payload_logger

    def collect(self) -> Iterator[Metric]:
        """``shopfloor_payload_log_enabled``, ``_pending_records`` and one counter per ``stats`` key."""
        enabled = GaugeMetricFamily("shopfloor_payload_log_enabled", "1 when payload-logged", labels=["model_name"])
        enabled.add_metric([self.name], 0.0 if self.payload_logger is None else 1.0)
        yield enabled
        if self.payload_logger is None:
            return
        stats = self.payload_logger.stats
        pending = GaugeMetricFamily(
            "shopfloor_payload_log_pending_records", "Records queued or being written", labels=["model_name"]
        )
        pending.add_metric([self.name], stats.get("pending", 0))
        yield pending
        for key, help_text in _PAYLOAD_COUNTERS.items():
            counter = CounterMetricFamily(f"shopfloor_payload_log_{key}", help_text, labels=["model_name"])
            counter.add_metric([self.name], stats.get(key, 0))
            yield counter


class EdgeMetrics:
    """The Prometheus metrics of the edge runtime (the full server's names, so one dashboard shows both)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["model_name", "protocol", "route", "code"]
        self.requests = Counter("shopfloor_requests_total", "requests answered", labels, registry=self.registry)
        self.errors = Counter("shopfloor_request_errors_total", "4xx/5xx answers", labels, registry=self.registry)
        self.duration = Histogram(
            "shopfloor_request_duration_seconds",
            "arrival to answer",
            ["model_name", "protocol", "route"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.predictions = Counter(
            "shopfloor_predictions_total", "inputs predicted", ["model_name"], registry=self.registry
        )
        self.alarms = Counter(
            "shopfloor_alarms_total", "alarms raised", ["model_name", "output"], registry=self.registry
        )
        self.batch_size = Histogram(
            "shopfloor_model_batch_size",
            "Rows (windows or images) per model call",
            ["model_name"],
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
        )
        self.score = Histogram(
            "shopfloor_prediction_score",
            "Served scores (failure probability, anomaly score or defect score), one per window or image",
            ["model_name", "output"],
            registry=self.registry,
            buckets=tuple(round(step / 20, 2) for step in range(1, 21)) + (1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0),
        )
        self.ready = Gauge("shopfloor_model_ready", "1 while a model is loaded", ["model_name"], registry=self.registry)
        self.info = Gauge(
            "shopfloor_model_info",
            "what is served",
            ["model_name", "model_version", "model_class", "runtime"],
            registry=self.registry,
        )

    def observe(self, model: str, protocol: str, route: str, code: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(model, protocol, route, str(code)).inc()
        if code >= 400:
            self.errors.labels(model, protocol, route, str(code)).inc()
        self.duration.labels(model, protocol, route).observe(seconds)

    def served(self, model: ServedEdgeModel) -> None:
        """Say which version answers."""
        self.info.clear()
        self.info.labels(model.name, model.version, model.kind, f"litert-{model.variant}").set(1)
        self.ready.labels(model.name).set(1)


class EdgeServer:
    """Answers predictions over HTTP with whatever model ``current()`` returns at the time of the request."""

    def __init__(self, name: str, current: Any, metrics: EdgeMetrics, payload_logger: Any = None):
        self.name, self.current, self.metrics, self.payload_logger = name, current, metrics, payload_logger
        metrics.registry.register(PayloadLogCollector(name, payload_logger))

    def predict(self, protocol: str, document: Any) -> tuple[int, dict]:
        """Decode, score and answer one request of ``protocol`` (``v1`` or ``v2``)."""
        model: ServedEdgeModel | None = self.current()
        if model is None:
            return 503, {"error": f"model {self.name}: not loaded yet"}
        request_id = uuid.uuid4().hex
        if protocol == "v2":
            body = v2_body(document)
            request_id = body.id
            inputs = model.decode_v2(body)
        else:
            inputs = model.decode_v1(document)
        arrays = model.outputs(inputs)
        self.metrics.predictions.labels(self.name).inc(len(inputs))
        self.metrics.batch_size.labels(self.name).observe(len(inputs))
        score = self.metrics.score.labels(self.name, model.score_output)
        for value in np.asarray(arrays[model.score_output], dtype=np.float64).reshape(-1):
            score.observe(float(value))
        self.metrics.alarms.labels(self.name, model.alarm_output).inc(int(arrays[model.alarm_output].sum()))
        if self.payload_logger is not None:
            outputs = {name: json_values(values) for name, values in arrays.items()}
            self.payload_logger.record(request_id, protocol, model.logged_inputs(inputs), outputs, model.version)
        return 200, model.v2_answer(arrays, request_id) if protocol == "v2" else model.v1_answer(arrays)

    def payload_log(self) -> tuple[int, dict]:
        """The payload logger's counters, as the full server's ``/v1/payload-log`` answers them."""
        if self.payload_logger is None:
            return 200, {"enabled": False}
        return 200, {"enabled": True, **self.payload_logger.stats}

    def metadata(self) -> tuple[int, dict]:
        """V2 model metadata."""
        model = self.current()
        if model is None:
            return 503, {"error": f"model {self.name}: not loaded yet"}
        return 200, {
            "name": self.name,
            "versions": [model.version],
            "platform": f"litert-{model.variant}",
            "inputs": model.input_types(),
            "outputs": model.output_types(),
        }

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        """An HTTP server bound to ``host:port`` (port 0: a free one); call ``serve_forever`` on it."""
        handler = type("EdgeHandler", (_Handler,), {"edge": self})
        server = ThreadingHTTPServer((host, port), handler)
        server.daemon_threads = True
        return server


class _Handler(BaseHTTPRequestHandler):
    """Routes one HTTP request to the edge server."""

    edge: EdgeServer
    protocol_version = "HTTP/1.1"
    # headers and body leave in two writes: with Nagle on, a kept-alive client's delayed ACK held every answer
    # ~40 ms (measured by bench/edge.py)
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Access lines go to the debug log, not stderr."""
        _LOGGER.debug(format, *args)

    def _send(self, code: int, body: dict | bytes, content_type: str = "application/json") -> None:
        """Write one answer."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[str, str, str]:
        """The (model name, protocol, route) labels of this request's path."""
        path = self.path.split("?", 1)[0]
        if match := _V1.match(path):
            return match["name"], "v1", "predict" if match["verb"] else "models"
        if match := _V2.match(path):
            rest = match["rest"] or ""
            return match["name"], "v2", {"/infer": "predict", "/ready": "ready", "": "metadata"}[rest]
        if path.startswith("/v2/health/"):
            return "", "v2", "health"
        if path == "/v1/payload-log":
            return "", "none", "payload_log"
        return "", "none", "other"

    def _answer(self, method: str) -> None:
        """Answer, then count the request in the metrics."""
        started = time.perf_counter()
        name, protocol, route = self._route()
        code, body = self._handle(method, name, protocol, route)
        self._send(code, body)
        known = name if name == self.edge.name else "unknown"
        self.edge.metrics.observe(known, protocol, route, code, time.perf_counter() - started)

    def _handle(self, method: str, name: str, protocol: str, route: str) -> tuple[int, dict]:
        """The status and JSON answer of one request."""
        edge = self.edge
        if route == "payload_log" and method == "GET":
            return edge.payload_log()
        if route == "other" or (route not in ("health", "payload_log") and name != edge.name):
            return 404, {"error": f"{self.path}: no such model or route (this runtime serves {edge.name!r})"}
        ready = edge.current() is not None
        if method == "GET":
            if route == "health":
                return (200 if ready or self.path.endswith("/live") else 503), {"ready": ready, "live": True}
            if route in ("models", "ready"):
                return (200 if ready else 503), {"name": edge.name, "ready": ready}
            if route == "metadata":
                return edge.metadata()
            return 405, {"error": f"{self.path}: use POST"}
        if route != "predict":
            return 405, {"error": f"{self.path}: use GET"}
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return 400, {"error": "Content-Length: expected a number of bytes"}
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return 413, {"error": f"request body: {length} bytes, the limit is {MAX_BODY_BYTES}"}
        try:
            document = json.loads(self.rfile.read(length) or b"null")
        except (ValueError, UnicodeDecodeError):
            return 400, {"error": "request body: not JSON (expected a JSON object)"}
        try:
            return edge.predict(protocol, document)
        except InvalidRequest as exc:
            return 400, {"error": str(exc)}
        except PayloadTooLarge as exc:
            return 413, {"error": exc.reason}

    def do_GET(self) -> None:
        """GET routes, and /metrics."""
        if self.path.split("?", 1)[0] == "/metrics":
            self._send(200, generate_latest(self.edge.metrics.registry), CONTENT_TYPE_LATEST)
            return
        self._answer("GET")

    def do_POST(self) -> None:
        """POST routes."""
        self._answer("POST")
