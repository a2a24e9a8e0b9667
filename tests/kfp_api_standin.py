"""A stand-in for the Kubeflow Pipelines API server (v2beta1 REST), for the real kfp.Client to talk to.

It answers the routes kfp.Client uses to find pipelines and experiments, create runs and recurring runs, and read
a run back; it validates every request body against KFP's own API models (the ``kfp-server-api`` package: a key
that the model does not define, or a value of the wrong JSON type, is a 400), and, when a token is set, refuses a
request without ``Authorization: Bearer <token>`` (401) as multi-user KFP does. What it received is kept for the
test to read. Runs finish at once with the state the test sets.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import kfp_server_api

_JSON_TYPES = {"str": str, "bool": bool, "int": int, "float": (int, float), "object": object}


def validation_errors(value: object, type_name: str, where: str = "body") -> list[str]:
    """Where ``value`` does not fit the kfp-server-api model or type ``type_name`` (``V2beta1Run``, ``str``...)."""
    if type_name.startswith("list["):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [e for i, item in enumerate(value) for e in validation_errors(item, type_name[5:-1], f"{where}[{i}]")]
    if type_name.startswith("dict("):
        inner = type_name[5:-1].split(", ", 1)[1]
        if not isinstance(value, dict):
            return [f"{where}: expected an object"]
        return [e for k, v in value.items() for e in validation_errors(v, inner, f"{where}.{k}")]
    if type_name == "str" and isinstance(value, int) and not isinstance(value, bool):
        return []  # the models type int64 fields as strings; the server's protojson parser takes numbers too
    if type_name in _JSON_TYPES:
        return [] if isinstance(value, _JSON_TYPES[type_name]) else [f"{where}: expected {type_name}"]
    if type_name == "datetime":
        return [] if isinstance(value, str) else [f"{where}: expected a timestamp"]
    model = getattr(kfp_server_api.models, type_name)
    if not model.openapi_types:  # an enum: a string of its allowed values
        allowed = {v for k, v in vars(model).items() if k.isupper()}
        return [] if value in allowed else [f"{where}: {value!r} is not one of {sorted(allowed)}"]
    if not isinstance(value, dict):
        return [f"{where}: expected an object ({type_name})"]
    by_json_name = {json_name: attribute for attribute, json_name in model.attribute_map.items()}
    errors = []
    for key, item in value.items():
        if key not in by_json_name:
            errors.append(f"{where}.{key}: not a field of {type_name}")
        elif item is not None:
            errors += validation_errors(item, model.openapi_types[by_json_name[key]], f"{where}.{key}")
    return errors


class KfpApiState:
    """What the stand-in knows (registered pipelines, experiments) and what it received."""

    def __init__(self, token: str | None = None):
        self.token = token
        registered = {"predictive-maintenance": ("pipe-1", ["ver-old", "ver-new"])}
        self.pipelines: dict[str, tuple[str, list[str]]] = registered
        self.experiments: dict[str, dict] = {}
        self.runs: list[dict] = []
        self.recurring_runs: list[dict] = []
        self.authorizations: list[str | None] = []
        self.run_state = "SUCCEEDED"


class _Handler(BaseHTTPRequestHandler):
    state: KfpApiState

    def log_message(self, *args) -> None:
        pass

    def _answer(self, body: dict, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        header = self.headers.get("authorization")
        self.state.authorizations.append(header)
        if self.state.token and header != f"Bearer {self.state.token}":
            self._answer({"error": "Unauthenticated", "code": 16}, 401)
            return False
        return True

    def _filter_value(self, query: dict) -> str | None:
        raw = query.get("filter", [None])[0]
        if not raw:
            return None
        predicate = json.loads(raw)["predicates"][0]
        return predicate.get("string_value") or predicate.get("stringValue")

    def do_GET(self) -> None:
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path.endswith("/healthz"):
            return self._answer({"multi_user": bool(self.state.token)})
        if not self._authorized():
            return None
        if url.path == "/apis/v2beta1/pipelines":
            name = self._filter_value(query)
            found = [
                {"pipeline_id": pid, "display_name": n} for n, (pid, _) in self.state.pipelines.items() if n == name
            ]
            return self._answer({"pipelines": found, "total_size": len(found)})
        if url.path.startswith("/apis/v2beta1/pipelines/") and url.path.endswith("/versions"):
            pipeline_id = url.path.split("/")[4]
            versions = next(v for pid, v in self.state.pipelines.values() if pid == pipeline_id)
            newest_first = [{"pipeline_version_id": v, "pipeline_id": pipeline_id} for v in reversed(versions)]
            return self._answer({"pipeline_versions": newest_first[: int(query.get("page_size", ["10"])[0])]})
        if url.path == "/apis/v2beta1/experiments":
            name = self._filter_value(query)
            found = [e for n, e in self.state.experiments.items() if n == name]
            return self._answer({"experiments": found, "total_size": len(found)})
        if url.path.startswith("/apis/v2beta1/runs/"):
            run_id = url.path.rsplit("/", 1)[1]
            run = next((r for r in self.state.runs if r["run_id"] == run_id), None)
            if run is None:
                return self._answer({"error": f"run {run_id} not found", "code": 5}, 404)
            return self._answer({**run, "state": self.state.run_state, "finished_at": "2026-11-29T12:00:00Z"})
        return self._answer({"error": f"no route {url.path}"}, 404)

    def do_POST(self) -> None:
        if not self._authorized():
            return None
        body = json.loads(self.rfile.read(int(self.headers["content-length"])) or b"{}")
        routes = {
            "/apis/v2beta1/experiments": "V2beta1Experiment",
            "/apis/v2beta1/runs": "V2beta1Run",
            "/apis/v2beta1/recurringruns": "V2beta1RecurringRun",
        }
        path = urllib.parse.urlparse(self.path).path
        if path not in routes:
            return self._answer({"error": f"no route {path}"}, 404)
        errors = validation_errors(body, routes[path])
        if errors:
            return self._answer({"error": "; ".join(errors), "code": 3}, 400)
        if path.endswith("experiments"):
            experiment = {**body, "experiment_id": f"exp-{len(self.state.experiments) + 1}"}
            self.state.experiments[body["display_name"]] = experiment
            return self._answer(experiment)
        if path.endswith("/runs"):
            run = {**body, "run_id": f"run-{len(self.state.runs) + 1}", "state": "PENDING"}
            self.state.runs.append(run)
            return self._answer(run)
        recurring = {**body, "recurring_run_id": f"rr-{len(self.state.recurring_runs) + 1}", "status": "ENABLED"}
        self.state.recurring_runs.append(recurring)
        return self._answer(recurring)


@contextmanager
def kfp_api_standin(token: str | None = None) -> Iterator[tuple[str, KfpApiState]]:
    """Serve the stand-in on a free localhost port; yields its URL and state."""
    state = KfpApiState(token)
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
