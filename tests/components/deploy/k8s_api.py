"""A local stand-in for the Kubernetes API server, for KServe InferenceServices: real HTTP, real API semantics.

The kubernetes client talks to it exactly as to a cluster (``Configuration(host=server.url)``). It keeps
objects the way the API server does (resourceVersion from one global counter, ``metadata.generation`` bumped
only by spec changes, uid and creationTimestamp set on create, ``status`` ignored on writes to the main
resource), and answers with ``Status`` bodies: 404 NotFound, 409 AlreadyExists on a duplicate create, 409
Conflict on a write carrying a stale resourceVersion, 415 for patch types a custom resource does not take.

A scripted *controller* stands in for KServe: each write hands the object the next ``Policy`` from
``plan(...)`` (default: ready after one read), and each later GET of it counts as one reconcile step after
which the policy may write a status (Ready True/False/Unknown, ``observedGeneration``, ``url``).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import http.server
import json
import threading
import urllib.parse
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import kubernetes.client

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
KIND = "InferenceService"
_PREFIX = ("apis", GROUP, VERSION, "namespaces")

# A policy gets (reads since the last write, the stored object) and returns the status to set, or None.
Policy = Callable[[int, dict[str, Any]], dict[str, Any] | None]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    condition = {"type": kind, "status": status, "lastTransitionTime": _now()}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _urls(obj: dict[str, Any]) -> dict[str, Any]:
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    return {
        "url": f"http://{name}.{namespace}.example.com",
        "address": {"url": f"http://{name}-predictor.{namespace}.svc.cluster.local"},
    }


def becomes_ready_after(reads: int = 1) -> Policy:
    """The new generation becomes Ready after ``reads`` GETs; before that the status stays as it was (stale)."""

    def policy(count: int, obj: dict[str, Any]) -> dict[str, Any] | None:
        if count < reads:
            return None
        conditions = [_condition("PredictorReady", "True"), _condition("Ready", "True")]
        if obj["spec"].get("explainer"):
            conditions.insert(0, _condition("ExplainerReady", "True"))
        return {"observedGeneration": obj["metadata"]["generation"], "conditions": conditions, **_urls(obj)}

    return policy


def fails_with(reason: str, message: str = "the revision failed", after: int = 1) -> Policy:
    """After ``after`` GETs the new generation is reported Ready False with ``reason`` (e.g. RevisionFailed)."""

    def policy(count: int, obj: dict[str, Any]) -> dict[str, Any] | None:
        if count < after:
            return None
        previous = obj.get("status") or {}
        conditions = [
            _condition("PredictorReady", "False", reason, message),
            _condition("Ready", "False", reason, message),
        ]
        status = {"observedGeneration": obj["metadata"]["generation"], "conditions": conditions}
        if "url" in previous:  # the old revision keeps answering at its URL
            status.update(url=previous["url"], address=previous.get("address"))
        return status

    return policy


def never_ready() -> Policy:
    """The new generation is observed but never becomes Ready (Knative waiting for a revision)."""

    def policy(count: int, obj: dict[str, Any]) -> dict[str, Any] | None:
        message = f"Configuration {obj['metadata']['name']}-predictor is waiting for a Revision to become ready."
        condition = _condition("Ready", "Unknown", "RevisionMissing", message)
        return {"observedGeneration": obj["metadata"]["generation"], "conditions": [condition]}

    return policy


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies ``application/merge-patch+json``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"bad JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def apply_json_patch(document: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, test), as for ``application/json-patch+json``."""
    document = copy.deepcopy(document)
    for operation in operations:
        *parents, last = _pointer(operation["path"])
        node = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        op = operation["op"]
        if op == "test":
            current = node[int(last)] if isinstance(node, list) else node[last]
            if current != operation["value"]:
                raise ValueError(f"test failed at {operation['path']}")
        elif op == "remove":
            del node[int(last) if isinstance(node, list) else last]
        elif op in ("add", "replace"):
            if isinstance(node, list):
                index = len(node) if last == "-" else int(last)
                if op == "add":
                    node.insert(index, operation["value"])
                else:
                    node[index] = operation["value"]
            else:
                if op == "replace" and last not in node:
                    raise ValueError(f"nothing to replace at {operation['path']}")
                node[last] = operation["value"]
        else:
            raise ValueError(f"unsupported op {op!r}")
    return document


@dataclasses.dataclass
class RecordedRequest:
    """One request as the server saw it, with the status code it answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any
    status: int = 0


@dataclasses.dataclass
class _Stored:
    obj: dict[str, Any]
    policy: Policy
    reads: int = 0


class _ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, name: str = ""):
        super().__init__(message)
        self.code, self.reason, self.message, self.name = code, reason, message, name

    def body(self) -> dict[str, Any]:
        details = {"group": GROUP, "kind": PLURAL}
        if self.name:
            details["name"] = self.name
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": details,
            "code": self.code,
        }


def _not_found(name: str) -> _ApiError:
    return _ApiError(404, "NotFound", f'{PLURAL}.{GROUP} "{name}" not found', name)


def _conflict(name: str) -> _ApiError:
    return _ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {PLURAL}.{GROUP} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        name,
    )


class FakeKubernetesApi:
    """The stand-in server; use as a context manager, point a client at ``configuration()``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str], _Stored] = {}
        self._resource_version = 1000
        self._plan: deque[Policy] = deque()
        self._conflict_next_patch = False
        self.default_policy: Policy = becomes_ready_after(1)
        self.requests: list[RecordedRequest] = []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-k8s-api", daemon=True
        )

    # -- test controls ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the server (``http://127.0.0.1:<port>``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def configuration(self) -> kubernetes.client.Configuration:
        """A kubernetes client configuration pointing at this server."""
        return kubernetes.client.Configuration(host=self.url)

    def plan(self, *policies: Policy) -> None:
        """The controller policies the next writes get, in order (then ``default_policy``)."""
        with self._lock:
            self._plan.extend(policies)

    def conflict_on_next_patch(self) -> None:
        """Just before the next PATCH, another writer updates the object (so a resourceVersion read before is stale)."""
        with self._lock:
            self._conflict_next_patch = True

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object (a copy), or None."""
        with self._lock:
            stored = self._objects.get((namespace, name))
            return copy.deepcopy(stored.obj) if stored else None

    def methods(self) -> list[str]:
        """The HTTP methods received so far, in order."""
        return [request.method for request in self.requests]

    def start(self) -> FakeKubernetesApi:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeKubernetesApi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- API semantics ---------------------------------------------------------------------------------------

    def _next_resource_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def _written(self, key: tuple[str, str], obj: dict[str, Any]) -> None:
        """A write happened: the controller starts over with the next planned policy."""
        policy = self._plan.popleft() if self._plan else self.default_policy
        self._objects[key] = _Stored(obj, policy)

    def _other_writer(self, stored: _Stored) -> None:
        annotations = stored.obj["metadata"].setdefault("annotations", {})
        annotations["example.com/touched-by"] = f"other-writer-{self._resource_version}"
        stored.obj["metadata"]["resourceVersion"] = self._next_resource_version()

    def _read(self, namespace: str, name: str) -> dict[str, Any]:
        stored = self._objects.get((namespace, name))
        if stored is None:
            raise _not_found(name)
        stored.reads += 1
        status = stored.policy(stored.reads, copy.deepcopy(stored.obj))
        if status is not None and status != stored.obj.get("status"):
            stored.obj["status"] = status
            stored.obj["metadata"]["resourceVersion"] = self._next_resource_version()
        return copy.deepcopy(stored.obj)

    def _create(self, namespace: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or body.get("kind") != KIND or body.get("apiVersion") != f"{GROUP}/{VERSION}":
            raise _ApiError(400, "BadRequest", f"the body must be a {GROUP}/{VERSION} {KIND}")
        metadata = body.get("metadata") or {}
        name = metadata.get("name")
        if not name:
            raise _ApiError(422, "Invalid", f"{KIND}.{GROUP} is invalid: metadata.name: Required value")
        if metadata.get("namespace", namespace) != namespace:
            raise _ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        if metadata.get("resourceVersion"):
            raise _ApiError(400, "BadRequest", "resourceVersion should not be set on objects to be created")
        if (namespace, name) in self._objects:
            raise _ApiError(409, "AlreadyExists", f'{PLURAL}.{GROUP} "{name}" already exists', name)
        obj = copy.deepcopy(body)
        obj.pop("status", None)
        obj["metadata"] = {
            **metadata,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "creationTimestamp": _now(),
            "generation": 1,
            "resourceVersion": self._next_resource_version(),
        }
        self._written((namespace, name), obj)
        return copy.deepcopy(obj)

    def _update(self, namespace: str, name: str, new: dict[str, Any]) -> dict[str, Any]:
        """Store ``new`` over the object as an update does: optimistic concurrency, generation, no status."""
        stored = self._objects[(namespace, name)]
        old = stored.obj
        sent_version = (new.get("metadata") or {}).get("resourceVersion")
        if sent_version != old["metadata"]["resourceVersion"]:
            raise _conflict(name)
        new = copy.deepcopy(new)
        metadata = new.setdefault("metadata", {})
        if metadata.get("name", name) != name:
            raise _ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
        for key in ("name", "namespace", "uid", "creationTimestamp", "generation", "resourceVersion"):
            metadata[key] = old["metadata"][key]
        new["status"] = old.get("status")
        if new["status"] is None:
            new.pop("status")
        if new == old:  # a no-op write changes nothing, not even the resourceVersion
            return copy.deepcopy(old)
        if new.get("spec") != old.get("spec"):
            metadata["generation"] = old["metadata"]["generation"] + 1
        metadata["resourceVersion"] = self._next_resource_version()
        self._written((namespace, name), new)
        return copy.deepcopy(new)

    def _patch(self, namespace: str, name: str, content_type: str, body: Any) -> dict[str, Any]:
        stored = self._objects.get((namespace, name))
        if stored is None:
            raise _not_found(name)
        if self._conflict_next_patch:
            self._conflict_next_patch = False
            self._other_writer(stored)
        if content_type == "application/merge-patch+json" and isinstance(body, dict):
            patched = apply_merge_patch(stored.obj, body)
        elif content_type == "application/json-patch+json" and isinstance(body, list):
            try:
                patched = apply_json_patch(stored.obj, body)
            except (KeyError, IndexError, ValueError, TypeError) as error:
                raise _ApiError(
                    422, "Invalid", f"the server rejected our request due to an error in our request: {error}"
                ) from None
        else:
            raise _ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"application/json-patch+json, application/merge-patch+json (got {content_type})",
            )
        return self._update(namespace, name, patched)

    def _replace(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        if (namespace, name) not in self._objects:
            raise _not_found(name)
        if not isinstance(body, dict) or not (body.get("metadata") or {}).get("resourceVersion"):
            raise _ApiError(
                422,
                "Invalid",
                f'{KIND}.{GROUP} "{name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
                "must be specified for an update",
            )
        return self._update(namespace, name, body)

    def _delete(self, namespace: str, name: str) -> dict[str, Any]:
        stored = self._objects.pop((namespace, name), None)
        if stored is None:
            raise _not_found(name)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": GROUP, "kind": PLURAL, "uid": stored.obj["metadata"]["uid"]},
        }

    def _list(self, namespace: str) -> dict[str, Any]:
        items = [self._read(ns, name) for (ns, name) in sorted(self._objects) if ns == namespace]
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": f"{KIND}List",
            "metadata": {"resourceVersion": str(self._resource_version)},
            "items": items,
        }

    def handle(self, method: str, path: str, content_type: str, body: Any) -> tuple[int, dict[str, Any]]:
        """Route one request; returns (status code, JSON body)."""
        parts = tuple(part for part in path.split("/") if part)
        with self._lock:
            try:
                if parts[:4] != _PREFIX or len(parts) not in (6, 7) or parts[5] != PLURAL:
                    raise _ApiError(404, "NotFound", "the server could not find the requested resource")
                namespace = parts[4]
                if len(parts) == 6:
                    if method == "GET":
                        return 200, self._list(namespace)
                    if method == "POST":
                        return 201, self._create(namespace, body)
                else:
                    name = parts[6]
                    if method == "GET":
                        return 200, self._read(namespace, name)
                    if method == "PATCH":
                        return 200, self._patch(namespace, name, content_type, body)
                    if method == "PUT":
                        return 200, self._replace(namespace, name, body)
                    if method == "DELETE":
                        return 200, self._delete(namespace, name)
                raise _ApiError(405, "MethodNotAllowed", f"the server does not allow this method ({method})")
            except _ApiError as error:
                return error.code, error.body()

    def _handler_class(self) -> type[http.server.BaseHTTPRequestHandler]:
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes; no 40 ms delayed-ACK stall

            def _serve(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    code, payload, body = 400, _ApiError(400, "BadRequest", "invalid JSON").body(), raw
                else:
                    code, payload = api.handle(self.command, url.path, content_type, body)
                with api._lock:
                    api.requests.append(
                        RecordedRequest(
                            self.command, url.path, urllib.parse.parse_qs(url.query), content_type, body, code
                        )
                    )
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
