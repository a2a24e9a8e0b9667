"""Image requests in both protocols: encoded PNG/JPEG (base64 or raw) and decoded pixels, and every bad input."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from shopfloor.serving._kserve import InferInput, InferRequest, InvalidInput
from shopfloor.serving.codec import PayloadTooLarge
from shopfloor.serving.image_codec import ImageSpec, decode_images_v1, decode_images_v2

SPEC = ImageSpec(width=32, height=24, mode="L", max_batch=4)
RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 256, (24, 32), dtype=np.uint8)


def encoded(pixels: np.ndarray = PIXELS, fmt: str = "PNG", mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    (image.convert(mode) if mode else image).save(buffer, format=fmt)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def v2(datatype: str, shape: list[int], data: list) -> InferRequest:
    return InferRequest("m", [InferInput("image", shape, datatype, data)])


def test_v1_accepts_b64_objects_bare_strings_and_pixels() -> None:
    batch = decode_images_v1(
        {"instances": [{"image_bytes": {"b64": b64(encoded())}}, b64(encoded()), PIXELS.tolist()]}, SPEC
    )
    assert batch.shape == (3, 24, 32, 1) and batch.dtype == np.float32
    for image in batch:
        np.testing.assert_array_equal(image[..., 0], PIXELS)


def test_jpeg_decodes_lossy_but_close() -> None:
    smooth = np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (24, 1))
    (image,) = decode_images_v1({"instances": [b64(encoded(smooth, "JPEG"))]}, SPEC)
    assert np.abs(image[..., 0] - smooth).mean() < 3


def test_v2_bytes_raw_or_base64_and_pixel_tensors() -> None:
    batch = decode_images_v2(v2("BYTES", [2], [b64(encoded()), encoded()]), SPEC)
    assert batch.shape == (2, 24, 32, 1)
    pixels = decode_images_v2(v2("UINT8", [1, 24, 32], PIXELS.ravel().tolist()), SPEC)
    np.testing.assert_array_equal(pixels[0, ..., 0], PIXELS)
    rgb = ImageSpec(width=32, height=24, mode="RGB", max_batch=4)
    color = decode_images_v2(v2("BYTES", [1], [b64(encoded(mode="RGB"))]), rgb)
    assert color.shape == (1, 24, 32, 3)


BAD_V1 = {
    "no instances": ({"inputs": []}, 'missing field "instances"'),
    "empty": ({"instances": []}, "expected at least one image"),
    "not base64": ({"instances": ["***"]}, "instances[0]: neither a PNG/JPEG image nor base64"),
    "truncated png": ({"instances": [b64(encoded()[:60])]}, "instances[0]: image file is truncated"),
    "wrong size": ({"instances": [b64(encoded(PIXELS[:20]))]}, "32x20 pixels, expected 32x24"),
    "wrong mode": ({"instances": [b64(encoded(mode="RGB"))]}, "colour mode RGB, expected L"),
    "bad object": ({"instances": [{"image": "x"}]}, '"image_bytes": {"b64"'),
    "pixel shape": ({"instances": [PIXELS[:3].tolist()]}, "pixels of shape [3, 32, 1], expected [24, 32, 1]"),
    "pixel range": ({"instances": [(PIXELS.astype(int) + 300).tolist()]}, "outside 0-255"),
}


@pytest.mark.parametrize("case", sorted(BAD_V1))
def test_bad_v1_images_name_the_field(case: str) -> None:
    body, message = BAD_V1[case]
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]").replace("*", r"\*")):
        decode_images_v1(body, SPEC)


def test_too_many_images_is_413() -> None:
    with pytest.raises(PayloadTooLarge, match="5 images in one request, the limit is 4"):
        decode_images_v1({"instances": [b64(encoded())] * 5}, SPEC)


def test_bad_v2_requests_name_the_field() -> None:
    with pytest.raises(InvalidInput, match="datatype FP16, expected BYTES"):
        decode_images_v2(v2("FP16", [1, 24, 32], [0.0] * 768), SPEC)
    with pytest.raises(InvalidInput, match=r"shape \[768\], expected \[n, 24, 32"):
        decode_images_v2(v2("UINT8", [768], [0] * 768), SPEC)
    with pytest.raises(InvalidInput, match=r"\(image\)\[0\]: not an image file .*expected a PNG or JPEG"):
        decode_images_v2(v2("BYTES", [1], [b64(b"\x89PNG not really")]), SPEC)
    with pytest.raises(InvalidInput, match="must be 768 numbers"):
        decode_images_v2(v2("UINT8", [1, 24, 32], [0] * 700), SPEC)
