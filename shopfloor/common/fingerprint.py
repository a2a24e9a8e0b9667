"""A content fingerprint of a data source, so that a cache key follows the data and not its URI.

KFP caches a task by its inputs; a URI is the same string before and after the plant appends a day of readings.
The pipelines' first step (never cached) fingerprints the sources and hands the fingerprint to ingest, whose cache
key then changes exactly when the content does. Local files are hashed byte by byte; S3 objects by their ETag
(the server's hash of the content) and size, so nothing is downloaded twice. A folder or prefix is the sorted
list of its files' relative names and fingerprints.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from shopfloor.common.errors import StorageError
from shopfloor.common.storage import S3Settings, is_s3_uri, parse_s3_uri, s3_error

__all__ = ["fingerprint"]

_CHUNK = 1 << 20


def _local_file(path: Path) -> str:
    """sha256 of a local file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _local(uri: str) -> list[tuple[str, str]]:
    """(relative name, content hash) of a local file, or of every file under a local folder."""
    root = Path(uri)
    if root.is_file():
        return [("", _local_file(root))]
    if not root.is_dir():
        raise StorageError(uri, "file not found", expected="an existing file or folder")
    return [
        (path.relative_to(root).as_posix(), _local_file(path))
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    ]


def _s3(uri: str) -> list[tuple[str, str]]:
    """(relative key, ETag and size) of an S3 object, or of every object under an S3 prefix."""
    location = parse_s3_uri(uri)
    client = S3Settings.from_env().client()
    try:
        if location.key and not location.key.endswith("/"):
            try:
                found = client.stat_object(bucket_name=location.bucket, object_name=location.key)
                return [("", f"{found.etag}:{found.size}")]
            except Exception as exc:
                if getattr(exc, "code", None) not in ("NoSuchKey", "NotFound", "ResourceNotFound"):
                    raise
        prefix = location.key.rstrip("/") + "/" if location.key.strip("/") else ""
        objects = client.list_objects(bucket_name=location.bucket, prefix=prefix, recursive=True)
        listed = [(o.object_name[len(prefix) :], f"{o.etag}:{o.size}") for o in objects if not o.is_dir]
    except Exception as exc:
        raise s3_error(uri, exc) from None
    if not listed:
        raise StorageError(uri, "no such object or prefix", expected="an existing S3 object or prefix")
    return sorted(listed)


def fingerprint(uri: str | os.PathLike) -> str:
    """A sha256 that changes when the content of the file, folder, S3 object or S3 prefix at ``uri`` changes."""
    entries = _s3(str(uri)) if is_s3_uri(uri) else _local(str(uri))
    digest = hashlib.sha256()
    for name, content in entries:
        digest.update(f"{name}\0{content}\n".encode())
    return digest.hexdigest()
