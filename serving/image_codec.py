"""Request decoding for image models in kserve's terms: the shared codec, its errors as ``InvalidInput``.

The decoding itself is :mod:`shopfloor.contracts.image_request_codec` (also what the edge runtime uses).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shopfloor.contracts import image_request_codec as _codec
from shopfloor.contracts.image_request_codec import ImageSpec
from shopfloor.contracts.request_codec import InvalidRequest
from shopfloor.serving._kserve import InferRequest, InvalidInput

__all__ = ["ImageSpec", "decode_image", "decode_images_v1", "decode_images_v2"]


def decode_image(data: bytes | str, spec: ImageSpec, where: str) -> np.ndarray:
    """One encoded image (raw or base64 bytes) as float32 pixels [height, width, channels]."""
    try:
        return _codec.decode_image(data, spec, where)
    except InvalidRequest as exc:
        raise InvalidInput(str(exc)) from None


def decode_images_v1(payload: Any, spec: ImageSpec) -> np.ndarray:
    """Images from a V1 ``{"instances": [...]}`` body."""
    try:
        return _codec.decode_images_v1(payload, spec)
    except InvalidRequest as exc:
        raise InvalidInput(str(exc)) from None


def decode_images_v2(request: InferRequest, spec: ImageSpec) -> np.ndarray:
    """Images from a V2 request: one BYTES input of encoded images, or one pixel tensor."""
    try:
        return _codec.decode_images_v2(request, spec)
    except InvalidRequest as exc:
        raise InvalidInput(str(exc)) from None
