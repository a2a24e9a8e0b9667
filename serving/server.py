"""The model server: kserve's V1/V2 data plane on a FastAPI app we build, bound where the user says.

kserve 0.21's ``ModelServer`` binds HTTP to 0.0.0.0 (and gRPC to [::]) unconditionally; a laptop or an edge PC
must not expose a model to the whole network by default. So we assemble the same app from kserve's public
pieces (model repository, data plane, V1 and V2 routes, error handlers) and run it with uvicorn on
127.0.0.1 unless ``--host`` says otherwise (the InferenceService passes ``--host 0.0.0.0`` in its pod). Added
routes: ``POST /v2/models/{name}/explain`` (explanations for V2 users), ``GET /v1/payload-log`` (what the
payload logger wrote, holds and dropped), ``GET /metrics`` (Prometheus, ``serving.metrics``; open like the health
routes) and, for image models, ``POST /v1/models/{name}/feedback`` (an
operator's verdict on an explanation). Oversized bodies and batches get HTTP 413, bodies that stall 408
(``serving.body_limits``). Writes need a bearer token with a role (``serving.auth``): feedback the operator's,
and kserve's model-repository routes (load, unload), which are mounted only with ``--enable-repository``, the
admin's.

With ``--grpc-port`` the same process also answers the Open Inference Protocol (V2) over gRPC
(``serving.grpc_server``): kserve's servicer on this app's data plane and model repository, started in the app's
lifespan (uvicorn's event loop) and bound to ``--host`` as HTTP is; off by default. At shutdown it stops first
(3 s for RPCs in flight), then the payload loggers flush.

Payload logs survive shutdown and store outages: on shutdown (SIGTERM too: uvicorn runs the app's lifespan
shutdown before it re-raises the signal) the logger gets 5 s to write what it holds, then spools the rest to
``--payload-spool`` (default ``$SHOPFLOOR_PAYLOAD_SPOOL``, else ``<tempdir>/shopfloor-payload-spool``, one
folder per model name inside), and the next start of that model sends the spool first. In the InferenceService's
pod ``/tmp`` is an ``emptyDir``: the spool survives a container restart, not the pod's deletion.

    python -m shopfloor.serving.server --model-uri PATH_OR_S3 --model-name NAME [--host 127.0.0.1] [--http-port 8080]
        [--grpc-port 8081]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Literal

import pydantic
from fastapi import Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shopfloor.serving.auth import TOKENS_FILE_ENV, Authorizer, Denied, RateLimiter
from shopfloor.serving.body_limits import DEFAULT_BODY_TIMEOUT_S, DEFAULT_MAX_BODY_BYTES, BodyLimits
from shopfloor.serving.metrics import MetricsMiddleware, ServerCollector, app_registry, timed_load
from shopfloor.serving.offload import Overloaded

__all__ = ["FeedbackBody", "build_app", "load_site_models", "load_window_model", "main", "materialize_model"]

MAX_NOTE_CHARS = 2048
_LOGGER = logging.getLogger("shopfloor.serving")


class FeedbackBody(pydantic.BaseModel):
    """An operator's verdict on an explanation, as the feedback route accepts it: typed, bounded, no paths.

    Who gives it is the bearer token's identity, so there is no operator field; the image is named by its bytes
    (hashed as ingest hashes files) or by its sha256.
    """

    model_config = pydantic.ConfigDict(extra="forbid")

    verdict: Literal["right", "wrong-region", "wrong-label"]
    image_bytes: dict[Literal["b64"], str] | None = None
    image_sha256: str | None = pydantic.Field(None, pattern=r"^[0-9a-f]{64}$")
    corrected_label: str | None = pydantic.Field(None, max_length=64)
    note: str = pydantic.Field("", max_length=MAX_NOTE_CHARS)
    request_id: str = pydantic.Field("", max_length=128, pattern=r"^[A-Za-z0-9._:-]*$")


def build_app(
    model,
    *,
    payload_logger=None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
    authorizer: Authorizer | None = None,
    enable_repository: bool = False,
    writes_per_minute: int = 30,
    grpc_port: int | None = None,
    grpc_host: str = "127.0.0.1",
):
    """A FastAPI app serving ``model`` over kserve's V1 and V2 routes plus our explain/payload-log routes.

    ``authorizer`` says who may write (none: every write is refused); ``enable_repository`` mounts kserve's
    load/unload routes for admins; ``writes_per_minute`` bounds each identity's writes; a body over
    ``max_bytes`` gets 413, one that takes longer than ``body_timeout_s`` to arrive 408. ``grpc_port`` (none: no
    gRPC) starts the OIP gRPC server on ``grpc_host`` in the app's lifespan, on the same data plane, with the
    same message limit, and the repository RPCs under the same rules (``serving.grpc_server``).
    """
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    from shopfloor.serving._kserve import (
        DataPlane,
        InferenceRequest,
        InferRequest,
        ModelRepository,
        ModelRepositoryExtension,
        errors,
        register_v1_endpoints,
        register_v2_endpoints,
    )
    from shopfloor.serving.codec import PayloadTooLarge

    repository = ModelRepository()
    repository.update(model)
    for site_model in getattr(model, "site_models", []):  # a fleet's site models: /v1/models/NAME-<site>:predict
        repository.update(site_model)
    dataplane = DataPlane(model_registry=repository)
    authorizer = authorizer or Authorizer()
    limiter = RateLimiter(writes_per_minute)
    extension = ModelRepositoryExtension(model_registry=repository)

    async def repository_load(model_name: str, authorization: str | None) -> dict:
        """Load the served model again after an unload (admin); other names are kserve's repository's."""
        who = authorizer.require(authorization, "admin")
        limiter.take(who)
        if model_name == model.name and repository.get_model(model_name) is None:
            await asyncio.to_thread(timed_load, model)
            repository.update(model)
        else:
            await extension.load(model_name)
        _LOGGER.warning("model %s loaded by %s", model_name, who.name)
        return {"name": model_name, "load": True}

    async def repository_unload(model_name: str, authorization: str | None) -> dict:
        """Unload a model (admin): it answers 503 until loaded again."""
        who = authorizer.require(authorization, "admin")
        limiter.take(who)
        await extension.unload(model_name)
        _LOGGER.warning("model %s unloaded by %s", model_name, who.name)
        return {"name": model_name, "unload": True}

    def served(name: str) -> bool:
        """Whether ``name`` is a model of this server (other names are counted as ``unknown`` in the metrics)."""
        return name == model.name or repository.get_model(name) is not None

    def model_ready() -> bool:
        """Whether the served model is loaded and ready, as ``/v2/health/ready`` answers."""
        found = repository.get_model(model.name)
        return bool(found is not None and found.ready)

    async def start_grpc(port: int):
        """The OIP gRPC server on this app's data plane, started in the running (uvicorn's) event loop."""
        from shopfloor.serving.grpc_server import Servicer, start_grpc_server

        servicer = Servicer(
            dataplane,
            extension,
            ready=model_ready,
            load=repository_load if enable_repository else None,  # else UNIMPLEMENTED, as REST's routes are absent
            unload=repository_unload if enable_repository else None,
        )
        return await start_grpc_server(servicer, grpc_host, port, known=served, max_message_bytes=max_body_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(_):
        grpc_server = await start_grpc(grpc_port) if grpc_port else None
        yield
        if grpc_server is not None:  # first: an infer still answering records to the payload logger closed below
            from shopfloor.serving.grpc_server import GRPC_GRACE_S

            await grpc_server.stop(GRPC_GRACE_S)
        model.explain_pool.executor.shutdown(wait=False, cancel_futures=True)  # an explaining process, if any
        if payload_logger is not None:  # uvicorn re-raises SIGTERM after shutdown: flush here, not after run()
            await asyncio.to_thread(payload_logger.close)  # bounded (5 s), then what is left goes to the spool
        for site_model in getattr(model, "site_models", []):
            if site_model.payload_logger is not None:
                await asyncio.to_thread(site_model.payload_logger.close)

    app = FastAPI(title="shopfloor model server", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.add_api_route("/", dataplane.live)

    async def load(model_name: str, request: Request) -> dict:
        """Load the served model again after an unload (admin); other names are kserve's repository's."""
        return await repository_load(model_name, request.headers.get("authorization"))

    async def unload(model_name: str, request: Request) -> dict:
        """Unload a model (admin): it answers 503 until loaded again."""
        return await repository_unload(model_name, request.headers.get("authorization"))

    async def server_ready() -> JSONResponse:
        """Ready only while the served model is loaded and ready (kserve's answer stays true after an unload)."""
        ready = model_ready()
        return JSONResponse(status_code=200 if ready else 503, content={"ready": ready})

    registry = app_registry(ServerCollector(model, payload_logger, model_ready))

    async def metrics() -> Response:
        """Prometheus metrics in the text format: kserve's, ours, this app's model and payload logger."""
        body = await asyncio.to_thread(generate_latest, registry)
        return Response(content=body, media_type=CONTENT_TYPE_LATEST)

    async def no_repository(rest: str) -> JSONResponse:
        return JSONResponse(status_code=404, content={"error": "the model repository routes are not enabled"})

    # registered before kserve's routes, so they answer first: kserve mounts load/unload for anyone
    if enable_repository:
        app.add_api_route("/v2/repository/models/{model_name}/load", load, methods=["POST"])
        app.add_api_route("/v2/repository/models/{model_name}/unload", unload, methods=["POST"])
    app.add_api_route("/v2/repository/{rest:path}", no_repository, methods=["GET", "POST"])
    app.add_api_route("/v2/health/ready", server_ready, methods=["GET"])
    app.add_api_route("/metrics", metrics, methods=["GET"])
    register_v1_endpoints(app, dataplane, extension)
    register_v2_endpoints(app, dataplane, extension)

    async def v2_explain(model_name: str, request: Request) -> dict:
        """Explanations for a V2 inference request body, answered in the V2 response shape."""
        if not await dataplane.model_ready(model_name, True):
            raise errors.ModelNotReady(model_name)
        try:
            body = InferenceRequest.model_validate_json(await request.body())
        except pydantic.ValidationError as exc:
            raise errors.InvalidInput(f"request body: not a V2 inference request ({exc.errors()[0]['msg']})") from None
        served = dataplane.get_model_from_registry(model_name)
        response = await served.explain(InferRequest.from_inference_request(body, model_name), dict(request.headers))
        return response.to_rest()[0]

    async def feedback(model_name: str, request: Request) -> JSONResponse:
        """An operator's verdict on an explanation (operator role), stored for the next labeling and report."""
        who = authorizer.require(request.headers.get("authorization"), "operator")
        served = dataplane.get_model_from_registry(model_name)
        if not hasattr(served, "feedback"):
            raise errors.InvalidInput(f"model {model_name} takes no feedback (only image models explain with heatmaps)")
        try:
            body = FeedbackBody.model_validate_json(await request.body())
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "request body"
            raise errors.InvalidInput(f"{where}: {first['msg']}") from None
        limiter.take(who)
        return JSONResponse(status_code=201, content=served.feedback(body.model_dump(), operator=who.name))

    async def payload_log_stats() -> dict:
        """Counts of payload records recorded, written, pending, dropped and spooled (monitoring reads the logs)."""
        return payload_logger.stats if payload_logger is not None else {"enabled": False}

    async def too_large(_, exc: PayloadTooLarge) -> JSONResponse:
        return JSONResponse(status_code=413, content={"error": exc.reason})

    async def denied(_, exc: Denied) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.retry_after_s is not None:
            headers["Retry-After"] = str(exc.retry_after_s)
        _LOGGER.warning("%d %s", exc.status, exc.reason)
        return JSONResponse(status_code=exc.status, content={"error": exc.reason}, headers=headers)

    async def overloaded(_, exc: Overloaded) -> JSONResponse:
        _LOGGER.warning("503 %s", exc.reason)
        headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse(status_code=503, content={"error": exc.reason}, headers=headers)

    async def malformed_body(_, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's 422 for a body that is not the V2 schema: a client's mistake like any other, one 400 line
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:] if part not in ("InferenceRequest", "bytes"))
        reason = f"request body{': ' + where if where else ''}: {first['msg']}"
        _LOGGER.warning("400 %s", reason)
        return JSONResponse(status_code=400, content={"error": reason})

    async def invalid_input(_, exc: errors.InvalidInput) -> JSONResponse:
        # a client's mistake: one log line, not kserve's traceback per bad request
        _LOGGER.warning("400 %s", exc.reason)
        return JSONResponse(status_code=400, content={"error": exc.reason})

    app.add_api_route("/v2/models/{model_name}/explain", v2_explain, methods=["POST"])
    app.add_api_route("/v1/payload-log", payload_log_stats, methods=["GET"])
    app.add_api_route("/v1/models/{model_name}/feedback", feedback, methods=["POST"])
    # Starlette types a handler as taking any Exception; this one is only registered for PayloadTooLarge.
    app.add_exception_handler(PayloadTooLarge, too_large)  # type: ignore[arg-type]
    app.add_exception_handler(Denied, denied)  # type: ignore[arg-type]
    app.add_exception_handler(Overloaded, overloaded)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, malformed_body)  # type: ignore[arg-type]
    for exception, handler in [
        (errors.InvalidInput, invalid_input),
        (errors.InferenceError, errors.inference_error_handler),
        (errors.ModelNotFound, errors.model_not_found_handler),
        (errors.ModelNotReady, errors.model_not_ready_handler),
        (NotImplementedError, errors.not_implemented_error_handler),
        (errors.UnsupportedProtocol, errors.unsupported_protocol_error_handler),
        (errors.ServerNotLive, errors.server_not_live_handler),
        (errors.ServerNotReady, errors.server_not_ready_handler),
        (Exception, errors.generic_exception_handler),
    ]:
        app.add_exception_handler(exception, handler)
    app.add_middleware(BodyLimits, max_bytes=max_body_bytes, timeout_s=body_timeout_s)
    app.add_middleware(MetricsMiddleware, known=served)  # added last: outermost, so it counts BodyLimits' answers
    return app


def materialize_model(model_uri: str, cache_dir: Path) -> Path:
    """A local folder holding the model: the path itself, or a download of an ``s3://`` tree."""
    from shopfloor.common.storage import is_s3_uri, read_tree

    if not is_s3_uri(model_uri):
        return Path(model_uri)
    return read_tree(model_uri, cache_dir / "model")


def load_window_model(
    model_uri: str,
    name: str,
    *,
    payload_log_uri: str = "",
    payload_spool: str | Path | None = None,
    cache_dir: Path | None = None,
    max_batch: int | None = None,
    feedback_uri: str | None = None,
    runtime: str = "keras",
):
    """Load a published model (local or s3://) into a ready window model of its type, with payload logging if asked.

    ``payload_spool`` is the local folder where payload records the store did not take by shutdown wait for the
    next start (None: they are dropped, counted and logged).
    """
    from shopfloor.common.errors import ShopfloorError
    from shopfloor.common.storage import read_json
    from shopfloor.contracts.model_artifact import BLESSING_FILE
    from shopfloor.contracts.model_store import locate_version
    from shopfloor.contracts.payload_log import PayloadLogger
    from shopfloor.serving.predictor import DEFAULT_MAX_BATCH, ImageModel, model_class

    folder = materialize_model(model_uri, cache_dir or Path(tempfile.mkdtemp(prefix="shopfloor-model-")))
    blessing = folder / BLESSING_FILE
    if blessing.is_file():
        version = read_json(blessing)["model_version"]
    else:  # an InferenceService names the version in the pod's environment; KServe's /mnt/models does not
        version = os.environ.get("SHOPFLOOR_MODEL_VERSION") or folder.name
    logger = PayloadLogger(payload_log_uri, name, version, spool_dir=payload_spool).start() if payload_log_uri else None
    served = model_class(folder)
    if runtime != "keras" and not issubclass(served, ImageModel):
        raise ShopfloorError(
            model_uri, f"{runtime}: only image models have TFLite exports", field="runtime", expected="keras"
        )
    model = served(name, folder, model_version=version, payload_logger=logger, max_batch=max_batch or DEFAULT_MAX_BATCH)
    located = locate_version(model_uri)
    if feedback_uri is None and blessing.is_file() and located:  # a published version: feedback to its store
        feedback_uri = located.store.uri
    model.feedback_uri = feedback_uri or ""
    model.runtime = runtime
    timed_load(model)
    model.site_models = load_site_models(model, payload_log_uri, payload_spool)
    return model


def load_site_models(model, payload_log_uri: str = "", payload_spool: str | Path | None = None) -> list:
    """A fleet model's site endpoints: one loaded model per site, named ``<name>-<site>`` (none for other models).

    One server holds them all (and one InferenceService on a cluster): a site answers with its own model of the
    configured strategy (``strategies/<strategy>/<site>/`` with the threshold chosen on its validation windows),
    or, under the global strategy or where a site got no model of its own, with the global model at the site's
    threshold. Each logs its payloads under its own name, so a site's served traffic can be judged on its own.
    """
    from shopfloor.contracts.model_artifact import resolve_model_dir, site_endpoints
    from shopfloor.contracts.payload_log import PayloadLogger

    loaded = []
    for endpoint in site_endpoints(model.info):
        name = f"{model.name}-{endpoint.site}"
        logger = (
            PayloadLogger(payload_log_uri, name, model.model_version, spool_dir=payload_spool).start()
            if payload_log_uri
            else None
        )
        folder = resolve_model_dir(model.model_dir) / endpoint.folder if endpoint.folder else model.model_dir
        served = type(model)(
            name, folder, model_version=model.model_version, payload_logger=logger, max_batch=model.max_batch
        )
        timed_load(served)
        if endpoint.folder is None and endpoint.threshold is not None:  # the global model at the site's threshold
            served.threshold = endpoint.threshold
        loaded.append(served)
    return loaded


def _default_payload_spool() -> str:
    """Where payload records wait between runs unless ``--payload-spool`` says: a local, writable folder."""
    return os.environ.get("SHOPFLOOR_PAYLOAD_SPOOL") or str(Path(tempfile.gettempdir(), "shopfloor-payload-spool"))


def _port(text: str) -> int:
    """A TCP port number from the command line or the environment (0: off)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


def _cannot_listen(host: str, port: int) -> str | None:
    """Why a server could not listen on ``host:port`` now (in use, not an address here), or None if it could."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host}: {exc.strerror}"
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC and uvicorn bind
            try:
                probe.bind(address)
            except OSError as exc:
                return f"cannot listen on {address[0]}:{port}: {exc.strerror}"
    return None


def _parser() -> argparse.ArgumentParser:
    """Command-line options of the server (also used by the InferenceService container)."""
    parser = argparse.ArgumentParser(prog="python -m shopfloor.serving.server", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-uri", help="published model version or model folder, a path or s3:// URI")
    source.add_argument("--model-dir", help="local model folder (KServe's storage initializer: /mnt/models)")
    parser.add_argument("--model-name", required=True, help="name in /v1/models/NAME and /v2/models/NAME")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--http-port", type=int, default=8080)
    # no $SHOPFLOOR_GRPC_PORT default: Kubernetes' service links set <SERVICE>_PORT=tcp://... in every pod of a
    # namespace with a Service of that name, which would open (or break) a port nobody asked for
    parser.add_argument(
        "--grpc-port",
        type=_port,
        default=0,
        help="also answer the Open Inference Protocol (V2) over gRPC on this port of --host (default: off)",
    )
    parser.add_argument(
        "--payload-log-uri",
        default=os.environ.get("SHOPFLOOR_PAYLOAD_LOG_URI", ""),
        help="where to write payload logs, a folder or s3:// prefix (default: off)",
    )
    parser.add_argument(
        "--payload-spool",
        default=_default_payload_spool(),
        help="local folder for payload records the store did not take by shutdown; the next start sends them "
        "(default: %(default)s; $SHOPFLOOR_PAYLOAD_SPOOL sets it)",
    )
    parser.add_argument("--max-batch", type=int, default=None, help="most windows per request (413 above)")
    parser.add_argument(
        "--runtime",
        choices=["keras", "tflite-float32", "tflite-int8"],
        default="keras",
        help="image models: answer with the Keras model or one of its TFLite edge exports",
    )
    parser.add_argument(
        "--feedback-uri",
        default=os.environ.get("SHOPFLOOR_FEEDBACK_URI"),
        help="model store operators' feedback is written to (default: the published version's store)",
    )
    parser.add_argument("--explainer", action="store_true", help="this replica is the InferenceService's explainer")
    parser.add_argument(
        "--explain-in",
        choices=["process", "thread"],
        default=None,
        help="where explanations run: a worker process of their own, so predicts never wait for them (default for "
        "a predictor), or threads of this process (default for --explainer, which only explains)",
    )
    parser.add_argument(
        "--tokens-file",
        default=os.environ.get(TOKENS_FILE_ENV),
        help="who may write: identities, roles (operator, admin) and tokens (default: nobody may)",
    )
    parser.add_argument(
        "--enable-repository", action="store_true", help="mount the model-repository load/unload routes (admin)"
    )
    parser.add_argument(
        "--body-timeout-s",
        type=float,
        default=DEFAULT_BODY_TIMEOUT_S,
        help="seconds a request body may take to arrive (408 after; default %(default)g)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Load the model and serve it until interrupted."""
    # KServe appends --model_name/--predictor_host/--http_port to an explainer container's args: not ours
    args, ignored = _parser().parse_known_args(argv)
    if ignored:
        _LOGGER.info("ignoring arguments meant for kserve's own server: %s", " ".join(ignored))
    import uvicorn

    from shopfloor.common.errors import ShopfloorError
    from shopfloor.contracts.model_store import MODEL_NAME

    if not MODEL_NAME.fullmatch(args.model_name):
        print(
            f"error: --model-name: {args.model_name!r} is not a model name (expected lowercase letters, digits and "
            "'-', at most 63)",
            file=sys.stderr,
            flush=True,
        )
        return 2
    if args.grpc_port:  # the lifespan binds it, where a port in use ends in a traceback: say it now, in one line
        problem = "the same port as --http-port" if args.grpc_port == args.http_port else None
        problem = problem or _cannot_listen(args.host, args.grpc_port)
        if problem is not None:
            print(f"error: --grpc-port {args.grpc_port}: {problem}", file=sys.stderr, flush=True)
            return 2
    try:
        authorizer = Authorizer.from_env(args.tokens_file)
        model = load_window_model(
            args.model_uri or args.model_dir,
            args.model_name,
            payload_log_uri=args.payload_log_uri,
            payload_spool=args.payload_spool,
            max_batch=args.max_batch,
            feedback_uri=args.feedback_uri,
            runtime=args.runtime,
        )
    except ShopfloorError as exc:  # one line in the pod log (or the local server's log), not a traceback
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    role = "explainer" if args.explainer else "predictor"
    if (args.explain_in or ("thread" if args.explainer else "process")) == "process":
        model.explain_in_a_process()
    sites = "".join(f", {site_model.name}" for site_model in model.site_models)
    grpc = f", gRPC (Open Inference Protocol) on {args.host}:{args.grpc_port}" if args.grpc_port else ""
    print(
        f"serving {args.model_name}{sites} ({model.model_version}) as {role}, predict by {args.runtime}, "
        f"on http://{args.host}:{args.http_port}{grpc}",
        flush=True,
    )
    app = build_app(
        model,
        payload_logger=model.payload_logger,
        authorizer=authorizer,
        enable_repository=args.enable_repository,
        body_timeout_s=args.body_timeout_s,
        grpc_port=args.grpc_port or None,
        grpc_host=args.host,
    )
    # TensorFlow and the model leave ~500k objects to the cyclic garbage collector: each full collection held the
    # event loop ~250 ms under load; frozen, they are never scanned again
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=args.host, port=args.http_port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
