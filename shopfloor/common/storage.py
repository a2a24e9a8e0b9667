"""Artifact I/O for local paths and ``s3://bucket/key`` URIs (MinIO or any S3 endpoint), with atomic writes.

Readers never see half an artifact: a local file or folder is written beside its target and renamed into
place; an S3 object becomes visible only when its upload completes, and a folder ("tree") on S3 is read only
once its manifest, uploaded last, lists every file. Endpoint and credentials come from the environment
(``AWS_ENDPOINT_URL`` or ``S3_ENDPOINT`` + ``S3_USE_HTTPS``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION``), as KFP and KServe read them from a Kubernetes Secret: never from code or YAML.

Every S3 call is bounded: ``SHOPFLOOR_S3_BUDGET_S`` (default 60 s) covers all of a call's tries (four) with their
connect and read timeouts, so a store that accepts connections and never answers fails a step or a server start
in about a minute, with one line, instead of minio's default of minutes per try.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

from shopfloor.common.errors import StorageError

__all__ = [
    "DEFAULT_S3_BUDGET_S",
    "S3_BUDGET_ENV",
    "TREE_MANIFEST",
    "S3Location",
    "S3Settings",
    "atomic_output_dir",
    "atomic_write_bytes",
    "exists",
    "is_s3_uri",
    "join_uri",
    "list_documents",
    "list_files",
    "parse_s3_uri",
    "read_bytes",
    "read_json",
    "incomplete_trees",
    "read_tree",
    "remove_tree",
    "s3_budget_s",
    "s3_error",
    "s3_timeouts",
    "sha256_hex",
    "write_bytes",
    "write_json",
    "write_tree",
]

TREE_MANIFEST = "_SHOPFLOOR_TREE.json"
_S3_PART_SIZE = 16 * 1024 * 1024
S3_BUDGET_ENV = "SHOPFLOOR_S3_BUDGET_S"
DEFAULT_S3_BUDGET_S = 60.0
_S3_TRIES = 4  # the first try and three retries
_RETRY_BACKOFF_S = 0.2  # waits 0.2, 0.4, 0.8 s between tries
_GAVE_UP = ("MaxRetryError", "ConnectTimeoutError", "ReadTimeoutError", "NewConnectionError", "ProtocolError")


@dataclasses.dataclass(frozen=True)
class S3Location:
    """A parsed ``s3://bucket/key`` URI."""

    bucket: str
    key: str


@dataclasses.dataclass(frozen=True)
class S3Settings:
    """Where the S3 endpoint is and how to authenticate; the secret is kept out of ``repr`` and errors."""

    endpoint: str
    secure: bool
    access_key: str | None
    secret_key: str | None = dataclasses.field(repr=False)
    region: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3Settings:
        """Read the endpoint and credentials from environment variables (AWS names, as KServe uses)."""
        env = os.environ if environ is None else environ
        url = env.get("AWS_ENDPOINT_URL") or env.get("S3_ENDPOINT") or "https://s3.amazonaws.com"
        if "://" not in url:
            url = ("https" if env.get("S3_USE_HTTPS", "1") not in ("0", "false", "False") else "http") + "://" + url
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise StorageError("AWS_ENDPOINT_URL", f"invalid S3 endpoint {url!r}", expected="http(s)://host[:port]")
        return cls(
            endpoint=parsed.netloc,
            secure=parsed.scheme == "https",
            access_key=env.get("AWS_ACCESS_KEY_ID"),
            secret_key=env.get("AWS_SECRET_ACCESS_KEY"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
        )

    def client(self):
        """A ``minio.Minio`` client for these settings."""
        import certifi
        import urllib3
        from minio import Minio

        # bounded waits: a store that silently drops packets must not stall a step or a server's shutdown for
        # minio's default 5 minutes per call; the tries' timeouts add up to the budget
        connect_s, read_s = s3_timeouts(s3_budget_s())
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_s, read=read_s),
            retries=urllib3.Retry(
                total=_S3_TRIES - 1, backoff_factor=_RETRY_BACKOFF_S, status_forcelist=[500, 502, 503, 504]
            ),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=self.secure,
            region=self.region,
            http_client=http,
        )


def s3_budget_s(environ: Mapping[str, str] | None = None) -> float:
    """The seconds one S3 call may take over all its tries: ``SHOPFLOOR_S3_BUDGET_S``, default 60."""
    raw = (os.environ if environ is None else environ).get(S3_BUDGET_ENV, "")
    if not raw:
        return DEFAULT_S3_BUDGET_S
    try:
        budget = float(raw)
    except ValueError:
        budget = -1.0
    if not 1.0 <= budget <= 3600.0:
        raise StorageError(S3_BUDGET_ENV, f"invalid value {raw!r}", expected="seconds between 1 and 3600")
    return budget


def s3_timeouts(budget_s: float) -> tuple[float, float]:
    """Connect and read timeouts per try such that all tries and their backoff waits fit in ``budget_s``."""
    backoff_s = sum(_RETRY_BACKOFF_S * 2**n for n in range(_S3_TRIES - 1))
    per_try_s = max(budget_s - backoff_s, 0.3 * _S3_TRIES) / _S3_TRIES
    return per_try_s / 3, per_try_s * 2 / 3


def is_s3_uri(uri: str | os.PathLike) -> bool:
    """Whether ``uri`` names an S3 object or prefix rather than a local path."""
    return str(uri).startswith("s3://")


def parse_s3_uri(uri: str) -> S3Location:
    """Split ``s3://bucket/key`` into bucket and key, rejecting URIs without a bucket."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StorageError(uri, "not an S3 URI", expected="s3://bucket/key")
    return S3Location(bucket=parsed.netloc, key=parsed.path.lstrip("/"))


def join_uri(base: str | os.PathLike, *parts: str) -> str:
    """Join path segments onto a local path or an S3 URI."""
    if is_s3_uri(base):
        return "/".join([str(base).rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base, *parts))


def sha256_hex(data: bytes) -> str:
    """Content hash used to identify data and models in lineage and model cards."""
    return hashlib.sha256(data).hexdigest()


def s3_error(uri: str, exc: Exception) -> StorageError:
    """Turn a minio/urllib3 failure into a one-line error without credentials in it."""
    code = getattr(exc, "code", None) or type(exc).__name__
    if code in ("NoSuchKey", "NoSuchBucket"):
        return StorageError(uri, "no such object" if code == "NoSuchKey" else "no such bucket")
    if code in _GAVE_UP:
        return StorageError(
            uri,
            f"S3 endpoint gave no answer in {_S3_TRIES} tries within the {s3_budget_s():g} s budget ({code})",
            expected=f"a reachable store, or a larger {S3_BUDGET_ENV}",
        )
    return StorageError(uri, f"S3 request failed ({code})")


def read_bytes(uri: str | os.PathLike) -> bytes:
    """Read a whole file or S3 object."""
    if not is_s3_uri(uri):
        path = Path(uri)
        if not path.is_file():
            raise StorageError(str(path), "file not found")
        return path.read_bytes()
    location = parse_s3_uri(str(uri))
    try:
        response = S3Settings.from_env().client().get_object(bucket_name=location.bucket, object_name=location.key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()
    except StorageError:
        raise
    except Exception as exc:  # minio raises S3Error, urllib3 raises connection errors
        raise s3_error(str(uri), exc) from None


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a local file so that readers see the old content or the new, never a part."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _put_object(client, location: S3Location, data: bytes, uri: str) -> None:
    """Upload one object; S3 makes it visible only once complete, so this is atomic."""
    try:
        client.put_object(
            bucket_name=location.bucket,
            object_name=location.key,
            data=io.BytesIO(data),
            length=len(data),
            part_size=_S3_PART_SIZE,
        )
    except Exception as exc:
        raise s3_error(uri, exc) from None


def write_bytes(uri: str | os.PathLike, data: bytes) -> None:
    """Write a whole file or S3 object atomically."""
    if not is_s3_uri(uri):
        atomic_write_bytes(uri, data)
        return
    _put_object(S3Settings.from_env().client(), parse_s3_uri(str(uri)), data, str(uri))


def read_json(uri: str | os.PathLike) -> dict:
    """Read a JSON document from a local path or S3."""
    raw = read_bytes(uri)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StorageError(str(uri), f"not valid JSON (line {exc.lineno})") from None


def write_json(uri: str | os.PathLike, document: object) -> None:
    """Write a JSON document atomically, with sorted keys so equal content gives equal bytes."""
    write_bytes(uri, (json.dumps(document, indent=2, sort_keys=True, default=str) + "\n").encode())


def exists(uri: str | os.PathLike) -> bool:
    """Whether a local path, an S3 object, or a complete S3 tree exists at ``uri``."""
    if not is_s3_uri(uri):
        return Path(uri).exists()
    location = parse_s3_uri(str(uri))
    client = S3Settings.from_env().client()
    if not location.key.strip("/"):
        try:
            return client.bucket_exists(bucket_name=location.bucket)
        except Exception as exc:
            raise s3_error(str(uri), exc) from None
    for key in (location.key, f"{location.key.rstrip('/')}/{TREE_MANIFEST}"):
        try:
            client.stat_object(bucket_name=location.bucket, object_name=key)
            return True
        except Exception as exc:
            if getattr(exc, "code", None) not in ("NoSuchKey", "NoSuchBucket", "NotFound", "ResourceNotFound"):
                raise s3_error(str(uri), exc) from None
    return False


def list_files(uri: str | os.PathLike) -> list[str]:
    """Every file (S3 object) under a local folder or S3 prefix, as sorted full URIs; empty if none."""
    if not is_s3_uri(uri):
        root = Path(uri)
        return [str(root / name) for name in _tree_files(root)] if root.is_dir() else []
    location = parse_s3_uri(str(uri))
    prefix = location.key.rstrip("/") + "/" if location.key.strip("/") else ""
    try:
        objects = (
            S3Settings.from_env().client().list_objects(bucket_name=location.bucket, prefix=prefix, recursive=True)
        )
        return sorted(f"s3://{location.bucket}/{o.object_name}" for o in objects if not o.is_dir)
    except Exception as exc:
        raise s3_error(str(uri), exc) from None


def list_documents(uri: str | os.PathLike, suffix: str = ".json") -> list[str]:
    """The finished files with ``suffix`` under ``uri``, leaving out a local writer's hidden temporary files.

    Readers of one-file-per-record folders (approval requests, operator feedback) never parse a half-written one.
    """
    found = []
    for item in list_files(uri):
        name = item.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
        if name.endswith(suffix) and not name.startswith("."):
            found.append(item)
    return found


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a scratch folder that replaces ``path`` only if the block succeeds; removed otherwise."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial"))
    try:
        yield scratch
        if target.exists():
            # a fresh, empty name to move the old folder to: rename(2) may replace an empty folder
            retired = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
            os.replace(target, retired)
            os.replace(scratch, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(scratch, target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _tree_files(root: Path) -> list[str]:
    """Relative POSIX paths of every file under ``root``, sorted for reproducible manifests."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def write_tree(local_dir: str | os.PathLike, uri: str | os.PathLike) -> None:
    """Copy a local folder to a local path or S3 prefix; readers see it only once complete."""
    source = Path(local_dir)
    files = _tree_files(source)
    if not is_s3_uri(uri):
        with atomic_output_dir(uri) as scratch:
            shutil.copytree(source, scratch, dirs_exist_ok=True)
        return
    base = parse_s3_uri(str(uri))
    prefix = base.key.rstrip("/")
    client = S3Settings.from_env().client()
    manifest = S3Location(base.bucket, f"{prefix}/{TREE_MANIFEST}")
    try:  # an older tree here is incomplete from now until the new manifest lands
        client.remove_object(bucket_name=manifest.bucket, object_name=manifest.key)
    except Exception as exc:
        if getattr(exc, "code", None) not in ("NoSuchKey", "NoSuchBucket"):
            raise s3_error(str(uri), exc) from None
    hashes = {}
    for name in files:
        data = (source / name).read_bytes()
        hashes[name] = sha256_hex(data)
        _put_object(client, S3Location(base.bucket, f"{prefix}/{name}"), data, join_uri(uri, name))
    payload = json.dumps({"files": hashes}, indent=2, sort_keys=True).encode()
    _put_object(client, manifest, payload, join_uri(uri, TREE_MANIFEST))


def _read_manifest(uri: str) -> dict[str, str]:
    """The {relative name: sha256} map of a complete S3 tree; a missing manifest means an incomplete tree."""
    location = join_uri(uri, TREE_MANIFEST)
    try:
        raw = read_bytes(location)
    except StorageError as exc:
        if exc.problem in ("no such object", "no such bucket"):
            raise StorageError(uri, "incomplete or missing artifact", expected=f"a tree with {TREE_MANIFEST}") from None
        raise
    try:
        files = json.loads(raw)["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise StorageError(location, "corrupt tree manifest", expected='JSON {"files": {name: sha256}}') from None
    for name in files:
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
            raise StorageError(location, f"unsafe file name {name!r} in tree manifest", expected="relative names")
    return files


def incomplete_trees(uri: str | os.PathLike, older_than_s: float) -> list[str]:
    """Trees under ``uri`` that a crashed writer left unfinished, untouched for ``older_than_s`` seconds.

    On S3: a child prefix with objects but no tree manifest. Locally: the hidden ``.NAME.*.partial`` scratch
    folders ``atomic_output_dir`` renames into place (a killed process leaves them behind).
    """
    now = time.time()
    if not is_s3_uri(uri):
        root = Path(uri)
        if not root.is_dir():
            return []
        return sorted(str(p) for p in root.glob(".*.partial") if p.is_dir() and now - p.stat().st_mtime > older_than_s)
    base = parse_s3_uri(str(uri))
    prefix = base.key.rstrip("/") + "/" if base.key.strip("/") else ""
    client = S3Settings.from_env().client()
    newest: dict[str, float] = {}
    complete: set[str] = set()
    try:
        for found in client.list_objects(bucket_name=base.bucket, prefix=prefix, recursive=True):
            child, _, rest = found.object_name[len(prefix) :].partition("/")
            if not rest:
                continue
            if rest == TREE_MANIFEST:
                complete.add(child)
            stamp = found.last_modified.timestamp() if found.last_modified else now
            newest[child] = max(newest.get(child, 0.0), stamp)
    except Exception as exc:
        raise s3_error(str(uri), exc) from None
    return sorted(
        f"s3://{base.bucket}/{prefix}{child}"
        for child, stamp in newest.items()
        if child not in complete and now - stamp > older_than_s
    )


def remove_tree(uri: str | os.PathLike) -> int:
    """Delete every file under a local folder or S3 prefix; returns how many were removed."""
    if not is_s3_uri(uri):
        root = Path(uri)
        count = len(_tree_files(root)) if root.is_dir() else 0
        shutil.rmtree(root, ignore_errors=True)
        return count
    base = parse_s3_uri(str(uri))
    client = S3Settings.from_env().client()
    prefix = base.key.rstrip("/") + "/"
    try:
        names = [o.object_name for o in client.list_objects(bucket_name=base.bucket, prefix=prefix, recursive=True)]
        for name in names:
            client.remove_object(bucket_name=base.bucket, object_name=name)
    except Exception as exc:
        raise s3_error(str(uri), exc) from None
    return len(names)


def read_tree(uri: str | os.PathLike, local_dir: str | os.PathLike) -> Path:
    """Materialize a complete tree (local folder or S3 prefix written by ``write_tree``) at ``local_dir``."""
    target = Path(local_dir)
    if not is_s3_uri(uri):
        source = Path(uri)
        if not source.is_dir():
            raise StorageError(str(source), "folder not found")
        with atomic_output_dir(target) as scratch:
            shutil.copytree(source, scratch, dirs_exist_ok=True)
        return target
    files = _read_manifest(str(uri))
    with atomic_output_dir(target) as scratch:
        for name, digest in files.items():
            data = read_bytes(join_uri(uri, name))
            if sha256_hex(data) != digest:
                raise StorageError(join_uri(uri, name), "content hash does not match the tree manifest")
            atomic_write_bytes(scratch / name, data)
    return target
