"""Request decoding and validation for image models, for the V1 and Open Inference (V2) protocols.

Pure NumPy (and Pillow to decode), shared by the full server and the edge runtime.

A camera station sends encoded images (PNG/JPEG), a notebook often sends decoded pixels; both are accepted and
end as float32 pixels ``[n, height, width, channels]`` on the 0-255 scale (rescaling is inside the model). As
for the window models, every problem is ``InvalidRequest`` (HTTP 400) or ``PayloadTooLarge`` (HTTP 413) naming the
field and what was expected: an image that does not decode, has another size or colour mode than the model was
trained on, or pixels out of range.

V1 instances: ``{"image_bytes": {"b64": "<base64 PNG/JPEG>"}}`` (the TensorFlow Serving / KServe convention), a
bare base64 string, or decoded pixels ``[height][width]`` (grayscale) or ``[height][width][channels]``.
V2: one input of datatype ``BYTES`` (one base64-encoded or raw image per element, shape ``[n]``), or of datatype
``UINT8``/``FP32``/``INT32`` with shape ``[n, height, width]`` or ``[n, height, width, channels]``.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np

from shopfloor.common.images import ImageDecodeError, decode_pixels
from shopfloor.contracts.request_codec import InvalidRequest as InvalidInput
from shopfloor.contracts.request_codec import PayloadTooLarge, printable
from shopfloor.contracts.request_codec import V2Request as InferRequest

__all__ = ["ImageSpec", "decode_image", "decode_images_v1", "decode_images_v2"]

_PIXEL_DATATYPES = ("UINT8", "INT32", "FP32", "FP64")


class ImageSpec:
    """The images a model expects: size, colour mode (L or RGB), and the largest batch it accepts."""

    def __init__(self, width: int, height: int, mode: str, max_batch: int):
        self.width = width
        self.height = height
        self.mode = mode
        self.max_batch = max_batch

    @property
    def channels(self) -> int:
        """1 for grayscale (L), 3 for RGB."""
        return 1 if self.mode == "L" else 3

    @property
    def shape_text(self) -> str:
        """The expected input in words, for error messages."""
        return f"[n <= {self.max_batch}] {self.mode} images of {self.width}x{self.height} pixels"


def _check_count(n: int, spec: ImageSpec, field: str) -> None:
    """Refuse empty and oversized batches."""
    if n < 1:  # 0, or a negative first dimension in a V2 shape
        found = "empty" if n == 0 else f"{n} images"
        raise InvalidInput(f"{field}: {found}, expected at least one image ({spec.shape_text})")
    if n > spec.max_batch:
        raise PayloadTooLarge(f"{field}: {n} images in one request, the limit is {spec.max_batch}")


def decode_image(data: bytes | str, spec: ImageSpec, where: str) -> np.ndarray:
    """One encoded image (raw or base64 bytes) as float32 pixels [height, width, channels]."""
    if not isinstance(data, bytes | str):  # a V2 BYTES element that JSON gave as a number, list or null
        raise InvalidInput(f"{where}: {type(data).__name__}, expected base64 of a PNG or JPEG image")
    raw = data.encode("ascii", "ignore") if isinstance(data, str) else data
    if not raw.startswith((b"\x89PNG", b"\xff\xd8")):  # not PNG/JPEG magic: base64 text
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{where}: neither a PNG/JPEG image nor base64 of one") from None
    try:
        decoded = decode_pixels(raw)
    except ImageDecodeError as exc:
        raise InvalidInput(f"{where}: {exc.problem}, expected a PNG or JPEG") from None
    mode, size, pixels = decoded.mode, decoded.size, decoded.pixels
    if size != (spec.width, spec.height):
        raise InvalidInput(f"{where}: {size[0]}x{size[1]} pixels, expected {spec.width}x{spec.height}")
    if mode != spec.mode:
        raise InvalidInput(f"{where}: colour mode {mode}, expected {spec.mode}")
    return pixels.reshape(spec.height, spec.width, spec.channels).astype(np.float32)


def _pixels(values: object, spec: ImageSpec, where: str) -> np.ndarray:
    """Decoded pixels (nested lists or an array) checked for shape and range, as [height, width, channels]."""
    try:
        array = np.asarray(values, dtype=np.float64)  # float32 only after the range check: 1e39 is no overflow
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past float64
        raise InvalidInput(f"{where}: pixels must be numbers 0-255 in rows of equal length") from None
    if array.ndim == 2 and spec.channels == 1:
        array = array[..., None]
    if array.shape != (spec.height, spec.width, spec.channels):
        raise InvalidInput(
            f"{where}: pixels of shape {list(array.shape)}, expected [{spec.height}, {spec.width}, {spec.channels}]"
        )
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
        raise InvalidInput(f"{where}: pixel values outside 0-255")
    return array.astype(np.float32)


def _instance(instance: object, spec: ImageSpec, where: str) -> np.ndarray:
    """One V1 instance: an encoded image (b64 object or string) or decoded pixels."""
    if isinstance(instance, dict):
        encoded = instance.get("image_bytes", instance.get("b64"))
        if isinstance(encoded, dict):
            encoded = encoded.get("b64")
        if not isinstance(encoded, str):
            raise InvalidInput(f'{where}: expected {{"image_bytes": {{"b64": "<base64 PNG or JPEG>"}}}}')
        return decode_image(encoded, spec, f"{where}.image_bytes")
    if isinstance(instance, str):
        return decode_image(instance, spec, where)
    return _pixels(instance, spec, where)


def decode_images_v1(payload: object, spec: ImageSpec) -> np.ndarray:
    """Images from a V1 ``{"instances": [...]}`` body."""
    if not isinstance(payload, dict) or "instances" not in payload:
        raise InvalidInput(
            'request body: missing field "instances" (expected {"instances": [{"image_bytes": {"b64": ...}}, ...]})'
        )
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise InvalidInput("instances: expected a list of images")
    _check_count(len(instances), spec, "instances")
    return np.stack([_instance(item, spec, f"instances[{i}]") for i, item in enumerate(instances)])


def decode_images_v2(request: InferRequest, spec: ImageSpec) -> np.ndarray:
    """Images from a V2 request: one BYTES input of encoded images, or one pixel tensor."""
    if len(request.inputs) != 1:
        names = [i.name for i in request.inputs]
        raise InvalidInput(f"inputs: {len(request.inputs)} inputs {names}, expected one input 'image'")
    tensor = request.inputs[0]
    where = f"inputs[0] ({printable(tensor.name)})"
    shape = list(tensor.shape)
    if tensor.datatype == "BYTES":
        items = list(np.asarray(tensor.data, dtype=object).ravel())
        _check_count(len(items), spec, where)
        if len(items) != int(np.prod(shape)):
            raise InvalidInput(f"{where}: {len(items)} images for shape {shape}")
        return np.stack([decode_image(item, spec, f"{where}[{i}]") for i, item in enumerate(items)])
    if tensor.datatype not in _PIXEL_DATATYPES:
        raise InvalidInput(
            f"{where}: datatype {printable(tensor.datatype)}, expected BYTES (encoded images) or UINT8 pixels"
        )
    if len(shape) not in (3, 4):
        raise InvalidInput(f"{where}: shape {shape}, expected [n, {spec.height}, {spec.width}(, {spec.channels})]")
    _check_count(shape[0], spec, where)
    try:
        pixels = np.asarray(tensor.data, dtype=np.float64).reshape(shape)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past float64, or a dimension
        raise InvalidInput(f"{where}: data must be {int(np.prod(shape))} numbers 0-255 for shape {shape}") from None
    return np.stack([_pixels(image, spec, f"{where}[{i}]") for i, image in enumerate(pixels)])
