"""Decoding of part images (PNG/JPEG bytes), shared by ingest, training and the model server.

One decoder, so the three places that read photos agree on what a readable image is; each turns a
``ImageDecodeError`` into its own kind of error (a reported skip, a data error, an HTTP 400).
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np

__all__ = [
    "IMAGE_STATISTICS",
    "LUMA",
    "DecodedImage",
    "ImageDecodeError",
    "decode_pixels",
    "image_statistics",
    "luminance",
]


class ImageDecodeError(ValueError):
    """The bytes are not a complete image: ``reason`` is "unreadable" or "truncated", ``problem`` says more."""

    def __init__(self, reason: str, problem: str):
        super().__init__(problem)
        self.reason = reason
        self.problem = problem


@dataclasses.dataclass(frozen=True)
class DecodedImage:
    """An image decoded in full: its format (PNG, JPEG, ...), Pillow mode, (width, height) and pixels."""

    format: str | None  # None when Pillow cannot name the format
    mode: str
    size: tuple[int, int]
    pixels: np.ndarray  # uint8 [height, width] or [height, width, channels]


def decode_pixels(data: bytes, verify: bool = False) -> DecodedImage:
    """Decode image bytes in full; ``verify`` also checks PNG chunk checksums (slower, for ingest)."""
    from PIL import Image, UnidentifiedImageError

    try:
        if verify:
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return DecodedImage(image.format, image.mode, image.size, np.asarray(image))
    except Image.DecompressionBombError:
        raise ImageDecodeError("unreadable", "image is too large to decode") from None
    except UnidentifiedImageError:
        raise ImageDecodeError("unreadable", "not an image file (cannot identify it)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "truncat" in detail.lower():
            raise ImageDecodeError("truncated", f"image file is truncated ({detail})") from None
        raise ImageDecodeError("unreadable", f"image cannot be decoded ({detail})") from None


LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601 weights of R, G, B


def luminance(pixels: np.ndarray) -> np.ndarray:
    """Per-pixel luminance (0-255) of grayscale [..., 1] or [h, w] pixels, or RGB [..., 3] ones."""
    values = np.asarray(pixels, dtype=np.float64)
    if values.ndim >= 3 and values.shape[-1] == 3:
        return values @ LUMA
    return values.reshape(values.shape[:2]) if values.ndim == 3 else values


IMAGE_STATISTICS = ("brightness", "contrast", "sharpness")


def image_statistics(pixels: np.ndarray) -> dict[str, float]:
    """A photo's brightness and contrast (mean and std of luminance) and sharpness (variance of its Laplacian).

    What ingest profiles and the model server logs of each photo, so drift monitoring compares like with like: a
    dimmer lamp moves brightness, a dirty or defocused lens lowers sharpness (the variance-of-Laplacian focus measure,
    Pech-Pacheco et al. 2000) while the lighting may stay the same.
    """
    light = luminance(pixels)
    laplacian = 4.0 * light[1:-1, 1:-1] - light[:-2, 1:-1] - light[2:, 1:-1] - light[1:-1, :-2] - light[1:-1, 2:]
    return {
        "brightness": float(light.mean()),
        "contrast": float(light.std()),
        "sharpness": float(laplacian.var()) if laplacian.size else 0.0,
    }
