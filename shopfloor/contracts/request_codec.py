"""Request decoding and validation for the window models, for the V1 and Open Inference (V2) protocols.

Pure NumPy, shared by the full server (``shopfloor.serving.codec`` turns ``InvalidRequest`` into kserve's
``InvalidInput``) and the edge runtime, so both answer the same bodies with the same messages.
Every problem becomes ``InvalidRequest`` (HTTP 400) or ``PayloadTooLarge`` (HTTP 413) with a message that names
the field and what was expected, never a 500. Windows are float32 [n, window, features]; ``null`` (JSON) or NaN
marks a missing reading, which the model handles like training did.

V1 body: ``{"instances": [instance, ...]}``, an instance being either ``[[r_1 ... r_F] x window]`` (rows of
readings in feature order) or ``{feature: [window values], ...}``.
V2 body: one input (named ``window`` by convention) of datatype FP32/FP64, shape ``[n, window, features]``.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

__all__ = [
    "InvalidRequest",
    "PayloadTooLarge",
    "V2Request",
    "V2Tensor",
    "WindowSpec",
    "decode_v1",
    "decode_v2",
    "finite_or_none",
    "printable",
]


class InvalidRequest(ValueError):
    """A request that does not fit the model, answered with HTTP 400; the message names the field."""


InvalidInput = InvalidRequest  # the name the decoders below raise (kserve's, in the full server's words)


class V2Tensor(Protocol):
    """One V2 input tensor as a decoder reads it (kserve's ``InferInput`` or the edge runtime's)."""

    name: str
    datatype: str
    shape: Sequence[int]
    data: Any


class V2Request(Protocol):
    """A V2 inference request as a decoder reads it: its input tensors."""

    @property
    def inputs(self) -> Sequence[Any]:
        """The request's input tensors (``V2Tensor``-like)."""
        ...


InferRequest = V2Request


class PayloadTooLarge(Exception):
    """More instances (or bytes) than the server accepts in one request; answered with HTTP 413."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def printable(text: object) -> str:
    """Text from a request (a tensor's name or datatype) for a one-line message: line breaks and the like escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


class WindowSpec:
    """The input a model expects: window length, feature names, and the largest batch it accepts."""

    def __init__(self, window: int, features: list[str], max_batch: int):
        self.window = window
        self.features = list(features)
        self.max_batch = max_batch

    @property
    def shape_text(self) -> str:
        """The expected shape in words, for error messages."""
        return f"[n <= {self.max_batch}, {self.window} readings, {len(self.features)} features]"


def _check_batch(n: int, spec: WindowSpec, field: str) -> None:
    """Refuse empty and oversized batches."""
    if n < 1:  # 0, or a negative first dimension in a V2 shape
        found = "empty" if n == 0 else f"{n} windows"
        raise InvalidInput(f"{field}: {found}, expected at least one window of shape {spec.shape_text}")
    if n > spec.max_batch:
        raise PayloadTooLarge(f"{field}: {n} windows in one request, the limit is {spec.max_batch}")


_BEYOND_FLOAT32 = "is beyond float32 (expected a finite reading within +-3.4e38, or null for a missing one)"


def _reading(value: object, where: str) -> float:
    """One reading as float; None is a missing reading (NaN)."""
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where}: {value!r} is not a number (expected a number or null for a missing reading)")
    try:
        return float(value)
    except OverflowError:  # an integer past float64: JSON numbers have any length
        raise InvalidInput(f"{where}: an integer that {_BEYOND_FLOAT32}") from None


def _instance_rows(instance: object, spec: WindowSpec, where: str) -> list[list[float]]:
    """One V1 instance as window rows of readings."""
    if isinstance(instance, dict):
        unknown = sorted(set(instance) - set(spec.features))
        if unknown:
            raise InvalidInput(f"{where}: unknown feature {unknown[0]!r} (expected features {spec.features})")
        missing = [f for f in spec.features if f not in instance]
        if missing:
            raise InvalidInput(
                f"{where}: missing feature {missing[0]!r} (expected all of {spec.features}; "
                "use null for a missing reading)"
            )
        columns = []
        for feature in spec.features:
            values = instance[feature]
            if not isinstance(values, list) or len(values) != spec.window:
                raise InvalidInput(f"{where}.{feature}: expected a list of {spec.window} readings")
            columns.append([_reading(v, f"{where}.{feature}[{t}]") for t, v in enumerate(values)])
        return [list(row) for row in zip(*columns, strict=True)]
    if not isinstance(instance, list) or len(instance) != spec.window:
        got = f"{len(instance)} rows" if isinstance(instance, list) else type(instance).__name__
        raise InvalidInput(
            f"{where}: {got}, expected {spec.window} rows of {len(spec.features)} readings "
            f"({', '.join(spec.features)}) or an object of feature lists"
        )
    rows = []
    for t, row in enumerate(instance):
        if not isinstance(row, list) or len(row) != len(spec.features):
            raise InvalidInput(f"{where}[{t}]: expected {len(spec.features)} readings ({', '.join(spec.features)})")
        rows.append([_reading(v, f"{where}[{t}][{f}]") for f, v in enumerate(row)])
    return rows


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _is_number(value: object) -> bool:
    """A real number that is not a boolean (``true`` is not 1.0 in FP32 data)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _finite_readings(raw: np.ndarray, name_of: Callable[[int], str]) -> np.ndarray:
    """The readings as float32, refusing those float32 cannot hold (|x| > 3.4e38, inf); NaN stays missing.

    ``raw`` is the float64 view of the request's numbers (where 1e39 is still 1e39), ``name_of`` names a flat index.
    """
    beyond = np.flatnonzero(np.abs(np.nan_to_num(raw, nan=0.0)) > _FLOAT32_MAX)
    if beyond.size:
        index = int(beyond[0])
        raise InvalidInput(f"{name_of(index)}: {raw.ravel()[index]:g} {_BEYOND_FLOAT32}")
    return raw.astype(np.float32)


def decode_v1(payload: object, spec: WindowSpec) -> np.ndarray:
    """Windows from a V1 ``{"instances": [...]}`` body."""
    if not isinstance(payload, dict) or "instances" not in payload:
        raise InvalidInput(
            'request body: missing field "instances" (expected {"instances": [window, ...]} with '
            f"each window {spec.window} rows of {len(spec.features)} readings)"
        )
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise InvalidInput("instances: expected a list of windows")
    _check_batch(len(instances), spec, "instances")
    fast = _rectangular_numbers(instances, spec)
    raw = (
        fast
        if fast is not None
        else np.asarray(
            [_instance_rows(inst, spec, f"instances[{i}]") for i, inst in enumerate(instances)], dtype=np.float64
        )
    )
    n_features = len(spec.features)

    def name_of(index: int) -> str:
        window, rest = divmod(index, spec.window * n_features)
        row, feature = divmod(rest, n_features)
        return f"instances[{window}][{row}][{feature}] ({spec.features[feature]})"

    return _finite_readings(raw, name_of)


def _rectangular_numbers(instances: list, spec: WindowSpec) -> np.ndarray | None:
    """The common case in one vectorized step: row-form windows of numbers and nulls.

    None sends the request through the per-reading checks, which name the first bad field.
    """
    try:
        cells = np.array(instances, dtype=object)
    except ValueError:  # ragged lists
        return None
    if cells.shape != (len(instances), spec.window, len(spec.features)):
        return None
    if not set(map(type, cells.ravel())) <= {float, int, type(None)}:
        return None
    try:
        return np.where(cells == None, np.nan, cells).astype(np.float64)  # noqa: E711 - elementwise on an array
    except OverflowError:  # an integer past float64: the per-reading checks name it
        return None


def decode_v2(request: InferRequest, spec: WindowSpec) -> np.ndarray:
    """Windows from a V2 inference request with one FP32/FP64 input of shape [n, window, features]."""
    if len(request.inputs) != 1:
        names = [i.name for i in request.inputs]
        raise InvalidInput(
            f"inputs: {len(request.inputs)} inputs {names}, expected one input 'window' of shape {spec.shape_text}"
        )
    tensor = request.inputs[0]
    where = f"inputs[0] ({printable(tensor.name)})"
    if tensor.datatype not in ("FP32", "FP64"):
        raise InvalidInput(f"{where}: datatype {printable(tensor.datatype)}, expected FP32 or FP64")
    shape = list(tensor.shape)
    if len(shape) != 3 or shape[1:] != [spec.window, len(spec.features)]:
        raise InvalidInput(f"{where}: shape {shape}, expected {spec.shape_text}")
    _check_batch(shape[0], spec, where)
    flat = np.asarray(tensor.data, dtype=object).ravel()
    odd = next((i for i, v in enumerate(flat) if v is not None and not _is_number(v)), None)
    if odd is not None:
        raise InvalidInput(
            f"{where}: data[{odd}] is {flat[odd]!r}, not a number "
            f"({tensor.datatype} data are numbers; NaN or null for missing)"
        )
    try:
        values = np.array([math.nan if v is None else v for v in flat], dtype=np.float64)
    except OverflowError:  # an integer past float64 (JSON numbers have any length): name the first
        huge = next(i for i, v in enumerate(flat) if isinstance(v, int) and abs(v) > sys.float_info.max)
        raise InvalidInput(f"{where}: data[{huge}]: an integer that {_BEYOND_FLOAT32}") from None
    if values.size != int(np.prod(shape)):
        raise InvalidInput(f"{where}: {values.size} values for shape {shape}")
    checked = _finite_readings(values, lambda i: f"{where}: data[{i}]")
    return checked.reshape(shape)


def finite_or_none(values: np.ndarray) -> list:
    """A JSON-safe nested list: NaN/inf become None."""
    array = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(array), array, np.array(None)).tolist()
