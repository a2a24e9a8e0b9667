"""Storage: local and S3 (moto server over HTTP) I/O, atomic writes, trees, errors without secrets."""

from __future__ import annotations

import io
import json
import os
import socket
import time
import traceback
from pathlib import Path

import pytest
from urllib3.util.retry import Retry

from shopfloor.common import storage
from shopfloor.common.errors import StorageError
from shopfloor.common.storage import (
    TREE_MANIFEST,
    S3Location,
    S3Settings,
    atomic_output_dir,
    atomic_write_bytes,
    exists,
    join_uri,
    parse_s3_uri,
    read_bytes,
    read_json,
    read_tree,
    write_bytes,
    write_json,
    write_tree,
)


def _closed_port() -> int:
    """A localhost port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _make_tree(root: Path) -> dict[str, bytes]:
    """A nested folder with text, binary and empty files; returns {relative path: content}."""
    files = {
        "model.keras": os.urandom(2048),
        "shopfloor_model.json": b'{"features": ["a", "b"]}\n',
        "saved_model/saved_model.pb": os.urandom(512),
        "saved_model/variables/variables.index": b"",
        "saved_model/variables/variables.data-00000-of-00001": os.urandom(4096),
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def _read_folder(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _client():
    return S3Settings.from_env().client()


@pytest.fixture
def secret(s3_bucket) -> str:
    """The secret key the s3_bucket fixture put in the environment (conftest's S3_SECRET_KEY)."""
    value = os.environ["AWS_SECRET_ACCESS_KEY"]
    assert value == "shopfloor-test-secret-do-not-log"
    return value


# --- local files -------------------------------------------------------------------------------------------------


def test_local_write_read_round_trip_creates_parent_folders(tmp_path):
    target = tmp_path / "a" / "b" / "data.bin"
    payload = bytes(range(256)) * 10
    write_bytes(target, payload)
    assert read_bytes(target) == payload
    write_bytes(str(target), b"second")
    assert read_bytes(str(target)) == b"second"
    assert os.listdir(target.parent) == ["data.bin"]


def test_local_json_round_trip_is_sorted_and_stable(tmp_path):
    document = {"b": [1, 2.5, None], "a": {"nested": True}}
    write_json(tmp_path / "doc.json", document)
    first = (tmp_path / "doc.json").read_bytes()
    assert read_json(tmp_path / "doc.json") == document
    assert first.index(b'"a"') < first.index(b'"b"')
    write_json(tmp_path / "doc.json", dict(reversed(list(document.items()))))
    assert (tmp_path / "doc.json").read_bytes() == first


def test_read_missing_local_file_is_storage_error(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(StorageError, match="file not found") as info:
        read_bytes(missing)
    assert str(missing) in str(info.value)


def test_read_json_of_invalid_json_names_the_line(tmp_path):
    (tmp_path / "bad.json").write_text('{\n  "a": 1,\n  oops\n}\n')
    with pytest.raises(StorageError, match=r"not valid JSON \(line 3\)") as info:
        read_json(tmp_path / "bad.json")
    assert "bad.json" in str(info.value)


def test_atomic_write_bytes_failing_write_leaves_no_partial_and_keeps_old_content(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old content")

    class NotBytes:  # handle.write() cannot convert this to bytes: fails after the temp file exists
        pass

    with pytest.raises(TypeError):
        atomic_write_bytes(target, NotBytes())
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]
    assert target.read_bytes() == b"old content"


def test_atomic_write_bytes_failing_fsync_leaves_no_partial(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "out.bin"

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(storage.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="Input/output error"):
        atomic_write_bytes(target, b"x" * 100_000)
    assert os.listdir(tmp_path / "sub") == []
    assert not target.exists()


def test_atomic_output_dir_on_error_leaves_no_target_and_no_scratch(tmp_path):
    target = tmp_path / "artifact"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output_dir(target) as scratch:
            (scratch / "half.txt").write_text("half written")
            assert scratch.parent == tmp_path
            raise RuntimeError("boom")
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_atomic_output_dir_on_error_keeps_existing_target(tmp_path):
    target = tmp_path / "artifact"
    target.mkdir()
    (target / "keep.txt").write_text("previous")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output_dir(target) as scratch:
            (scratch / "new.txt").write_text("new")
            raise KeyboardInterrupt
    assert _read_folder(target) == {"keep.txt": b"previous"}
    assert os.listdir(tmp_path) == ["artifact"]


def test_atomic_output_dir_success_replaces_existing_folder_completely(tmp_path):
    target = tmp_path / "artifact"
    (target / "stale_dir").mkdir(parents=True)
    (target / "stale_dir" / "old.txt").write_text("old")
    (target / "shared.txt").write_text("old")
    with atomic_output_dir(target) as scratch:
        assert not (scratch / "shared.txt").exists()
        (scratch / "shared.txt").write_text("new")
        (scratch / "fresh.txt").write_text("fresh")
    assert _read_folder(target) == {"shared.txt": b"new", "fresh.txt": b"fresh"}
    assert os.listdir(tmp_path) == ["artifact"]  # no scratch, no retired copy


def test_atomic_output_dir_tolerates_a_leftover_retired_folder(tmp_path):
    target = tmp_path / "artifact"
    target.mkdir()
    (target / "v1.txt").write_text("v1")
    leftover = tmp_path / f".artifact.old-{os.getpid()}"
    leftover.mkdir()
    (leftover / "crashed.txt").write_text("from a crashed run")
    with atomic_output_dir(target) as scratch:
        (scratch / "v2.txt").write_text("v2")
    assert _read_folder(target) == {"v2.txt": b"v2"}


def test_local_tree_round_trip(tmp_path):
    source = tmp_path / "src"
    files = _make_tree(source)
    write_tree(source, tmp_path / "store" / "tree")
    assert _read_folder(tmp_path / "store" / "tree") == files
    out = read_tree(tmp_path / "store" / "tree", tmp_path / "copy")
    assert out == tmp_path / "copy"
    assert _read_folder(out) == files


def test_read_tree_of_missing_local_folder(tmp_path):
    with pytest.raises(StorageError, match="folder not found"):
        read_tree(tmp_path / "missing", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- URIs --------------------------------------------------------------------------------------------------------


def test_parse_s3_uri():
    assert parse_s3_uri("s3://bucket/a/b.csv") == S3Location("bucket", "a/b.csv")
    assert parse_s3_uri("s3://bucket") == S3Location("bucket", "")
    for bad in ("s3:///key", "/local/path", "http://bucket/key"):
        with pytest.raises(StorageError, match="not an S3 URI"):
            parse_s3_uri(bad)


def test_join_uri():
    assert join_uri("s3://bucket/prefix/", "model", "/v1/") == "s3://bucket/prefix/model/v1"
    assert join_uri("s3://bucket", "a.csv") == "s3://bucket/a.csv"
    assert join_uri("/data/store", "model", "v1") == str(Path("/data/store/model/v1"))


# --- S3 settings -------------------------------------------------------------------------------------------------


def test_settings_from_s3_endpoint_without_scheme_and_https_off():
    settings = S3Settings.from_env({"S3_ENDPOINT": "minio.kubeflow:9000", "S3_USE_HTTPS": "0"})
    assert settings.endpoint == "minio.kubeflow:9000"
    assert settings.secure is False
    assert S3Settings.from_env({"S3_ENDPOINT": "minio:9000", "S3_USE_HTTPS": "false"}).secure is False
    assert S3Settings.from_env({"S3_ENDPOINT": "minio:9000"}).secure is True


def test_settings_aws_endpoint_url_wins_and_credentials_are_read():
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "S3_ENDPOINT": "other:1",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    settings = S3Settings.from_env(env)
    assert (settings.endpoint, settings.secure) == ("127.0.0.1:9000", False)
    assert (settings.access_key, settings.secret_key, settings.region) == ("key", "secret", "eu-west-1")


def test_settings_default_to_aws_over_https():
    settings = S3Settings.from_env({})
    assert (settings.endpoint, settings.secure) == ("s3.amazonaws.com", True)


@pytest.mark.parametrize("endpoint", ["ftp://minio:9000", "http://", "https:///bucket"])
def test_settings_invalid_endpoint(endpoint):
    with pytest.raises(StorageError, match="invalid S3 endpoint") as info:
        S3Settings.from_env({"AWS_ENDPOINT_URL": endpoint})
    assert "AWS_ENDPOINT_URL" in str(info.value)


def test_settings_repr_hides_secret(secret):
    settings = S3Settings.from_env()
    assert settings.secret_key == secret
    assert secret not in repr(settings)
    assert secret not in str(settings)


# --- S3 objects --------------------------------------------------------------------------------------------------


def test_s3_bytes_and_json_round_trip(s3_bucket):
    uri = f"s3://{s3_bucket}/runs/1/data.bin"
    payload = os.urandom(1000)
    write_bytes(uri, payload)
    assert read_bytes(uri) == payload
    document = {"metrics": {"roc_auc": 0.91}, "features": ["a", "b"], "blessed": True}
    write_json(f"s3://{s3_bucket}/runs/1/metrics.json", document)
    assert read_json(f"s3://{s3_bucket}/runs/1/metrics.json") == document


def test_s3_large_object_round_trips_through_multipart(s3_bucket):
    uri = f"s3://{s3_bucket}/big.bin"
    payload = os.urandom(16 * 1024 * 1024 + 123_457)
    write_bytes(uri, payload)
    assert read_bytes(uri) == payload
    etag = _client().stat_object(bucket_name=s3_bucket, object_name="big.bin").etag
    assert etag.strip('"').endswith("-2")  # uploaded in two parts


def test_s3_exists_for_object_missing_key_and_complete_tree(s3_bucket, tmp_path):
    write_bytes(f"s3://{s3_bucket}/obj.txt", b"x")
    assert exists(f"s3://{s3_bucket}/obj.txt")
    assert not exists(f"s3://{s3_bucket}/missing.txt")
    assert not exists(f"s3://{s3_bucket}/tree")
    _make_tree(tmp_path / "src")
    write_tree(tmp_path / "src", f"s3://{s3_bucket}/tree")
    assert exists(f"s3://{s3_bucket}/tree")
    assert exists(f"s3://{s3_bucket}/tree/")


def test_s3_exists_is_false_for_a_tree_without_manifest(s3_bucket):
    write_bytes(f"s3://{s3_bucket}/partial/model.keras", b"weights")
    assert not exists(f"s3://{s3_bucket}/partial")


def test_s3_tree_round_trip(s3_bucket, tmp_path):
    files = _make_tree(tmp_path / "src")
    uri = f"s3://{s3_bucket}/models/pm/v1"
    write_tree(tmp_path / "src", uri)
    manifest = read_json(f"{uri}/{TREE_MANIFEST}")
    assert sorted(manifest["files"]) == sorted(files)
    out = read_tree(uri, tmp_path / "copy")
    assert _read_folder(out) == files


def test_s3_tree_rewrite_replaces_content(s3_bucket, tmp_path):
    uri = f"s3://{s3_bucket}/tree"
    _make_tree(tmp_path / "v1")
    write_tree(tmp_path / "v1", uri)
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "only.txt").write_text("v2")
    write_tree(tmp_path / "v2", uri)
    assert _read_folder(read_tree(uri, tmp_path / "copy")) == {"only.txt": b"v2"}


def test_s3_tree_without_manifest_is_refused(s3_bucket, tmp_path):
    client = _client()
    for name in ("model.keras", "saved_model/saved_model.pb"):
        client.put_object(bucket_name=s3_bucket, object_name=f"half/{name}", data=io.BytesIO(b"data"), length=4)
    with pytest.raises(StorageError, match="incomplete") as info:
        read_tree(f"s3://{s3_bucket}/half", tmp_path / "out")
    assert f"s3://{s3_bucket}/half" in str(info.value)
    assert TREE_MANIFEST in str(info.value)
    assert not (tmp_path / "out").exists()
    assert os.listdir(tmp_path) == []


def test_s3_tampered_tree_is_refused(s3_bucket, tmp_path):
    _make_tree(tmp_path / "src")
    uri = f"s3://{s3_bucket}/tree"
    write_tree(tmp_path / "src", uri)
    client = _client()
    client.put_object(bucket_name=s3_bucket, object_name="tree/shopfloor_model.json", data=io.BytesIO(b"{}"), length=2)
    target = tmp_path / "out"
    with pytest.raises(StorageError, match="hash does not match") as info:
        read_tree(uri, target)
    assert f"{uri}/shopfloor_model.json" in str(info.value)
    assert not target.exists()
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_s3_missing_object(s3_bucket):
    uri = f"s3://{s3_bucket}/nothing/here.csv"
    with pytest.raises(StorageError, match="no such object") as info:
        read_bytes(uri)
    assert str(info.value).startswith(uri)


def test_s3_missing_bucket(s3_bucket, secret):
    uri = "s3://no-such-bucket-here/data.csv"
    with pytest.raises(StorageError, match="no such bucket") as info:
        read_bytes(uri)
    assert uri in str(info.value)
    with pytest.raises(StorageError, match="no such bucket"):
        write_bytes(uri, b"x")
    assert secret not in str(info.value)


# --- secrets never in errors -------------------------------------------------------------------------------------


def test_unreachable_endpoint_errors_name_the_uri_not_the_secret(s3_bucket, secret, monkeypatch, tmp_path):
    # moto accepts any credentials, so a wrong secret cannot be provoked; an endpoint where nothing listens can.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    # urllib3 backs off between minio's retries (~6 s per call); the retries still happen, only without sleeping.
    monkeypatch.setattr(Retry, "get_backoff_time", lambda self: 0)
    uri = f"s3://{s3_bucket}/secret-test/data.bin"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f.txt").write_text("x")
    calls = {
        "read_bytes": lambda: read_bytes(uri),
        "write_bytes": lambda: write_bytes(uri, b"payload"),
        "exists": lambda: exists(uri),
        "write_tree": lambda: write_tree(tmp_path / "src", uri),
        "read_tree": lambda: read_tree(uri, tmp_path / "out"),
    }
    started = time.monotonic()
    for name, call in calls.items():
        with pytest.raises(StorageError) as info:
            call()
        message = str(info.value)
        assert uri in message, name
        assert "\n" not in message, name
        assert secret not in message, name
        assert secret not in "".join(traceback.format_exception(info.value)), name
    assert time.monotonic() - started < 10
    assert not (tmp_path / "out").exists()


def test_storage_errors_are_json_safe_one_liners(s3_bucket):
    with pytest.raises(StorageError) as info:
        read_bytes(f"s3://{s3_bucket}/missing")
    assert json.loads(json.dumps(str(info.value))) == str(info.value)
    assert "\n" not in str(info.value)


def test_read_tree_on_unreachable_store_reports_the_request_failure(s3_bucket, monkeypatch, tmp_path):
    _make_tree(tmp_path / "src")
    uri = f"s3://{s3_bucket}/tree"
    write_tree(tmp_path / "src", uri)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(Retry, "get_backoff_time", lambda self: 0)
    with pytest.raises(StorageError) as info:
        read_tree(uri, tmp_path / "out")
    assert "gave no answer in 4 tries" in str(info.value)
    assert "incomplete" not in str(info.value)


# --- bounded waits -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("budget_s", [3, 6])
def test_a_store_that_never_answers_fails_within_the_budget_in_one_line(frozen_store, monkeypatch, budget_s):
    # before: 60 s read timeout per try and four tries, so 244 s until `shopfloor serve s3://...` gave up
    monkeypatch.setenv(storage.S3_BUDGET_ENV, str(budget_s))
    started = time.monotonic()
    with pytest.raises(StorageError) as info:
        read_bytes("s3://models/pm/latest.json")
    elapsed = time.monotonic() - started
    assert budget_s * 0.5 < elapsed < budget_s + 2  # all four tries ran, and together they kept to the budget
    assert str(info.value) == (
        f"s3://models/pm/latest.json: S3 endpoint gave no answer in 4 tries within the {budget_s} s budget "
        f"(MaxRetryError) (expected a reachable store, or a larger SHOPFLOOR_S3_BUDGET_S)"
    )


def test_the_default_budget_is_a_minute_over_all_tries() -> None:
    connect_s, read_s = storage.s3_timeouts(storage.s3_budget_s({}))
    backoff_s = 0.2 + 0.4 + 0.8
    assert 4 * (connect_s + read_s) + backoff_s == pytest.approx(60.0)
    assert read_s >= 9.0  # a read timeout bounds each silent gap, not a download: big objects still stream


@pytest.mark.parametrize("raw", ["soon", "0", "-5", "1e9"])
def test_an_invalid_budget_is_one_line_naming_the_variable(raw: str) -> None:
    with pytest.raises(StorageError, match=r"^SHOPFLOOR_S3_BUDGET_S: invalid value .* \(expected seconds between"):
        storage.s3_budget_s({storage.S3_BUDGET_ENV: raw})
