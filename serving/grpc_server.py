"""The Open Inference Protocol (V2) over gRPC: kserve's servicer on the REST app's data plane, bound where told.

kserve 0.21's ``GRPCServer`` listens on ``[::]`` unconditionally; ``serving.server`` starts this one instead
(``--grpc-port``) in the app's lifespan, in uvicorn's event loop, bound to ``--host``. It serves kserve's
``InferenceServicer`` (ServerLive, ServerReady, ServerMetadata, ModelReady, ModelMetadata, ModelInfer) on the
same ``DataPlane`` and model repository as the REST routes, so a ModelInfer goes through the same model
``predict``: micro-batching, thresholds, payload logging (``protocol`` ``grpc`` in the record),
site models (``NAME-<site>``). What differs from kserve's servicer:

- ``raw_input_contents`` are decoded here (little-endian values, or 4-byte-length-prefixed BYTES elements) into
  the tensor's data, so the model's V2 decoder checks them like FP32 contents or REST JSON; outputs come back as
  ``raw_output_contents`` when the request sent raw inputs, as typed contents otherwise.
- ServerReady answers like REST ``/v2/health/ready``: ready only while the served model is loaded and ready.
- RepositoryModelLoad/Unload are the REST repository routes' own code: UNIMPLEMENTED unless the server runs
  with ``--enable-repository``, and then only for an admin's bearer token in the ``authorization`` metadata
  (UNAUTHENTICATED without a known token, PERMISSION_DENIED for an operator's), rate-limited per identity.
- Errors are statuses with a one-line message and one log line (kserve's interceptor logs a traceback per bad
  request): a bad request INVALID_ARGUMENT, an unknown model NOT_FOUND, more windows than ``--max-batch``
  RESOURCE_EXHAUSTED (as gRPC answers a message over ``grpc.max_receive_message_length``, the REST body limit),
  an unloaded model or a full queue UNAVAILABLE (``retry-after`` in the trailing metadata), a bug INTERNAL.
- Every answered RPC is counted and timed in ``serving.metrics`` (``protocol="grpc"``, ``code`` the status name).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import numpy as np
from grpc import aio

from shopfloor.serving._kserve import InferRequest, InferResponse, InvalidInput, errors
from shopfloor.serving.auth import Denied
from shopfloor.serving.codec import PayloadTooLarge, printable
from shopfloor.serving.metrics import classify_grpc, record_request
from shopfloor.serving.offload import Overloaded

# isort: split
# kserve reads sys.argv when first imported: these come after serving._kserve, which imports it with an empty one
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.infer_type import deserialize_bytes_tensor

__all__ = ["GRPC_GRACE_S", "RepositoryCall", "Servicer", "start_grpc_server"]

GRPC_GRACE_S = 3.0
"""Seconds RPCs in flight get to finish at shutdown, before the payload loggers flush (then they are cancelled)."""

RepositoryCall = Callable[[str, str | None], Awaitable[dict]]
"""A repository load or unload: ``(model_name, authorization metadata) -> {"name", "load"|"unload"}``."""

_LOGGER = logging.getLogger("shopfloor.serving")
_RAW_DTYPES = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_DATATYPES = (*_RAW_DTYPES, "BYTES")


class Servicer(InferenceServicer):
    """kserve's OIP servicer on our data plane: raw inputs decoded, readiness as REST, repository as REST."""

    def __init__(
        self,
        dataplane: Any,
        extension: Any,
        *,
        ready: Callable[[], bool],
        load: RepositoryCall | None = None,
        unload: RepositoryCall | None = None,
    ):
        super().__init__(dataplane, extension)
        self._dataplane = dataplane
        self._ready = ready
        self._load = load
        self._unload = unload

    async def ServerReady(self, request: Any, context: Any) -> Any:
        """Ready only while the served model is loaded and ready, as ``GET /v2/health/ready``."""
        return pb.ServerReadyResponse(ready=self._ready())

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        """Infer through the model's ``predict``; raw outputs for raw inputs, typed contents otherwise."""
        self.validate_grpc_request(request)  # kserve's: one raw content per input, no contents beside them
        infer_request = infer_request_of(request)
        response, _ = await self._dataplane.infer(
            model_name=request.model_name, request=infer_request, headers=_headers(context)
        )
        if isinstance(response, pb.ModelInferResponse):
            return response
        if not isinstance(response, InferResponse):
            raise errors.InferenceError(f"model {request.model_name} answered no V2 response")
        if not request.raw_input_contents:  # our models answer NumPy arrays, which kserve would send raw
            for output in response.outputs:
                if isinstance(output.data, np.ndarray):
                    output.data = output.data.ravel().tolist()
        return response.to_grpc()

    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        """Load a model (admin, ``--enable-repository``), as ``POST /v2/repository/models/NAME/load``."""
        if self._load is None:
            raise NotImplementedError("the model repository is not enabled on this server (--enable-repository)")
        answer = await self._load(request.model_name, _metadata(context, "authorization"))
        return pb.RepositoryModelLoadResponse(model_name=answer["name"], isLoaded=answer["load"])

    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        """Unload a model (admin, ``--enable-repository``), as ``POST /v2/repository/models/NAME/unload``."""
        if self._unload is None:
            raise NotImplementedError("the model repository is not enabled on this server (--enable-repository)")
        answer = await self._unload(request.model_name, _metadata(context, "authorization"))
        return pb.RepositoryModelUnloadResponse(model_name=answer["name"], isUnloaded=answer["unload"])


def infer_request_of(request: Any) -> Any:
    """The ``InferRequest`` of a ``ModelInferRequest``, its raw input contents decoded into each tensor's data."""
    for index, tensor in enumerate(request.inputs):
        if tensor.datatype not in _DATATYPES:
            raise InvalidInput(
                f"inputs[{index}] ({printable(tensor.name)}): datatype {printable(tensor.datatype)}, "
                f"expected one of {', '.join(_DATATYPES)}"
            )
    infer_request = InferRequest.from_grpc(request)
    for index, (tensor, contents) in enumerate(zip(infer_request.inputs, request.raw_input_contents, strict=False)):
        tensor.data = _raw_values(bytes(contents), tensor.datatype, f"raw_input_contents[{index}] ({tensor.name})")
    return infer_request


def _raw_values(contents: bytes, datatype: str, where: str) -> list:
    """The values of one raw input: little-endian numbers, or BYTES elements each prefixed by its length."""
    where = printable(where)
    if datatype == "BYTES":
        try:
            return list(deserialize_bytes_tensor(contents))
        except struct.error:
            raise InvalidInput(
                f"{where}: not BYTES elements (each a 4-byte little-endian length, then the bytes)"
            ) from None
    dtype = _RAW_DTYPES[datatype]
    if len(contents) % dtype.itemsize:
        raise InvalidInput(
            f"{where}: {len(contents)} bytes, not a whole number of {datatype} values ({dtype.itemsize} bytes each)"
        )
    return np.frombuffer(contents, dtype=dtype).tolist()


def _headers(context: Any) -> dict[str, str]:
    """The call's metadata as headers (``x-request-id`` names the payload record, as over REST)."""
    return {item.key: item.value for item in context.invocation_metadata() or () if isinstance(item.value, str)}


def _metadata(context: Any, key: str) -> str | None:
    """One metadata value of the call (keys are lowercase in gRPC)."""
    return _headers(context).get(key)


def _status(error: Exception) -> tuple[Any, str, int | None]:
    """The gRPC status, its one-line message and a retry-after (seconds, or None) for an error of a handler."""
    retry_after = None
    if isinstance(error, errors.ModelNotFound):
        code = grpc.StatusCode.NOT_FOUND
    elif isinstance(error, InvalidInput | errors.UnsupportedProtocol):
        code = grpc.StatusCode.INVALID_ARGUMENT
    elif isinstance(error, PayloadTooLarge):
        code = grpc.StatusCode.RESOURCE_EXHAUSTED
    elif isinstance(error, errors.ModelNotReady | errors.ServerNotReady | errors.ServerNotLive):
        code = grpc.StatusCode.UNAVAILABLE
    elif isinstance(error, Overloaded):
        code, retry_after = grpc.StatusCode.UNAVAILABLE, error.retry_after_s
    elif isinstance(error, Denied):
        codes = {401: grpc.StatusCode.UNAUTHENTICATED, 429: grpc.StatusCode.RESOURCE_EXHAUSTED}
        code, retry_after = codes.get(error.status, grpc.StatusCode.PERMISSION_DENIED), error.retry_after_s
    elif isinstance(error, NotImplementedError):
        code = grpc.StatusCode.UNIMPLEMENTED
    elif isinstance(error, errors.InferenceError):
        code = grpc.StatusCode.INTERNAL
    else:
        return grpc.StatusCode.INTERNAL, "internal server error", None
    reason = getattr(error, "reason", None) or str(error) or type(error).__name__
    return code, " ".join(str(reason).split()), retry_after


class _Answers(aio.ServerInterceptor):
    """Every unary RPC: an error becomes a status with a one-line message; the answer is counted and timed."""

    def __init__(self, known: Callable[[str], bool]):
        self.known = known

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        """The method's handler, wrapped (unknown methods are left to gRPC: UNIMPLEMENTED, not counted)."""
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = str(details.method).rpartition("/")[2]
        call = handler.unary_unary
        known = self.known

        async def answer(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                return await call(request, context)
            except aio.AbortError:  # the handler set the status itself
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except asyncio.CancelledError:  # the client went away or the server stops
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as error:
                code, reason, retry_after = _status(error)
                if code == grpc.StatusCode.INTERNAL and not isinstance(error, errors.InferenceError):
                    _LOGGER.exception("grpc %s: %s", method, type(error).__name__)
                else:
                    _LOGGER.warning("grpc %s %s %s", method, code.name, reason)
                if retry_after is not None:
                    context.set_trailing_metadata((("retry-after", str(retry_after)),))
                await context.abort(code, reason)
            finally:
                name = getattr(request, "model_name", "") or getattr(request, "name", "")
                labels = classify_grpc(method, str(name), known)
                record_request(labels, code.name, time.perf_counter() - started, error=code != grpc.StatusCode.OK)

        return grpc.unary_unary_rpc_method_handler(
            answer,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


async def start_grpc_server(
    servicer: Servicer, host: str, port: int, *, known: Callable[[str], bool], max_message_bytes: int
) -> Any:
    """A started ``grpc.aio`` server for ``servicer`` on ``host:port``, in the running event loop.

    Messages over ``max_message_bytes`` are refused by gRPC itself (RESOURCE_EXHAUSTED); ``grpc.so_reuseport`` is
    off, so a port another process listens on is an error here, not a silent share of its traffic. Stop it with
    ``await server.stop(GRPC_GRACE_S)``.
    """
    server = aio.server(
        interceptors=[_Answers(known)],
        options=[("grpc.max_receive_message_length", max_message_bytes), ("grpc.so_reuseport", 0)],
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        server.add_insecure_port(address)
    except RuntimeError:  # grpc's message says to set GRPC_VERBOSITY for the cause; the cause is almost always this
        raise OSError(f"gRPC cannot listen on {address} (port in use, or not an address of this machine)") from None
    await server.start()
    return server
