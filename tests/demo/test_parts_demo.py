"""The visual-inspection demo generator: deterministic, realistic class balance, defect boxes, both layouts."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.ndimage import median_filter

from shopfloor.demo.parts import CLASSES, PartsDataSpec, class_counts, generate_parts, write_parts_data

SMALL = PartsDataSpec(count=40, defect_share=0.5)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parts") / "data"
    write_parts_data(root, SMALL)
    return root


def test_same_spec_gives_byte_identical_files(small, tmp_path):
    write_parts_data(tmp_path / "again", SMALL)
    first, again = _files(small), _files(tmp_path / "again")
    assert first == again
    assert len([name for name in first if name.startswith("images/")]) == SMALL.count


def test_another_seed_gives_other_images(small, tmp_path):
    write_parts_data(tmp_path / "other", PartsDataSpec(count=40, defect_share=0.5, seed=8))
    first, other = _files(small), _files(tmp_path / "other")
    assert first.keys() == other.keys()
    assert sum(first[name] != other[name] for name in first if name.endswith(".png")) == SMALL.count


def test_layout_is_what_a_plant_delivers(small):
    labels = pd.read_csv(small / "labels.csv")
    assert list(labels.columns) == ["path", "label"]
    assert sorted(p.relative_to(small).as_posix() for p in (small / "images").iterdir()) == sorted(labels["path"])
    assert labels["path"].str.fullmatch(r"images/part_\d{5}\.png").all()  # the name does not give the class away
    assert labels["label"].value_counts().to_dict() == {k: v for k, v in class_counts(SMALL).items() if v}
    with Image.open(small / labels["path"][0]) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "L", (64, 64))


def test_default_set_is_small_and_mostly_ok():
    counts = class_counts(PartsDataSpec())
    assert sum(counts.values()) == 1000
    assert counts["ok"] == 600
    assert set(counts) == set(CLASSES)
    assert all(counts[name] == 100 for name in CLASSES[1:])
    assert class_counts(PartsDataSpec(count=100, defect_share=0.1, defect_weights=(3, 1, 0, 0))) == {
        "ok": 90,
        "scratch": 8,
        "dent": 2,
        "crack": 0,
        "missing_hole": 0,
    }


def test_every_defect_has_a_box_on_the_part(small):
    labels = pd.read_csv(small / "labels.csv")
    defects = pd.read_csv(small / "defects.csv")
    assert list(defects.columns) == ["path", "label", "x_min", "y_min", "x_max", "y_max"]
    assert sorted(defects["path"]) == sorted(labels.loc[labels["label"] != "ok", "path"])
    assert defects.merge(labels, on=["path", "label"]).shape[0] == len(defects)
    for row in defects.itertuples():
        assert 0 <= row.x_min < row.x_max <= 64 and 0 <= row.y_min < row.y_max <= 64
        assert (row.x_max - row.x_min) * (row.y_max - row.y_min) < 0.15 * 64 * 64
        centre = np.hypot((row.x_min + row.x_max) / 2 - 32, (row.y_min + row.y_max) / 2 - 32)
        assert centre < 0.45 * 64, row  # on the part, not on the fixture


def test_defects_are_local_anomalies_inside_their_box():
    data = generate_parts(PartsDataSpec(count=60, defect_share=0.5))
    for index, (label, box) in enumerate(zip(data.labels, data.boxes, strict=True)):
        if label == "ok":
            assert box is None
            continue
        image = data.images[index].astype(float)
        inside = np.zeros(image.shape, bool)
        inside[box.y_min : box.y_max, box.x_min : box.x_max] = True
        if label == "missing_hole":  # where the hole should be, there is bright machined surface, not a dark hole
            assert image[inside].mean() > 80, (index, image[inside].mean())
        else:  # scratches, dents and cracks stand out from their neighbourhood inside the box
            residual = np.abs(image - median_filter(image, size=5))
            assert residual[inside].max() > 30, (index, label, residual[inside].max())


def test_class_folders_and_rgb(tmp_path):
    paths = write_parts_data(
        tmp_path / "d", PartsDataSpec(count=12, color_mode="RGB", part="mixed", layout="class_folders")
    )
    root = Path(paths["root"])
    assert "labels" not in paths and not (root / "labels.csv").exists()
    images = sorted(p.relative_to(root / "images").as_posix() for p in (root / "images").rglob("*.png"))
    assert len(images) == 12 and all(p.split("/")[0] in CLASSES for p in images)
    with Image.open(io.BytesIO((root / "images" / images[0]).read_bytes())) as image:
        assert (image.mode, image.size) == ("RGB", (64, 64))


@pytest.mark.parametrize(
    ("field", "value"),
    [("count", 0), ("image_size", 16), ("defect_share", 1.5), ("defect_weights", (1, 1)), ("layout", "zip")],
)
def test_bad_spec_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"PartsDataSpec.{field}"):
        generate_parts(PartsDataSpec(**{field: value}))
