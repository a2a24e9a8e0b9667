"""Publish: only a blessed model reaches the store, as one complete version tree plus the latest pointer."""

from __future__ import annotations

import contextlib
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


def test_a_published_version_is_never_rewritten(model_files, tmp_path):
    blessing = _blessing(tmp_path, blessed=True)
    store = tmp_path / "store"
    publish_model(str(model_files["model"]), str(model_files["card"]), str(blessing), str(store), "pm")
    published = _folder(store / "pm" / VERSION)
    model_files["card"].write_text("# a card written later\n")
    (model_files["model"] / "model.keras").unlink()
    publish_model(str(model_files["model"]), str(model_files["card"]), str(blessing), str(store), "pm")
    assert _folder(store / "pm" / VERSION) == published, "republishing the version is a no-op"
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


@contextlib.contextmanager
def _failing_puts(fail_at: int):
    """Crash injection: the S3 client's put_object fails from the ``fail_at``-th call on, as a crashed upload would."""
    from minio import Minio

    original = Minio.put_object
    calls = 0

    def put_object(client, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls >= fail_at:
            raise ConnectionError("injected: the publisher died mid-upload")
        return original(client, *args, **kwargs)

    Minio.put_object = put_object  # type: ignore[method-assign]
    try:
        yield
    finally:
        Minio.put_object = original  # type: ignore[method-assign]


def _second_version(model_files, tmp_path: Path) -> Path:
    """A blessing for a second version of the model (another archive, so another name)."""
    path = tmp_path / "blessing-2.json"
    path.write_text(json.dumps({"blessed": True, "model_version": "v-second000002", "gate": {"passed": True}}))
    return path


def test_republishing_the_production_version_while_s3_fails_keeps_it_readable(
    model_files, tmp_path, s3_bucket, monkeypatch
):
    store = f"s3://{s3_bucket}/models"
    blessing = _blessing(tmp_path, blessed=True)
    uri = publish_model(str(model_files["model"]), str(model_files["card"]), str(blessing), store, "pm")
    with _failing_puts(fail_at=1), pytest.raises(StorageError):  # only the pointer is rewritten: that write fails
        publish_model(str(model_files["model"]), str(model_files["card"]), str(blessing), store, "pm")
    assert exists(f"{uri}/{TREE_MANIFEST}"), "the production version's manifest was never deleted"
    assert read_tree(uri, tmp_path / "copy") and read_json(f"{store}/pm/latest.json")["version"] == VERSION


@pytest.mark.parametrize("fail_at", range(1, 9))
def test_a_crash_at_any_upload_step_leaves_production_whole_and_the_next_publish_sweeps(
    model_files, tmp_path, s3_bucket, monkeypatch, fail_at
):
    from shopfloor.components.publish.publish import sweep_incomplete_versions
    from shopfloor.contracts.model_store import ModelStore

    store = f"s3://{s3_bucket}/models"
    first = publish_model(
        str(model_files["model"]), str(model_files["card"]), str(_blessing(tmp_path, True)), store, "pm"
    )
    (model_files["model"] / "model.keras").write_bytes(b"\x00other weights\x02")
    second = _second_version(model_files, tmp_path)
    with _failing_puts(fail_at), pytest.raises(StorageError):  # 6 files, the manifest, then latest.json: 8 puts
        publish_model(str(model_files["model"]), str(model_files["card"]), str(second), store, "pm")
    latest = read_json(f"{store}/pm/latest.json")
    assert latest["version"] == VERSION and read_tree(first, tmp_path / "production"), "production untouched"
    orphaned = sweep_incomplete_versions(ModelStore(store), "pm", older_than_s=0)
    left_objects = 2 <= fail_at <= 7  # some files went up, the manifest did not
    assert orphaned == ([f"{store}/pm/v-second000002"] if left_objects else [])
    complete = fail_at == 8  # only the pointer's write failed: the version is whole, and stays
    assert ModelStore(store).versions("pm") == (["v-second000002"] if complete else [])
    uri = publish_model(str(model_files["model"]), str(model_files["card"]), str(second), store, "pm")
    assert read_json(f"{store}/pm/latest.json")["version"] == "v-second000002" and read_tree(uri, tmp_path / "new")


def test_a_killed_local_publish_leaves_a_scratch_folder_the_sweep_removes(model_files, tmp_path):
    import os
    import time

    from shopfloor.components.publish.publish import sweep_incomplete_versions
    from shopfloor.contracts.model_store import ModelStore

    store = tmp_path / "store"
    publish_model(str(model_files["model"]), str(model_files["card"]), str(_blessing(tmp_path, True)), str(store), "pm")
    scratch = store / "pm" / ".v-second000002.x1y2.partial"
    (scratch / "model").mkdir(parents=True)
    (scratch / "model" / "model.keras").write_bytes(b"half")
    assert sweep_incomplete_versions(ModelStore(str(store)), "pm") == [], "a young one may be a live upload"
    old = time.time() - 7200
    os.utime(scratch, (old, old))
    assert sweep_incomplete_versions(ModelStore(str(store)), "pm") == [str(scratch)]
    assert sorted(p.name for p in (store / "pm").iterdir()) == [VERSION, "latest.json"]
