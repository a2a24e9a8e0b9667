"""Seeded generator of visual-inspection demo data: camera images of machined parts, most good, some defective.

Each image shows one part on a fixture, photographed from above: a turned disc (concentric turning marks, a
centre bore, four bolt holes) or a milled plate (face-milling arcs, four corner holes). Position, rotation and
size vary a little, as parts do in a real fixture; the lighting has a gradient and vignetting; the sensor adds
read and shot noise. Defects are drawn on the machined surface as an inspection camera sees them, standing out
from the tool marks: ``scratch`` (a straight groove, dark, with a bright highlight on the wall facing the light),
``dent`` (a shaded crater, dark on one side and bright on the other), ``crack`` (a dark jagged line starting at a
hole, where cracks start, narrowing to its tip) and ``missing_hole`` (one bolt hole was never drilled).

Rendering is numpy on a 4x supersampled grid averaged down (anti-aliased edges), so the same
:class:`PartsDataSpec` always gives byte-identical PNG files on one platform.

On-disk layout written by :func:`write_parts_data` (what a plant delivers, plus the ground truth of the defects):
  images/part_00001.png ...    : one PNG per part (``layout="class_folders"``: images/<class>/part_00001.png)
  labels.csv                   : ``path,label``, paths relative to the data folder (``layout="manifest"`` only)
  defects.csv                  : ``path,label,x_min,y_min,x_max,y_max`` for every defective part: the pixel box
                                 [x_min, x_max) x [y_min, y_max) that holds the drawn defect (for Grad-CAM checks)
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from shopfloor.common.storage import write_tree

__all__ = [
    "CLASSES",
    "DEFECT_CLASSES",
    "DefectBox",
    "PartsData",
    "PartsDataSpec",
    "class_counts",
    "generate_parts",
    "write_parts_data",
]

CLASSES: tuple[str, ...] = ("ok", "scratch", "dent", "crack", "missing_hole")
DEFECT_CLASSES: tuple[str, ...] = CLASSES[1:]
_SUPERSAMPLE = 4
_HOLES = 4
_FIXTURE_LEVEL = (0.12, 0.22)
_HOLE_LEVEL = 0.05
_SURFACE_LEVEL = 0.6
_STEEL_TINT = (1.0, 0.99, 1.03)
_FIXTURE_TINT = (0.85, 1.05, 0.95)


@dataclasses.dataclass(frozen=True)
class PartsDataSpec:
    """Size and make-up of the generated image set; small by default so a CNN trains in about 1.5 minutes on 2 cores.

    Attributes:
        seed: Root seed; every random draw derives from it.
        count: Number of images (1..100000).
        image_size: Width and height in pixels (32..512).
        color_mode: ``L`` (8-bit grayscale) or ``RGB``.
        part: ``disc`` (turned), ``plate`` (milled) or ``mixed`` (either, at random).
        defect_share: Share of defective parts (0..1); the rest are ``ok``.
        defect_weights: Relative frequency of scratch, dent, crack, missing_hole among the defective parts.
        layout: ``manifest`` (images/ plus labels.csv) or ``class_folders`` (images/<class>/, no labels.csv).
    """

    seed: int = 7
    count: int = 1000
    image_size: int = 64
    color_mode: Literal["L", "RGB"] = "L"
    part: Literal["disc", "plate", "mixed"] = "disc"
    defect_share: float = 0.4
    defect_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    layout: Literal["manifest", "class_folders"] = "manifest"


@dataclasses.dataclass(frozen=True)
class DefectBox:
    """Where a defect was drawn: the half-open pixel box [x_min, x_max) x [y_min, y_max)."""

    x_min: int
    y_min: int
    x_max: int
    y_max: int


@dataclasses.dataclass(frozen=True)
class PartsData:
    """Generated images (uint8, [n, h, w] or [n, h, w, 3]), their labels, relative paths and defect boxes."""

    images: np.ndarray
    labels: list[str]
    paths: list[str]
    boxes: list[DefectBox | None]


@dataclasses.dataclass(frozen=True)
class _Part:
    """Geometry of one part in output-pixel coordinates."""

    shape: str
    cx: float
    cy: float
    rotation: float
    size: float  # disc: outer radius; plate: half the side length
    bore: float  # disc: centre bore radius; plate: 0
    holes: tuple[tuple[float, float], ...]
    hole_radius: float

    def material_distance(self, x: np.ndarray, y: np.ndarray, drilled: tuple[bool, ...]) -> np.ndarray:
        """Signed distance to the part's material (negative inside it), holes cut where ``drilled``."""
        distance = self.outline_distance(x, y)
        if self.bore > 0:
            distance = np.maximum(distance, self.bore - np.hypot(x - self.cx, y - self.cy))
        for (hx, hy), cut in zip(self.holes, drilled, strict=True):
            if cut:
                distance = np.maximum(distance, self.hole_radius - np.hypot(x - hx, y - hy))
        return distance

    def outline_distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Signed distance to the outer outline (negative inside), ignoring holes."""
        dx, dy = x - self.cx, y - self.cy
        if self.shape == "disc":
            return np.hypot(dx, dy) - self.size
        cos, sin = math.cos(self.rotation), math.sin(self.rotation)
        u, v = np.abs(cos * dx + sin * dy), np.abs(-sin * dx + cos * dy)
        corner = 0.18 * self.size
        qu, qv = u - (self.size - corner), v - (self.size - corner)
        outside = np.hypot(np.maximum(qu, 0.0), np.maximum(qv, 0.0))
        return outside + np.minimum(np.maximum(qu, qv), 0.0) - corner


def _require(name: str, ok: bool, allowed: str, value: object) -> None:
    """Raise a ValueError naming the spec field and its allowed values when ``ok`` is false."""
    if not ok:
        raise ValueError(f"PartsDataSpec.{name} must be {allowed}, got {value!r}")


def _validate(spec: PartsDataSpec) -> None:
    """Check every spec field, naming the field and its allowed range on failure."""

    def is_int(value: object) -> bool:
        return isinstance(value, int | np.integer) and not isinstance(value, bool)

    _require("seed", is_int(spec.seed) and 0 <= spec.seed < 2**63, "an integer in [0, 2**63)", spec.seed)
    _require("count", is_int(spec.count) and 1 <= spec.count <= 100_000, "an integer in [1, 100000]", spec.count)
    _require(
        "image_size",
        is_int(spec.image_size) and 32 <= spec.image_size <= 512,
        "an integer in [32, 512]",
        spec.image_size,
    )
    _require("color_mode", spec.color_mode in ("L", "RGB"), "'L' or 'RGB'", spec.color_mode)
    _require("part", spec.part in ("disc", "plate", "mixed"), "'disc', 'plate' or 'mixed'", spec.part)
    _require("defect_share", 0.0 <= spec.defect_share <= 1.0, "a number in [0, 1]", spec.defect_share)
    weights = spec.defect_weights
    _require(
        "defect_weights",
        len(weights) == len(DEFECT_CLASSES) and all(w >= 0 for w in weights) and sum(weights) > 0,
        f"{len(DEFECT_CLASSES)} non-negative weights (scratch, dent, crack, missing_hole), not all 0",
        weights,
    )
    _require("layout", spec.layout in ("manifest", "class_folders"), "'manifest' or 'class_folders'", spec.layout)


def class_counts(spec: PartsDataSpec) -> dict[str, int]:
    """Exact number of images per class: defects split by largest remainder, so the imbalance is as specified."""
    defective = round(spec.count * spec.defect_share)
    total = sum(spec.defect_weights)
    shares = [defective * w / total for w in spec.defect_weights]
    counts = [math.floor(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (counts[i] - shares[i], i))
    for i in by_remainder[: defective - sum(counts)]:
        counts[i] += 1
    return {CLASSES[0]: spec.count - defective, **dict(zip(DEFECT_CLASSES, counts, strict=True))}


def _place_part(rng: np.random.Generator, shape: str, n: int) -> _Part:
    """Draw where the part sits in the fixture: small shifts, any rotation, a little size tolerance."""
    cx, cy = n / 2 + rng.uniform(-0.05, 0.05, size=2) * n
    scale = rng.uniform(0.96, 1.04)
    if shape == "disc":
        rotation = rng.uniform(0.0, 2 * math.pi)
        size, bore, pitch = 0.40 * n * scale, 0.11 * n * scale, 0.26 * n * scale
        angles = [rotation + k * 2 * math.pi / _HOLES for k in range(_HOLES)]
        holes = tuple((cx + pitch * math.cos(a), cy + pitch * math.sin(a)) for a in angles)
        return _Part(shape, cx, cy, rotation, size, bore, holes, 0.045 * n * scale)
    rotation = rng.uniform(-0.15, 0.15)
    size, offset = 0.36 * n * scale, 0.22 * n * scale
    cos, sin = math.cos(rotation), math.sin(rotation)
    corners = [(su * offset, sv * offset) for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    holes = tuple((cx + cos * u - sin * v, cy + sin * u + cos * v) for u, v in corners)
    return _Part(shape, cx, cy, rotation, size, 0.0, holes, 0.05 * n * scale)


def _surface(part: _Part, x: np.ndarray, y: np.ndarray, light: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness of the bare machined surface: tool marks, anisotropic sheen and fine roughness."""
    dx, dy = x - part.cx, y - part.cy
    if part.shape == "disc":
        radius, theta = np.hypot(dx, dy), np.arctan2(dy, dx)
        marks = 0.05 * np.sin(2 * np.pi * radius / rng.uniform(1.6, 2.4) + rng.uniform(0, 2 * np.pi))
        sheen = 0.12 * np.cos(2 * (theta - light))  # turned surfaces reflect as a bow tie across the lit axis
    else:
        cos, sin = math.cos(part.rotation), math.sin(part.rotation)
        u = cos * dx + sin * dy
        tool = 2.2 * part.size  # centre of the face mill, off to one side: its passes leave arcs
        marks = 0.05 * np.sin(2 * np.pi * np.hypot(u + tool, -sin * dx + cos * dy) / rng.uniform(1.8, 2.6))
        sheen = 0.08 * u / part.size * math.cos(light - part.rotation)
    roughness = rng.normal(0.0, 0.04, size=x.shape)
    return _SURFACE_LEVEL + marks + sheen + roughness


def _segment_distance(x: np.ndarray, y: np.ndarray, a: tuple[float, float], b: tuple[float, float]) -> tuple:
    """Distance of every point to the segment a-b, and the position (0..1) of its nearest point along it."""
    ax, ay = a
    bx, by = b
    vx, vy = bx - ax, by - ay
    t = np.clip(((x - ax) * vx + (y - ay) * vy) / max(vx * vx + vy * vy, 1e-12), 0.0, 1.0)
    return np.hypot(x - (ax + t * vx), y - (ay + t * vy)), t


def _point_on_surface(
    rng: np.random.Generator, part: _Part, drilled: tuple[bool, ...], margin: float
) -> tuple[float, float]:
    """A random point on the material at least ``margin`` pixels from every edge and hole."""
    for _ in range(1000):
        px, py = part.cx + rng.uniform(-1, 1) * part.size, part.cy + rng.uniform(-1, 1) * part.size
        if part.material_distance(np.array(px), np.array(py), drilled) < -margin:
            return float(px), float(py)
    raise RuntimeError("no room for a defect on the part")  # pragma: no cover - geometry always leaves room


def _box(xs: list[float], ys: list[float], pad: float, n: int) -> DefectBox:
    """The pixel box around the given points, padded and clipped to the image."""
    return DefectBox(
        x_min=max(0, math.floor(min(xs) - pad)),
        y_min=max(0, math.floor(min(ys) - pad)),
        x_max=min(n, math.ceil(max(xs) + pad)),
        y_max=min(n, math.ceil(max(ys) + pad)),
    )


def _scratch(rng, part, drilled, x, y, n, light) -> tuple[np.ndarray, DefectBox]:
    """A straight handling mark: a dark groove, its wall facing the light bright, tapered at both ends."""
    width = rng.uniform(0.9, 1.4)
    strength = rng.uniform(0.45, 0.6)
    for _ in range(200):
        mx, my = _point_on_surface(rng, part, drilled, 2.0)
        angle, length = rng.uniform(0, math.pi), rng.uniform(0.25, 0.4) * n
        a = (mx - 0.5 * length * math.cos(angle), my - 0.5 * length * math.sin(angle))
        b = (mx + 0.5 * length * math.cos(angle), my + 0.5 * length * math.sin(angle))
        ends = part.material_distance(np.array([a[0], b[0]]), np.array([a[1], b[1]]), drilled)
        if (ends < -1.5).all():
            break
    distance, t = _segment_distance(x, y, a, b)
    # which side of the groove a point is on, and whether that wall faces the light
    side = np.sign((x - a[0]) * math.sin(angle) - (y - a[1]) * math.cos(angle))
    facing = math.sin(angle) * math.cos(light) - math.cos(angle) * math.sin(light)
    taper = np.sqrt(np.sin(np.pi * t))
    groove = np.clip(1.0 - distance / (0.5 * width + 0.25), 0.0, 1.0)
    wall = np.exp(-(((distance - 0.5 * width - 0.5) / 0.6) ** 2)) * (side * facing > 0)
    return strength * taper * (0.9 * wall - groove), _box([a[0], b[0]], [a[1], b[1]], width + 2, n)


def _dent(rng, part, drilled, x, y, n, light) -> tuple[np.ndarray, DefectBox]:
    """A small impact crater: darker overall, its slope facing the light bright and the other side dark."""
    radius = rng.uniform(0.03, 0.05) * n
    px, py = _point_on_surface(rng, part, drilled, radius * 2.0)
    depth = np.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * radius**2))
    slope = ((x - px) * math.cos(light) + (y - py) * math.sin(light)) / radius * depth
    strength = rng.uniform(0.4, 0.55)
    return strength * (0.8 * slope - 0.6 * depth), _box([px], [py], 2.5 * radius, n)


def _crack(rng, part, drilled, x, y, n) -> tuple[np.ndarray, DefectBox]:
    """A dark jagged line running from the rim of a hole into the material, where fatigue cracks start."""
    centres = [(hx, hy, part.hole_radius) for (hx, hy), cut in zip(part.holes, drilled, strict=True) if cut]
    if part.bore > 0:
        centres.append((part.cx, part.cy, part.bore))
    hx, hy, radius = centres[int(rng.integers(len(centres)))]
    heading = rng.uniform(0, 2 * math.pi)
    points = [(hx + (radius + 0.3) * math.cos(heading), hy + (radius + 0.3) * math.sin(heading))]
    steps = int(rng.uniform(0.2, 0.32) * n / 0.8)
    for _ in range(3 * steps):
        if len(points) > steps:
            break
        heading += rng.normal(0.0, 0.25)
        zag = heading + rng.normal(0.0, 0.6)  # each step zigzags off the crack's overall direction
        step = (points[-1][0] + 0.8 * math.cos(zag), points[-1][1] + 0.8 * math.sin(zag))
        if part.material_distance(np.array(step[0]), np.array(step[1]), drilled) > -0.5:
            heading += 0.8  # turn away from an edge instead of running off the part
            continue
        points.append(step)
    width = rng.uniform(0.8, 1.1)
    distance = np.full(x.shape, np.inf)
    position = np.zeros(x.shape)
    for k, (a, b) in enumerate(zip(points[:-1], points[1:], strict=True)):
        segment, t = _segment_distance(x, y, a, b)
        closer = segment < distance
        distance = np.where(closer, segment, distance)
        position = np.where(closer, (k + t) / max(len(points) - 1, 1), position)
    # widest where it leaves the hole, closing to a hairline at its tip
    profile = np.clip(1.0 - distance / (0.5 * width * (1.2 - 0.6 * position) + 0.25), 0.0, 1.0)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return -rng.uniform(0.6, 0.75) * profile, _box(xs, ys, width + 1, n)


def _render(
    index: int, label: str, spec: PartsDataSpec, grid: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, DefectBox | None]:
    """Render one part image (uint8) and the box of its defect, from its own seeded generator."""
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(1, index)))
    n = spec.image_size
    shape = spec.part if spec.part != "mixed" else ("disc", "plate")[int(rng.integers(2))]
    part = _place_part(rng, shape, n)
    light = rng.uniform(0, 2 * math.pi)
    drilled = [True] * _HOLES
    x, y = grid
    box = None
    if label == "missing_hole":
        k = int(rng.integers(_HOLES))
        drilled[k] = False
        hx, hy = part.holes[k]
        box = _box([hx], [hy], part.hole_radius + 1.0, n)
    holes = tuple(drilled)
    surface = _surface(part, x, y, light, rng)
    material = part.material_distance(x, y, holes)
    outline = part.outline_distance(x, y)
    surface += 0.2 * ((material > -0.8) & (outline < -0.8))  # chamfers on hole rims catch the light
    surface += 0.25 * (outline > -0.8)  # the chamfer on the outer edge
    mark: np.ndarray | float
    if label == "scratch":
        mark, box = _scratch(rng, part, holes, x, y, n, light)
    elif label == "dent":
        mark, box = _dent(rng, part, holes, x, y, n, light)
    elif label == "crack":
        mark, box = _crack(rng, part, holes, x, y, n)
    else:
        mark = 0.0
    fixture = rng.uniform(*_FIXTURE_LEVEL) + rng.normal(0.0, 0.02, size=x.shape)
    value = np.where(outline < 0, np.where(material < 0, surface + mark, _HOLE_LEVEL), fixture)
    s = _SUPERSAMPLE
    value = value.reshape(n, s, n, s).mean(axis=(1, 3))
    on_part = (outline < 0).reshape(n, s, n, s).mean(axis=(1, 3))
    # lighting: exposure, a linear gradient across the field and vignetting, then the sensor's noise
    xs, ys = grid[0][s // 2 :: s, s // 2 :: s], grid[1][s // 2 :: s, s // 2 :: s]
    angle = rng.uniform(0, 2 * math.pi)
    gradient = 1.0 + rng.uniform(0.15, 0.4) * ((xs - n / 2) * math.cos(angle) + (ys - n / 2) * math.sin(angle)) / n
    vignette = 1.0 - 0.25 * ((xs - n / 2) ** 2 + (ys - n / 2) ** 2) / (n / 2) ** 2
    value = np.clip(value * rng.uniform(0.85, 1.1) * gradient * vignette, 0.0, 1.0)
    channels = 3 if spec.color_mode == "RGB" else 1
    if channels == 3:
        tint = on_part[..., None] * np.array(_STEEL_TINT) + (1 - on_part[..., None]) * np.array(_FIXTURE_TINT)
        value = value[..., None] * tint
    noise = rng.normal(0.0, 1.0, size=value.shape) * (rng.uniform(0.006, 0.015) + 0.02 * np.sqrt(value))
    pixels = np.clip(np.rint((value + noise) * 255.0), 0, 255).astype(np.uint8)
    return pixels, box


def generate_parts(spec: PartsDataSpec = PartsDataSpec()) -> PartsData:
    """Render every part image of ``spec`` in memory, with labels in a seeded shuffled order.

    Args:
        spec: Image count, size, colour mode, defect share and seed.

    Returns:
        The images, their labels, their paths relative to the data folder and the defect boxes (None for ok).

    Raises:
        ValueError: If a spec field is outside its allowed range.
    """
    _validate(spec)
    counts = class_counts(spec)
    labels = [name for name in CLASSES for _ in range(counts[name])]
    order = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(0,))).permutation(len(labels))
    labels = [labels[i] for i in order]
    n, s = spec.image_size, _SUPERSAMPLE
    axis = (np.arange(n * s) + 0.5) / s
    grid = np.meshgrid(axis, axis)
    images, boxes, paths = [], [], []
    for index, label in enumerate(labels):
        pixels, box = _render(index, label, spec, grid)
        images.append(pixels)
        boxes.append(box)
        name = f"part_{index + 1:05d}.png"
        paths.append(f"images/{label}/{name}" if spec.layout == "class_folders" else f"images/{name}")
    return PartsData(images=np.stack(images), labels=labels, paths=paths, boxes=boxes)


def _png(pixels: np.ndarray) -> bytes:
    """Encode one image as PNG with fixed settings, so equal pixels give equal bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def _csv(header: str, rows: list[str]) -> bytes:
    """A small CSV with Unix line ends, written by hand so the bytes never depend on a library version."""
    return ("\n".join([header, *rows]) + "\n").encode()


def write_parts_data(
    out: str | os.PathLike,
    spec: PartsDataSpec = PartsDataSpec(),
) -> dict[str, str]:
    """Write the image set to a local folder or ``s3://`` prefix, replacing it whole and only once complete.

    Returns:
        Locations of the data folder (``root``), ``images``, ``labels`` (manifest layout only) and ``defects``.
    """
    data = generate_parts(spec)
    with tempfile.TemporaryDirectory(prefix="shopfloor-parts-") as scratch:
        root = Path(scratch)
        for path, pixels in zip(data.paths, data.images, strict=True):
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_png(pixels))
        if spec.layout == "manifest":
            rows = [f"{path},{label}" for path, label in zip(data.paths, data.labels, strict=True)]
            (root / "labels.csv").write_bytes(_csv("path,label", rows))
        boxes = [
            f"{path},{label},{b.x_min},{b.y_min},{b.x_max},{b.y_max}"
            for path, label, b in zip(data.paths, data.labels, data.boxes, strict=True)
            if b is not None
        ]
        (root / "defects.csv").write_bytes(_csv("path,label,x_min,y_min,x_max,y_max", boxes))
        write_tree(root, out)
    base = str(out).rstrip("/")
    paths = {"root": base, "images": f"{base}/images", "defects": f"{base}/defects.csv"}
    if spec.layout == "manifest":
        paths["labels"] = f"{base}/labels.csv"
    return paths
