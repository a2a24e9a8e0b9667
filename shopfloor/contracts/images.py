"""Image contracts: the manifest ingest writes, and the labelled image set every image step reads from it.

The manifest (Parquet, one row per image: ``MANIFEST_COLUMNS``) names each image by path, content hash and
label; ``load_image_set`` decodes the labelled ones into arrays and assigns each to train/validation/test by a
salted hash of its content, so the same image lands in the same split wherever it is stored.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd

from shopfloor.common.errors import DataValidationError
from shopfloor.common.images import ImageDecodeError, decode_pixels
from shopfloor.common.storage import (
    join_uri,
    read_bytes,
    sha256_hex,
)
from shopfloor.common.vision_config import ImageDataConfig, ImageSplitConfig

__all__ = [
    "ImageProblem",
    "ImageSet",
    "MANIFEST_COLUMNS",
    "decode_image",
    "load_image_manifest",
    "load_image_set",
    "split_by_hash",
]


MANIFEST_COLUMNS: tuple[str, ...] = ("path", "sha256", "label", "width", "height", "mode", "format", "bytes", "uri")
_READ_THREADS = 8


@dataclasses.dataclass(frozen=True)
class ImageProblem:
    """One invalid image or manifest entry: where it is, a reason code, and the one-line problem."""

    path: str
    reason: str
    problem: str
    source: str
    expected: str | None = None

    def error(self) -> DataValidationError:
        """The problem as the error raised under ``on_invalid: error``."""
        return DataValidationError(self.source, self.problem, expected=self.expected)

    def as_dict(self) -> dict:
        """The problem as an entry of the skip report."""
        return {"path": self.path, "reason": self.reason, "problem": self.problem, "expected": self.expected}


def load_image_manifest(uri: str) -> pd.DataFrame:
    """Read an image manifest written by :func:`write_outputs`, checking it has the expected columns."""
    try:
        frame = pd.read_parquet(io.BytesIO(read_bytes(uri)))
    except (OSError, ValueError) as exc:
        raise DataValidationError(
            uri, f"not a Parquet file ({type(exc).__name__})", expected="an image manifest"
        ) from None
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(uri, f"columns missing: {', '.join(missing)}", expected=", ".join(MANIFEST_COLUMNS))
    return frame


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """Labelled images as arrays: uint8 pixels [n, height, width, channels], class indices and their split."""

    images: np.ndarray
    labels: np.ndarray
    paths: np.ndarray
    sha256: np.ndarray
    split: np.ndarray
    classes: tuple[str, ...]
    ok_class: str

    @property
    def ok_index(self) -> int:
        """The index of the good-part class in ``classes``."""
        return self.classes.index(self.ok_class)

    @property
    def is_defect(self) -> np.ndarray:
        """1 where the image shows a defective part, 0 for a good one."""
        return (self.labels != self.ok_index).astype(np.int8)

    @property
    def content_sha256(self) -> str:
        """One hash of every (path, image hash) pair, recorded as the training data's identity."""
        order = np.argsort(self.paths)
        return sha256_hex("\n".join(f"{self.paths[i]},{self.sha256[i]}" for i in order).encode())

    def select(self, keep: np.ndarray) -> ImageSet:
        """The images ``keep`` (a mask or indices) selects, every per-image array sliced alike."""
        return dataclasses.replace(
            self,
            images=self.images[keep],
            labels=self.labels[keep],
            paths=self.paths[keep],
            sha256=self.sha256[keep],
            split=self.split[keep],
        )

    def part(self, name: str) -> ImageSet:
        """The images of one split (``train``, ``validation`` or ``test``)."""
        return self.select(self.split == name)

    def class_counts(self) -> dict[str, int]:
        """Images per class, in class order."""
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {name: int(count) for name, count in zip(self.classes, counts, strict=True)}


def split_by_hash(sha256: Sequence[str], labels: Sequence[str], config: ImageSplitConfig) -> np.ndarray:
    """Assign each image to train/validation/test: per class, ranked by a salted hash of its content.

    Stratified exactly (each class contributes its share to each split, and at least one image to each once it
    has three); deterministic for the same set of images, whatever their order, paths or storage.
    """
    split = np.empty(len(labels), dtype=object)
    by_class: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_class.setdefault(label, []).append(index)
    for members in by_class.values():
        ranked = sorted(members, key=lambda i: (hashlib.sha256(f"{config.seed}:{sha256[i]}".encode()).hexdigest(), i))
        n = len(ranked)
        n_test, n_validation = round(n * config.test_fraction), round(n * config.validation_fraction)
        if n >= 3:
            n_test, n_validation = max(n_test, 1), max(n_validation, 1)
            n_test = min(n_test, n - n_validation - 1)
        else:
            n_test, n_validation = 0, 0
        for rank, index in enumerate(ranked):
            split[index] = "test" if rank < n_test else "validation" if rank < n_test + n_validation else "train"
    return split.astype(str)


def decode_image(data: bytes, uri: str, config: ImageDataConfig) -> np.ndarray:
    """Decode one image to uint8 [height, width, channels], checking the mode and size the model expects."""
    try:
        decoded = decode_pixels(data)
    except ImageDecodeError as exc:
        raise DataValidationError(uri, exc.problem, expected="a PNG or JPEG") from None
    mode, size, pixels = decoded.mode, decoded.size, decoded.pixels
    if mode != config.color_mode:
        raise DataValidationError(uri, f"mode {mode}", field="color_mode", expected=f"mode {config.color_mode}")
    if size != tuple(config.image_size):
        width, height = config.image_size
        raise DataValidationError(
            uri, f"{size[0]}x{size[1]} pixels", field="image_size", expected=f"{width}x{height} pixels (width x height)"
        )
    return pixels.reshape(pixels.shape[0], pixels.shape[1], -1).astype(np.uint8)


def load_image_set(
    manifest: pd.DataFrame | str, data: ImageDataConfig, split: ImageSplitConfig, root: str | None = None
) -> ImageSet:
    """Read the labelled images of an ingested manifest (Parquet URI or table) into arrays, with their split.

    Unlabelled rows are left out. Files are read from ``root`` (the data folder, local or ``s3://``) joined with
    each row's ``path``, or from the row's ``uri`` without one; each must still have the sha256 ingest recorded.

    Raises:
        DataValidationError: If a label is not a configured class, a file changed since ingest, or an image has
            another mode or size than configured, or no labelled image is left.
        StorageError: If an image cannot be read.
    """
    from shopfloor.contracts.images import load_image_manifest

    source = manifest if isinstance(manifest, str) else "image manifest"
    frame = load_image_manifest(manifest) if isinstance(manifest, str) else manifest
    frame = frame[frame["label"].notna()].sort_values("path").reset_index(drop=True)
    if frame.empty:
        raise DataValidationError(source, "no labelled images", field="label", expected="at least one labelled image")
    unknown = sorted(set(frame["label"]) - set(data.classes))
    if unknown:
        raise DataValidationError(
            source, f"unknown classes {unknown}", field="label", expected=f"one of: {', '.join(data.classes)}"
        )
    uris = [join_uri(root, path) if root else uri for path, uri in zip(frame["path"], frame["uri"], strict=True)]

    def read(item: tuple[str, str]) -> np.ndarray:
        uri, digest = item
        raw = read_bytes(uri)
        if sha256_hex(raw) != digest:
            raise DataValidationError(
                uri, f"content changed since ingest (sha256 {sha256_hex(raw)[:12]}...)", expected=f"sha256 {digest}"
            )
        return decode_image(raw, uri, data)

    with concurrent.futures.ThreadPoolExecutor(_READ_THREADS) as pool:
        images = list(pool.map(read, zip(uris, frame["sha256"], strict=True)))
    return ImageSet(
        images=np.stack(images),
        labels=np.array([data.classes.index(label) for label in frame["label"]], dtype=np.int64),
        paths=frame["path"].to_numpy(dtype=str),
        sha256=frame["sha256"].to_numpy(dtype=str),
        split=split_by_hash(list(frame["sha256"]), list(frame["label"]), split),
        classes=tuple(data.classes),
        ok_class=data.ok_class,
    )
