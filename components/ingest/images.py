"""Image ingest: a folder or ``s3://`` prefix of PNG/JPEG part images plus their labels, validated file by file.

Labels come from a CSV manifest (``path,label``, paths relative to the data folder) or, without one, from the
class folder each image sits in (``images/<class>/...``). Every image is decoded in full; a file that cannot be
decoded, has the wrong mode or size, carries an unknown class, is listed but absent, or repeats another image's
content (sha256) is a problem. With ``on_invalid: error`` the first problem (by path) is raised as a one-line
``DataValidationError`` naming the file and what was expected; with ``skip`` the file is left out and reported.
Images found but not in the manifest are kept unlabelled (``label`` null): experts can label them later.
Nothing is written until everything is validated.

Output layout (downstream steps and monitoring read it):
  manifest : Parquet, one row per kept image, sorted by path: path (relative to the data folder, POSIX), sha256,
             label (null = unlabelled), width, height, mode, format (PNG|JPEG), bytes, uri (where it was read)
  skipped  : JSON {"count": n, "by_reason": {reason: n}, "skipped": [{path, reason, problem, expected}, ...]}
  profile  : JSON {"images", "unlabelled", "class_counts", "defect_share", "classes", "ok_class", "image_size",
             "color_mode", "sizes", "modes", "formats", "pixels": {"channels", "mean", "std", "histogram"},
             "brightness", "contrast", "sharpness", "skipped", "ignored_files", "sources"}; pixel values are on the
             0-255 scale, brightness/contrast are per-image mean/std of luminance (ITU-R 601), sharpness the variance
             of its Laplacian (``shopfloor.common.images.image_statistics``), profiled as numeric columns
"""

from __future__ import annotations

import collections
import dataclasses
import io
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from shopfloor.common.errors import DataValidationError, StorageError
from shopfloor.common.images import IMAGE_STATISTICS, LUMA, ImageDecodeError, decode_pixels, image_statistics
from shopfloor.common.profile import numeric_profile
from shopfloor.common.storage import (
    TREE_MANIFEST,
    is_s3_uri,
    join_uri,
    list_files,
    read_bytes,
    sha256_hex,
    write_bytes,
    write_json,
)
from shopfloor.common.vision_config import ImageDataConfig
from shopfloor.contracts.images import MANIFEST_COLUMNS, ImageProblem

__all__ = [
    "ImageIngestResult",
    "PIXEL_HISTOGRAM_BINS",
    "REASONS",
    "ingest_images",
    "inspect_image",
    "read_label_manifest",
    "write_outputs",
]

REASONS: tuple[str, ...] = (
    "unreadable",
    "truncated",
    "wrong_format",
    "wrong_mode",
    "wrong_size",
    "unknown_class",
    "missing_file",
    "duplicate",
    "duplicate_entry",
    "conflicting_entries",
    "bad_path",
)
PIXEL_HISTOGRAM_BINS = 32
_ENTRY_ONLY = frozenset({"duplicate_entry", "bad_path"})  # problems of a manifest row, not of an image
_FORMATS = ("PNG", "JPEG")
_MODE_TEXT = {"L": "8-bit grayscale", "RGB": "8-bit RGB"}


@dataclasses.dataclass(frozen=True)
class ImageIngestResult:
    """The kept images (manifest table), what was skipped and why, and the reference profile."""

    manifest: pd.DataFrame
    skipped: list[ImageProblem]
    profile: dict


@dataclasses.dataclass(frozen=True)
class _Inspected:
    """What decoding one image found: its manifest fields and the statistics the profile needs."""

    record: dict
    channel_sum: np.ndarray
    channel_sumsq: np.ndarray
    pixels: int
    histogram: np.ndarray
    statistics: dict[str, float]


def _safe_path(text: str) -> str | None:
    """A manifest path as normalized relative POSIX path, or None if it is absolute or climbs out (``..``)."""
    path = PurePosixPath(text.strip().replace("\\", "/"))
    if not text.strip() or path.is_absolute() or ".." in path.parts or ":" in path.parts[0]:
        return None
    return path.as_posix()


def read_label_manifest(
    uri: str, config: ImageDataConfig, raw: bytes | None = None
) -> tuple[dict[str, tuple[str, int]], list[ImageProblem]]:
    """Parse a ``path,label`` CSV into {path: (label, row)} and the problems of its rows.

    A manifest that is empty, unparsable or lacks the columns is always an error; bad rows are problems.
    """
    raw = read_bytes(uri) if raw is None else raw
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataValidationError(
            uri, f"malformed label manifest ({detail})", expected="CSV with columns path,label"
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in ("path", "label"):
        if column not in frame.columns:
            raise DataValidationError(
                uri,
                f"column '{column}' not found",
                expected=f"CSV with columns path,label (has: {', '.join(frame.columns)})",
            )
    if frame.empty:
        raise DataValidationError(uri, "no rows", expected="one path,label row per image")
    entries: dict[str, tuple[str, int]] = {}
    problems: list[ImageProblem] = []
    conflicting: set[str] = set()
    classes = ", ".join(config.classes)
    for row, (text, label) in enumerate(zip(frame["path"], frame["label"].str.strip(), strict=True), start=1):
        path = _safe_path(text)
        if path is None:
            problems.append(
                ImageProblem(
                    text,
                    "bad_path",
                    f"row {row}: path '{text}' is not inside the data folder",
                    uri,
                    "a path relative to the data folder, without '..'",
                )
            )
        elif label not in config.classes:
            problems.append(
                ImageProblem(
                    path, "unknown_class", f"row {row}: unknown class '{label}' for {path}", uri, f"one of: {classes}"
                )
            )
        elif path in entries:
            first_label, first_row = entries[path]
            if first_label == label:
                problems.append(
                    ImageProblem(
                        path,
                        "duplicate_entry",
                        f"row {row}: {path} is listed again (first in row {first_row})",
                        uri,
                        "one row per image",
                    )
                )
            else:
                conflicting.add(path)
                problems.append(
                    ImageProblem(
                        path,
                        "conflicting_entries",
                        f"row {row}: {path} is labelled '{label}' but '{first_label}' in row {first_row}",
                        uri,
                        "one label per image",
                    )
                )
        else:
            entries[path] = (label, row)
    for path in conflicting:
        del entries[path]
    return entries, problems


def inspect_image(data: bytes, path: str, uri: str, config: ImageDataConfig) -> _Inspected | ImageProblem:
    """Decode one image in full and check its format, mode and size; return its statistics or the problem."""
    width, height = config.image_size
    try:
        decoded = decode_pixels(data, verify=True)
    except ImageDecodeError as exc:
        expected = "a complete PNG or JPEG image" if exc.reason == "truncated" else "a PNG or JPEG image"
        return ImageProblem(path, exc.reason, exc.problem, uri, expected)
    fmt, mode, size, pixels = decoded.format, decoded.mode, decoded.size, decoded.pixels
    if fmt not in _FORMATS:
        return ImageProblem(path, "wrong_format", f"{fmt} image", uri, "PNG or JPEG")
    if mode != config.color_mode:
        return ImageProblem(
            path, "wrong_mode", f"mode {mode}", uri, f"mode {config.color_mode} ({_MODE_TEXT[config.color_mode]})"
        )
    if size != (width, height):
        return ImageProblem(
            path, "wrong_size", f"{size[0]}x{size[1]} pixels", uri, f"{width}x{height} pixels (width x height)"
        )
    values = pixels.reshape(-1, 1 if pixels.ndim == 2 else pixels.shape[-1]).astype(np.float64)
    luminance = values[:, 0] if values.shape[1] == 1 else values @ LUMA
    histogram, _ = np.histogram(luminance, bins=PIXEL_HISTOGRAM_BINS, range=(0.0, 256.0))
    record = {
        "path": path,
        "sha256": sha256_hex(data),
        "width": width,
        "height": height,
        "mode": mode,
        "format": fmt,
        "bytes": len(data),
        "uri": uri,
    }
    return _Inspected(
        record=record,
        channel_sum=values.sum(axis=0),
        channel_sumsq=(values**2).sum(axis=0),
        pixels=values.shape[0],
        histogram=histogram,
        statistics=image_statistics(pixels),
    )


def _relative(uri: str, root: str) -> str:
    """The path of ``uri`` relative to the data folder ``root``, as POSIX."""
    if is_s3_uri(root):
        return uri[len(root.rstrip("/")) + 1 :]
    return Path(uri).relative_to(Path(root)).as_posix()


def _scan(root: str, config: ImageDataConfig) -> tuple[list[str], int, str]:
    """Relative paths of the image files under the images folder, the number of other files, and the folder."""
    folder = join_uri(root, config.images) if config.images.strip("/") else root
    if not is_s3_uri(folder) and not Path(folder).is_dir():
        raise DataValidationError(folder, "image folder not found", field="images", expected="a folder of images")
    extensions = {e.lower() for e in config.extensions}
    found, ignored = [], 0
    for uri in list_files(folder):
        path = _relative(uri, root)
        parts = PurePosixPath(path).parts
        if parts[-1] == TREE_MANIFEST or any(p.startswith(".") for p in parts):
            continue  # our own tree manifest, hidden files and partial writes
        if PurePosixPath(path).suffix.lower() in extensions:
            found.append(path)
        else:
            ignored += 1
    return found, ignored, folder


def _folder_labels(
    paths: list[str], images_prefix: str, config: ImageDataConfig, root: str
) -> tuple[dict[str, str | None], list[ImageProblem]]:
    """Labels from the class folder each image is in; images directly in the images folder are unlabelled."""
    labels: dict[str, str | None] = {}
    problems = []
    classes = ", ".join(config.classes)
    for path in paths:
        inner = PurePosixPath(path).relative_to(images_prefix).parts if images_prefix else PurePosixPath(path).parts
        if len(inner) == 1:
            labels[path] = None
        elif inner[0] in config.classes:
            labels[path] = inner[0]
        else:
            problems.append(
                ImageProblem(
                    path,
                    "unknown_class",
                    f"folder '{inner[0]}' is not a configured class",
                    join_uri(root, path),
                    f"class folders named one of: {classes}",
                )
            )
    return labels, problems


def _number(value: float) -> float:
    """A float rounded to 6 significant digits, so equal data gives equal JSON bytes."""
    return float(f"{value:.6g}")


def _profile(kept: list[_Inspected], labels: list[str | None], config: ImageDataConfig) -> dict:
    """Class counts, pixel statistics per channel, luminance histogram and per-image brightness/contrast/sharpness."""
    total = sum(item.pixels for item in kept)
    channel_sum = np.sum([item.channel_sum for item in kept], axis=0)
    channel_sumsq = np.sum([item.channel_sumsq for item in kept], axis=0)
    mean = channel_sum / total
    std = np.sqrt(np.maximum(channel_sumsq / total - mean**2, 0.0))
    histogram = np.sum([item.histogram for item in kept], axis=0)
    counts = collections.Counter(label for label in labels if label is not None)
    labelled = sum(counts.values())
    defects = labelled - counts.get(config.ok_class, 0)
    records = [item.record for item in kept]
    return {
        "images": len(kept),
        "unlabelled": len(labels) - labelled,
        "class_counts": {name: int(counts.get(name, 0)) for name in config.classes},
        "defect_share": _number(defects / labelled) if labelled else None,
        "classes": list(config.classes),
        "ok_class": config.ok_class,
        "image_size": list(config.image_size),
        "color_mode": config.color_mode,
        "sizes": dict(sorted(collections.Counter(f"{r['width']}x{r['height']}" for r in records).items())),
        "modes": dict(sorted(collections.Counter(r["mode"] for r in records).items())),
        "formats": dict(sorted(collections.Counter(r["format"] for r in records).items())),
        "pixels": {
            "channels": list(config.color_mode),
            "scale": "0-255",
            "mean": [_number(v) for v in mean],
            "std": [_number(v) for v in std],
            "histogram": {
                "of": "luminance",
                "edges": [_number(e) for e in np.linspace(0.0, 256.0, PIXEL_HISTOGRAM_BINS + 1)],
                "counts": histogram.astype(int).tolist(),
            },
        },
        **{
            name: numeric_profile(pd.Series([item.statistics[name] for item in kept], dtype=float))
            for name in IMAGE_STATISTICS
        },
    }


def ingest_images(root: str, config: ImageDataConfig) -> ImageIngestResult:
    """Read, decode and validate every image and label under the data folder ``root``; writes nothing.

    Raises:
        DataValidationError: On the first problem (by path) under ``on_invalid: error``; always for a manifest that
            cannot be parsed, a missing image folder, or when no valid image is left.
        StorageError: If the manifest or the store cannot be read.
    """
    root = str(root).rstrip("/") if is_s3_uri(root) else str(root)
    scanned, ignored, folder = _scan(root, config)
    images_prefix = _relative(folder, root) if folder != root else ""
    manifest_source = None
    if config.manifest:
        manifest_uri = config.manifest if is_s3_uri(config.manifest) else join_uri(root, config.manifest)
        raw = read_bytes(manifest_uri)
        entries, problems = read_label_manifest(manifest_uri, config, raw)
        labels: dict[str, str | None] = dict.fromkeys(scanned)
        labels.update({path: label for path, (label, _) in entries.items()})
        listed_rows = {path: row for path, (_, row) in entries.items()}
        manifest_source = {"uri": manifest_uri, "sha256": sha256_hex(raw), "bytes": len(raw)}
    else:
        labels, problems = _folder_labels(scanned, images_prefix, config, root)
        listed_rows = {}
    if not labels and not problems:
        raise DataValidationError(
            folder, "no image files found", field="images", expected=f"files ending in {', '.join(config.extensions)}"
        )
    inspected: dict[str, _Inspected] = {}
    present = set(scanned)
    for path in sorted(labels):
        uri = join_uri(root, path)
        try:
            data = read_bytes(uri)
        except StorageError as exc:
            if path in present or exc.problem not in ("file not found", "no such object"):
                raise
            problems.append(
                ImageProblem(
                    path,
                    "missing_file",
                    f"file not found (listed in row {listed_rows[path]} of the manifest)",
                    uri,
                    "the image file the manifest lists",
                )
            )
            continue
        result = inspect_image(data, path, uri, config)
        if isinstance(result, ImageProblem):
            problems.append(result)
        else:
            inspected[path] = result
    excluded = {p.path for p in problems if p.reason not in _ENTRY_ONLY}
    first_of: dict[str, str] = {}
    for path, item in sorted(inspected.items()):
        if path in excluded:
            continue
        digest = item.record["sha256"]
        if digest in first_of:
            problems.append(
                ImageProblem(
                    path,
                    "duplicate",
                    f"same content (sha256 {digest[:12]}...) as {first_of[digest]}",
                    join_uri(root, path),
                    "each image once",
                )
            )
        else:
            first_of[digest] = path
    problems.sort(key=lambda p: (p.path, REASONS.index(p.reason)))
    if problems and config.on_invalid == "error":
        raise problems[0].error()
    excluded = {p.path for p in problems if p.reason not in _ENTRY_ONLY}
    kept_paths = [p for p in sorted(inspected) if p not in excluded]
    if not kept_paths:
        raise DataValidationError(
            root, f"no valid images left ({len(problems)} skipped)", expected="at least one valid, labelled image"
        )
    kept = [inspected[p] for p in kept_paths]
    rows = [{**inspected[p].record, "label": labels[p]} for p in kept_paths]
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    # pandas-stubs reject None as `other`; a missing label must be None (not NaN) in the manifest
    manifest["label"] = manifest["label"].astype(object).where(manifest["label"].notna(), None)  # type: ignore[call-overload]
    profile = _profile(kept, [labels[p] for p in kept_paths], config)
    profile["skipped"] = {
        "count": len(problems),
        "by_reason": dict(sorted(collections.Counter(p.reason for p in problems).items())),
    }
    profile["ignored_files"] = ignored
    profile["sources"] = {
        "root": root,
        "images": folder,
        "manifest": manifest_source,
        "content_sha256": sha256_hex("\n".join(f"{p},{inspected[p].record['sha256']}" for p in kept_paths).encode()),
    }
    return ImageIngestResult(manifest=manifest, skipped=problems, profile=profile)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Serialize a table to Parquet in memory so it can be written atomically."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_outputs(result: ImageIngestResult, manifest_path: str, skipped_path: str, profile_path: str) -> None:
    """Write the image manifest (Parquet), the skip report and the profile (JSON), each atomically."""
    write_bytes(manifest_path, _parquet_bytes(result.manifest))
    write_json(
        skipped_path,
        {
            "count": len(result.skipped),
            "by_reason": dict(sorted(collections.Counter(p.reason for p in result.skipped).items())),
            "skipped": [p.as_dict() for p in result.skipped],
        },
    )
    write_json(profile_path, result.profile)
