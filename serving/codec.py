"""Request decoding for the window models in kserve's terms: the shared codec, its errors as ``InvalidInput``.

The decoding itself is :mod:`shopfloor.contracts.request_codec` (pure NumPy, also what the edge runtime uses);
here a refused request becomes kserve's ``InvalidInput`` (HTTP 400) with the same message.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shopfloor.contracts import request_codec as _codec
from shopfloor.contracts.request_codec import InvalidRequest, PayloadTooLarge, WindowSpec, finite_or_none, printable
from shopfloor.serving._kserve import InferRequest, InvalidInput

__all__ = ["PayloadTooLarge", "WindowSpec", "decode_v1", "decode_v2", "finite_or_none", "printable"]


def decode_v1(payload: Any, spec: WindowSpec) -> np.ndarray:
    """Windows from a V1 ``{"instances": [...]}`` body (``InvalidInput`` naming the field when refused)."""
    try:
        return _codec.decode_v1(payload, spec)
    except InvalidRequest as exc:
        raise InvalidInput(str(exc)) from None


def decode_v2(request: InferRequest, spec: WindowSpec) -> np.ndarray:
    """Windows from a V2 request with one FP32/FP64 input [n, window, features] (``InvalidInput`` when refused)."""
    try:
        return _codec.decode_v2(request, spec)
    except InvalidRequest as exc:
        raise InvalidInput(str(exc)) from None
