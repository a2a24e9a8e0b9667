"""Publish: only a blessed model reaches the store, as one complete version tree plus the latest pointer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopfloor.common.errors import StorageError
from shopfloor.common.storage import TREE_MANIFEST, S3Settings, exists, read_json, read_tree
from shopfloor.components.publish.publish import publish_model

VERSION = "20260101T000000Z-abc123"


@pytest.fixture
def model_files(tmp_path) -> dict[str, Path]:
    model = tmp_path / "model"
    (model / "saved_model" / "variables").mkdir(parents=True)
    (model / "model.keras").write_bytes(b"\x00keras weights\x01")
    (model / "shopfloor_model.json").write_text('{"features": ["temperature_c"]}\n')
    (model / "saved_model" / "saved_model.pb").write_bytes(b"pb")
    (model / "saved_model" / "variables" / "variables.index").write_bytes(b"idx")
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Model card: predictive-maintenance\n")
    return {"model": model, "card": card}


def _blessing(tmp_path: Path, blessed: bool) -> Path:
    path = tmp_path / "blessing.json"
    path.write_text(json.dumps({"blessed": blessed, "model_version": VERSION, "gate": {"passed": blessed}}))
    return path


def _folder(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_unblessed_model_is_refused_and_nothing_is_written(model_files, tmp_path):
    blessing = _blessing(tmp_path, blessed=False)
    store = tmp_path / "store"
    with pytest.raises(StorageError) as info:
        publish_model(str(model_files["model"]), str(model_files["card"]), str(blessing), str(store), "pm")
    message = str(info.value)
    assert message.startswith(f"{blessing}: blessed: ")
    assert "not blessed" in message
    assert not store.exists()


def test_blessing_without_verdict_is_refused(model_files, tmp_path):
    blessing = tmp_path / "blessing.json"
    blessing.write_text(json.dumps({"model_version": VERSION}))
    with pytest.raises(StorageError, match="not blessed"):
        publish_model(str(model_files["model"]), str(model_files["card"]), str(blessing), str(tmp_path / "s"), "pm")
    assert not (tmp_path / "s").exists()


def test_unblessed_model_writes_nothing_to_s3(model_files, tmp_path, s3_bucket):
    blessing = _blessing(tmp_path, blessed=False)
    with pytest.raises(StorageError, match="not blessed"):
        publish_model(str(model_files["model"]), str(model_files["card"]), str(blessing), f"s3://{s3_bucket}", "pm")
    client = S3Settings.from_env().client()
    assert list(client.list_objects(bucket_name=s3_bucket, recursive=True)) == []


def test_blessed_model_is_published_to_a_local_store(model_files, tmp_path):
    blessing = _blessing(tmp_path, blessed=True)
    store = tmp_path / "store"
    uri = publish_model(str(model_files["model"]), str(model_files["card"]), str(blessing), str(store), "pm")
    version_dir = store / "pm" / VERSION
    assert uri == str(version_dir)
    assert sorted(p.name for p in version_dir.iterdir()) == ["MODEL_CARD.md", "blessing.json", "model"]
    assert _folder(version_dir / "model") == _folder(model_files["model"])
    assert (version_dir / "MODEL_CARD.md").read_bytes() == model_files["card"].read_bytes()
    assert (version_dir / "blessing.json").read_bytes() == blessing.read_bytes()
    assert read_json(store / "pm" / "latest.json") == {"version": VERSION, "uri": uri}
    assert sorted(p.name for p in (store / "pm").iterdir()) == [VERSION, "latest.json"]


def test_republishing_a_version_replaces_it(model_files, tmp_path):
    blessing = _blessing(tmp_path, blessed=True)
    store = tmp_path / "store"
    publish_model(str(model_files["model"]), str(model_files["card"]), str(blessing), str(store), "pm")
    (model_files["model"] / "model.keras").unlink()
    publish_model(str(model_files["model"]), str(model_files["card"]), str(blessing), str(store), "pm")
    assert not (store / "pm" / VERSION / "model" / "model.keras").exists()
    assert sorted(p.name for p in (store / "pm").iterdir()) == [VERSION, "latest.json"]


def test_blessed_model_is_published_to_s3(model_files, tmp_path, s3_bucket):
    blessing = _blessing(tmp_path, blessed=True)
    store = f"s3://{s3_bucket}/models"
    uri = publish_model(str(model_files["model"]), str(model_files["card"]), str(blessing), store, "pm")
    assert uri == f"{store}/pm/{VERSION}"
    assert exists(uri)
    assert exists(f"{uri}/{TREE_MANIFEST}")
    assert read_json(f"{store}/pm/latest.json") == {"version": VERSION, "uri": uri}
    copy = read_tree(uri, tmp_path / "copy")
    expected = {f"model/{k}": v for k, v in _folder(model_files["model"]).items()}
    expected["MODEL_CARD.md"] = model_files["card"].read_bytes()
    expected["blessing.json"] = blessing.read_bytes()
    assert _folder(copy) == expected


def test_publish_to_missing_bucket_is_a_storage_error(model_files, tmp_path, s3_bucket):
    blessing = _blessing(tmp_path, blessed=True)
    with pytest.raises(StorageError, match="no such bucket"):
        publish_model(
            str(model_files["model"]), str(model_files["card"]), str(blessing), "s3://no-such-store-bucket", "pm"
        )
