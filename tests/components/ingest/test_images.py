"""Image ingest: every bad image or manifest entry is an error naming the file, or a reported skip; S3 works too."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from shopfloor.common.config import validated
from shopfloor.common.errors import ConfigError, DataValidationError
from shopfloor.common.storage import sha256_hex
from shopfloor.common.vision_config import ImageDataConfig
from shopfloor.components.ingest.images import ingest_images, write_outputs
from shopfloor.contracts.images import MANIFEST_COLUMNS, load_image_manifest
from shopfloor.demo.parts import PartsDataSpec, write_parts_data

SPEC = PartsDataSpec(count=24, defect_share=0.5)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images") / "data"
    write_parts_data(root, SPEC)
    return root


@pytest.fixture
def data(pristine, tmp_path) -> Path:
    """A private copy of the demo image set, for tests that break it."""
    return Path(shutil.copytree(pristine, tmp_path / "data"))


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _labels(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "labels.csv")


def _add_row(root: Path, path: str, label: str) -> None:
    with open(root / "labels.csv", "a") as handle:
        handle.write(f"{path},{label}\n")


def _check(root: Path, mode: str, reason: str, path: str, *message: str):
    """Ingest broken data: under 'error' a one-line error naming the file; under 'skip' a reported skip."""
    config = ImageDataConfig(on_invalid=mode)
    if mode == "error":
        with pytest.raises(DataValidationError) as info:
            ingest_images(str(root), config)
        text = str(info.value)
        assert "\n" not in text
        for part in message:
            assert part in text, text
        return None
    result = ingest_images(str(root), config)
    assert [(s.path, s.reason) for s in result.skipped] == [(path, reason)]
    assert all(part in str(result.skipped[0].error()) for part in message)
    assert path not in set(result.manifest["path"]) or reason == "duplicate_entry"
    assert result.profile["skipped"] == {"count": 1, "by_reason": {reason: 1}}
    return result


# --- happy paths -------------------------------------------------------------------------------------------------


def test_demo_images_are_ingested_with_hashes_labels_and_profile(pristine, tmp_path):
    result = ingest_images(str(pristine), ImageDataConfig())
    labels = _labels(pristine)
    manifest = result.manifest
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    assert manifest["path"].tolist() == sorted(labels["path"])
    assert manifest.set_index("path")["label"].to_dict() == labels.set_index("path")["label"].to_dict()
    first = manifest.iloc[0]
    assert first["sha256"] == sha256_hex((pristine / first["path"]).read_bytes())
    assert (first["width"], first["height"], first["mode"], first["format"]) == (64, 64, "L", "PNG")
    assert result.skipped == []
    profile = result.profile
    assert profile["images"] == 24 and profile["unlabelled"] == 0
    assert profile["class_counts"] == labels["label"].value_counts().reindex(profile["classes"], fill_value=0).to_dict()
    assert profile["defect_share"] == 0.5
    assert profile["sizes"] == {"64x64": 24} and profile["modes"] == {"L": 24} and profile["formats"] == {"PNG": 24}
    pixels = np.stack([np.asarray(Image.open(pristine / p)) for p in manifest["path"]]).astype(float)
    assert profile["pixels"]["mean"][0] == pytest.approx(pixels.mean(), rel=1e-5)
    assert profile["pixels"]["std"][0] == pytest.approx(pixels.std(), rel=1e-5)
    assert sum(profile["pixels"]["histogram"]["counts"]) == pixels.size
    assert profile["brightness"]["count"] == 24
    assert profile["sharpness"]["count"] == 24 and profile["sharpness"]["mean"] > 0
    assert profile["brightness"]["mean"] == pytest.approx(pixels.mean(axis=(1, 2)).mean(), rel=1e-5)

    out = tmp_path / "out"
    write_outputs(result, str(out / "images.parquet"), str(out / "skipped.json"), str(out / "profile.json"))
    pd.testing.assert_frame_equal(load_image_manifest(str(out / "images.parquet")), manifest)
    assert json.loads((out / "skipped.json").read_text()) == {"count": 0, "by_reason": {}, "skipped": []}
    assert json.loads((out / "profile.json").read_text()) == json.loads(json.dumps(profile))


def test_class_folders_without_a_manifest(tmp_path):
    write_parts_data(tmp_path / "d", PartsDataSpec(count=12, color_mode="RGB", layout="class_folders"))
    result = ingest_images(str(tmp_path / "d"), ImageDataConfig(manifest=None, color_mode="RGB"))
    assert len(result.manifest) == 12
    assert (result.manifest["path"].str.split("/").str[1] == result.manifest["label"]).all()
    assert result.profile["pixels"]["channels"] == ["R", "G", "B"] and len(result.profile["pixels"]["mean"]) == 3


def test_images_not_in_the_manifest_are_kept_unlabelled(data):
    (data / "images" / "new_part.png").write_bytes(_png(np.full((64, 64), 90, np.uint8)))
    result = ingest_images(str(data), ImageDataConfig())
    row = result.manifest.set_index("path").loc["images/new_part.png"]
    assert row["label"] is None
    assert result.profile["unlabelled"] == 1 and result.skipped == []


def test_jpeg_and_other_files(data):
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64), 120, np.uint8)).save(buffer, format="JPEG")
    (data / "images" / "extra.jpg").write_bytes(buffer.getvalue())
    (data / "images" / "notes.txt").write_text("camera 2 was recalibrated")
    _add_row(data, "images/extra.jpg", "ok")
    result = ingest_images(str(data), ImageDataConfig())
    assert result.manifest.set_index("path").loc["images/extra.jpg", "format"] == "JPEG"
    assert result.profile["formats"] == {"JPEG": 1, "PNG": 24} and result.profile["ignored_files"] == 1


# --- bad images and manifest entries, in both modes -----------------------------------------------------------------

MODES = ["error", "skip"]


@pytest.mark.parametrize("mode", MODES)
def test_truncated_png(data, mode):
    target = data / "images" / "part_00003.png"
    target.write_bytes(target.read_bytes()[:-40])
    _check(data, mode, "truncated", "images/part_00003.png", "part_00003.png", "truncated", "complete PNG or JPEG")


@pytest.mark.parametrize("mode", MODES)
def test_file_that_is_not_an_image(data, mode):
    (data / "images" / "part_00004.png").write_text("<html>proxy error</html>")
    _check(data, mode, "unreadable", "images/part_00004.png", "part_00004.png", "not an image file")


@pytest.mark.parametrize("mode", MODES)
def test_wrong_size(data, mode):
    (data / "images" / "part_00005.png").write_bytes(_png(np.zeros((48, 64), np.uint8)))
    _check(data, mode, "wrong_size", "images/part_00005.png", "part_00005.png", "64x48 pixels", "expected 64x64")


@pytest.mark.parametrize("mode", MODES)
def test_wrong_mode(data, mode):
    (data / "images" / "part_00006.png").write_bytes(_png(np.zeros((64, 64, 3), np.uint8)))
    _check(data, mode, "wrong_mode", "images/part_00006.png", "part_00006.png", "mode RGB", "expected mode L")


@pytest.mark.parametrize("mode", MODES)
def test_unknown_class(data, mode):
    labels = _labels(data)
    labels.loc[6, "label"] = "scrach"
    labels.to_csv(data / "labels.csv", index=False)
    _check(data, mode, "unknown_class", labels.loc[6, "path"], "labels.csv", "row 7", "'scrach'", "one of: ok, scratch")


@pytest.mark.parametrize("mode", MODES)
def test_manifest_entry_without_a_file(data, mode):
    (data / "images" / "part_00008.png").unlink()
    _check(data, mode, "missing_file", "images/part_00008.png", "part_00008.png", "file not found", "row 8")


@pytest.mark.parametrize("mode", MODES)
def test_duplicate_image_content(data, mode):
    shutil.copy(data / "images" / "part_00002.png", data / "images" / "part_99999.png")
    _add_row(data, "images/part_99999.png", "ok")
    result = _check(data, mode, "duplicate", "images/part_99999.png", "part_99999.png", "as images/part_00002.png")
    if result is not None:  # the first copy (by path) is kept
        assert "images/part_00002.png" in set(result.manifest["path"])


@pytest.mark.parametrize("mode", MODES)
def test_same_file_listed_twice(data, mode):
    first = _labels(data).iloc[0]
    _add_row(data, first["path"], first["label"])
    result = _check(data, mode, "duplicate_entry", first["path"], "labels.csv", "listed again")
    if result is not None:
        assert len(result.manifest) == 24  # the image itself is fine


def test_unknown_class_folder(tmp_path):
    write_parts_data(tmp_path / "d", PartsDataSpec(count=12, layout="class_folders"))
    stray = tmp_path / "d" / "images" / "rework"
    stray.mkdir()
    (stray / "x.png").write_bytes(_png(np.zeros((64, 64), np.uint8)))
    with pytest.raises(DataValidationError, match=r"x\.png: folder 'rework' is not a configured class"):
        ingest_images(str(tmp_path / "d"), ImageDataConfig(manifest=None))
    result = ingest_images(str(tmp_path / "d"), ImageDataConfig(manifest=None, on_invalid="skip"))
    assert [(s.path, s.reason) for s in result.skipped] == [("images/rework/x.png", "unknown_class")]


def test_several_problems_are_all_reported_in_skip_mode(data):
    (data / "images" / "part_00001.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (data / "images" / "part_00010.png").unlink()
    result = ingest_images(str(data), ImageDataConfig(on_invalid="skip"))
    assert {s.reason for s in result.skipped} == {"unreadable", "missing_file"}
    assert len(result.manifest) == 22


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("file,class\nimages/part_00001.png,ok\n", "column 'path' not found"),
        ("path,label\n", "no rows"),
    ],
)
def test_a_broken_manifest_is_always_an_error(data, content, message):
    (data / "labels.csv").write_text(content)
    with pytest.raises(DataValidationError, match=message):
        ingest_images(str(data), ImageDataConfig(on_invalid="skip"))


def test_nothing_valid_left_is_an_error(tmp_path):
    write_parts_data(tmp_path / "d", PartsDataSpec(count=3))
    with pytest.raises(DataValidationError, match="no valid images left"):
        ingest_images(str(tmp_path / "d"), ImageDataConfig(image_size=(32, 32), on_invalid="skip"))


def test_missing_image_folder(tmp_path):
    with pytest.raises(DataValidationError, match="image folder not found"):
        ingest_images(str(tmp_path), ImageDataConfig())


def test_config_rejects_inconsistent_classes():
    with pytest.raises(ConfigError, match="ok_class 'good' is not one of the classes"):
        validated(ImageDataConfig, {"ok_class": "good"}, "vision.yaml")
    with pytest.raises(ConfigError, match="did you mean 'on_invalid'"):
        validated(ImageDataConfig, {"on_invalide": "skip"}, "vision.yaml")


# --- S3 ----------------------------------------------------------------------------------------------------------


def test_reads_from_s3_like_from_a_folder(pristine, s3_bucket, tmp_path):
    uri = f"s3://{s3_bucket}/plant-7/images-2026-11"
    write_parts_data(uri, SPEC)
    from_s3 = ingest_images(uri, ImageDataConfig())
    local = ingest_images(str(pristine), ImageDataConfig())
    columns = ["path", "sha256", "label", "width", "height"]
    pd.testing.assert_frame_equal(from_s3.manifest[columns], local.manifest[columns])
    assert from_s3.manifest["uri"].iloc[0] == f"{uri}/images/part_00001.png"
    assert from_s3.profile["pixels"] == local.profile["pixels"]
    out = f"s3://{s3_bucket}/runs/1"
    write_outputs(from_s3, f"{out}/images.parquet", f"{out}/skipped.json", f"{out}/profile.json")
    pd.testing.assert_frame_equal(load_image_manifest(f"{out}/images.parquet"), from_s3.manifest)


def test_s3_bad_image_is_skipped_with_its_uri(s3_bucket):
    from shopfloor.common.storage import write_bytes

    uri = f"s3://{s3_bucket}/data"
    write_parts_data(uri, PartsDataSpec(count=6))
    write_bytes(f"{uri}/images/part_00002.png", _png(np.zeros((64, 64, 3), np.uint8)))
    with pytest.raises(DataValidationError, match=rf"s3://{s3_bucket}/data/images/part_00002.png: mode RGB"):
        ingest_images(uri, ImageDataConfig())
    result = ingest_images(uri, ImageDataConfig(on_invalid="skip"))
    assert [(s.path, s.reason) for s in result.skipped] == [("images/part_00002.png", "wrong_mode")]
