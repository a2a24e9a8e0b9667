"""Payload logging for drift monitoring: every request/response pair a model server answers, batched to storage.

The request path only encodes a record and appends it to a bounded in-memory queue (``PayloadLogger.record``); a
background thread writes batches as JSON Lines objects, one per UTC day, at
``{store_uri}/{model_name}/date=YYYY-MM-DD/part-{HHMMSSmmm}-{8 hex}.jsonl``. While the store is down the records
stay queued and are retried in order; when the queue is full the oldest are dropped, counted and reported in one
warning line per flush. ``read_payload_logs`` reads the records back for drift jobs.

Shutdown and outages: ``close`` gives the store one last flush, bounded in time (a write that hangs does not hold
the process), then writes every record still held to a local spool folder,
``{spool_dir}/{model_name}/spool-*.jsonl`` (one JSON Lines file per batch, written atomically), and says so in one
warning line. The next logger of that model with that spool folder sends the spooled files first, before its own
records, as parts of the same layout, and deletes each file only once the store took it. Delivery is at least
once: a write that hung and completed after the shutdown, or a crash between a write and the file's deletion,
sends the same records again, but a spooled batch is sent as the same bytes under the same content-hashed part
name, so the store overwrites the part instead of holding the records twice. The spool keeps at most
``max_pending`` records per model (the oldest beyond that are dropped); without a spool folder the records the
store did not take are dropped. Every drop is counted in ``stats`` and named in a warning line.

With ``spool_on_failure`` (the edge runtime) a failed write also moves everything pending to the spool at once, so
a process killed without a shutdown loses at most what arrived since the last flush; every flush sends the spool
first, so the records still reach the store in order once it is back.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import itertools
import json
import logging
import math
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from shopfloor.common.errors import StorageError
from shopfloor.common.storage import atomic_write_bytes, join_uri, list_files, read_bytes, sha256_hex, write_bytes

__all__ = ["DEFAULT_CLOSE_TIMEOUT_S", "PayloadLogger", "PayloadRecord", "read_payload_logs"]

DEFAULT_CLOSE_TIMEOUT_S = 5.0
"""How long ``close`` gives the store to take what is left before the records go to the spool."""

_LOGGER = logging.getLogger("shopfloor.payload_log")
_PART_RE = re.compile(r"date=(\d{4}-\d{2}-\d{2})[/\\]part-[^/\\]+\.jsonl$")
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
_SPOOL_GLOB = "spool-*.jsonl"
_MAX_DAYS_LISTED_ONE_BY_ONE = 400
_QUEUE_FULL = "queue full"
_NOT_ENCODABLE = "not JSON-serializable"
_SPOOL_FULL = "spool full"
_NO_SPOOL = "no spool folder"
_SPOOL_FAILED = "spool not writable"
_AFTER_CLOSE = "recorded after close"
_COUNTERS = ("recorded", "written", "dropped", "failed_writes", "spooled", "unspooled")


@dataclasses.dataclass(frozen=True)
class PayloadRecord:
    """One request/response pair as served."""

    id: str
    time: str
    model_name: str
    model_version: str
    protocol: str
    inputs: list
    outputs: dict | list


class _Entry(NamedTuple):
    """A record encoded on the request path: its UTC day, its ``HHMMSSmmm`` stamp and its JSON line."""

    date: str
    stamp: str
    line: str


def _entry(time_text: str, line: str) -> _Entry:
    """The queue entry of a JSON line whose record has the ISO 8601 UTC time ``time_text``."""
    return _Entry(date=time_text[:10], stamp=time_text[11:23].replace(":", "").replace(".", ""), line=line)


def _as_list(value: object) -> object:
    """Numpy values orjson does not encode natively (non-contiguous arrays, e.g. slices), as lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def _utc_time(epoch_s: float) -> str:
    """Format seconds since the epoch as ISO 8601 UTC with milliseconds, e.g. ``2026-11-25T10:00:00.123Z``."""
    seconds, millis = divmod(round(epoch_s * 1000), 1000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def _redact(uri: str) -> str:
    """The store URI without any ``user:password@`` part, so log lines never carry credentials."""
    parsed = urllib.parse.urlsplit(uri)
    if "@" not in parsed.netloc:
        return uri
    return urllib.parse.urlunsplit(parsed._replace(netloc=parsed.netloc.rsplit("@", 1)[1]))


def _part_uri(store_uri: str, model_name: str, run: list[_Entry], data: bytes) -> str:
    """Where one batch of same-day records goes: named by its first record's time and its content hash.

    A retry of a write whose reply was lost then overwrites the same object instead of duplicating the records.
    """
    name = f"part-{run[0].stamp}-{sha256_hex(data)[:8]}.jsonl"
    return join_uri(store_uri, model_name, f"date={run[0].date}", name)


def _day_runs(batch: list[_Entry]) -> list[list[_Entry]]:
    """Split a batch, in order, into runs of records of the same UTC day (a batch over midnight gives two)."""
    return [list(run) for _, run in itertools.groupby(batch, key=lambda entry: entry.date)]


def _spooled_entry(line: str, model_name: str) -> _Entry:
    """Rebuild the queue entry of one spooled line; ValueError if it is not a record of ``model_name``."""
    record = _parse_record(orjson.loads(line))  # orjson.JSONDecodeError is a ValueError
    if record.model_name != model_name:
        raise ValueError(f"a record of model {record.model_name!r}")
    if not _TIME_RE.fullmatch(record.time):
        raise ValueError(f"time {record.time!r} is not ISO 8601 UTC with milliseconds")
    return _entry(record.time, line)


def _spool_chunks(entries: list[_Entry], head: int, size: int) -> list[list[_Entry]]:
    """Split records to spool into the batch in flight (the first ``head``) and then batches of ``size``.

    The batch in flight keeps its own file, so if its write completes after all, sending the file again writes the
    same bytes under the same part name.
    """
    starts = sorted({0, *range(head, len(entries), size)}) if head else list(range(0, len(entries), size))
    return [entries[start:end] for start, end in zip(starts, [*starts[1:], len(entries)], strict=True)]


def _time_left(deadline: float) -> float:
    """Seconds until a ``time.monotonic`` deadline, never negative."""
    return max(0.0, deadline - time.monotonic())


class PayloadLogger:
    """Logs request/response pairs without blocking the request path; a daemon thread writes them in batches.

    With ``spool_dir`` (a local folder) the records the store did not take by ``close`` are kept there for the
    next start of the same model; see the module docstring.
    """

    def __init__(
        self,
        store_uri: str,
        model_name: str,
        model_version: str,
        *,
        batch_size: int = 256,
        flush_interval_s: float = 2.0,
        max_pending: int = 10_000,
        spool_dir: str | os.PathLike[str] | None = None,
        spool_on_failure: bool = False,
        clock: Callable[[], float] = time.time,
    ):
        if not model_name or "/" in model_name or "\\" in model_name or model_name in (".", ".."):
            raise ValueError(f"model_name must be a non-empty name without slashes, got {model_name!r}")
        if batch_size < 1 or max_pending < 1 or not flush_interval_s > 0:
            raise ValueError("batch_size and max_pending must be >= 1 and flush_interval_s > 0")
        self._store_uri = str(store_uri)
        self._safe_uri = _redact(self._store_uri)
        self._model_name = model_name
        self._model_version = model_version
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_pending = max_pending
        self._spool = Path(spool_dir) / model_name if spool_dir is not None else None
        self._spool_on_failure = spool_on_failure and self._spool is not None
        self._clock = clock
        self._lock = threading.Lock()  # guards the queue and counters; never held during I/O
        self._flush_lock = threading.Lock()  # one flush at a time, so batches stay in order
        self._pending: collections.deque[_Entry] = collections.deque()
        self._in_flight: list[_Entry] = []
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._unreported_drops: collections.Counter[str] = collections.Counter()
        self._store_down = False
        self._closing = False  # close() was called
        self._closed = False  # close() took what was left: a write that returns late changes nothing
        self._bad_spool_files: set[str] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PayloadLogger:
        """Start the background flusher (a daemon thread); calling it again is harmless.

        With a spool folder the first flush runs at once, so what an earlier run spooled goes out before new records.
        """
        with self._lock:
            if self._thread is None and not self._closing:
                self._stop.clear()
                if self._spool is not None:
                    self._wake.set()
                self._thread = threading.Thread(target=self._run, name="payload-log-flusher", daemon=True)
                self._thread.start()
        return self

    def record(
        self, request_id: str, protocol: str, inputs: list, outputs: dict | list, model_version: str | None = None
    ) -> None:
        """Queue one request/response pair; never blocks on I/O and never raises (failures count as dropped).

        ``model_version`` names the version that answered when it is not the logger's (a runtime that swaps
        versions in place, as the edge runtime does).
        """
        try:
            entry = self._encode(request_id, protocol, inputs, outputs, model_version)
        except Exception:  # not JSON-serializable, too deep, a failing clock: the request must still be served
            with self._lock:
                self._counts["recorded"] += 1
                self._drop(_NOT_ENCODABLE)
            return
        with self._lock:
            self._counts["recorded"] += 1
            if not self._closed:
                self._pending.append(entry)
                while len(self._pending) > self._max_pending:
                    self._pending.popleft()
                    self._drop(_QUEUE_FULL)
                if len(self._pending) >= self._batch_size:
                    self._wake.set()
                return
            self._drop(_AFTER_CLOSE)
            first = self._unreported_drops[_AFTER_CLOSE] == 1
        if first:  # outside the lock; once, so a late caller cannot flood the log
            _LOGGER.warning("payload log %s: a record arrived after close and was dropped", self._safe_uri)

    def flush(self) -> None:
        """Send what an earlier run spooled, then everything pending, in order; on a store failure the rest waits."""
        self._flush()

    def close(self, timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S) -> None:
        """Stop the flusher, give the store ``timeout_s`` for what is left, then spool (or drop) the rest; log once.

        Returns after about ``timeout_s`` at most, plus the local spool write: a store write that hangs is left
        behind in a daemon thread, and its records are spooled all the same (sent at least once). Calling it
        again does nothing.
        """
        deadline = time.monotonic() + timeout_s
        with self._lock:
            if self._closing:
                return
            self._closing = True
            thread, self._thread = self._thread, None
        self._stop.set()
        self._wake.set()
        if thread is not None:
            thread.join(_time_left(deadline))  # it may be in the middle of a write: let that one finish in time
        outcome: list[Exception | None] = []
        final = threading.Thread(target=self._final_flush, args=(outcome,), name="payload-log-final-flush", daemon=True)
        final.start()
        final.join(_time_left(deadline))
        error = outcome[0] if outcome else TimeoutError(f"the store did not take the records within {timeout_s:g} s")
        self._shut_down(error)

    @property
    def stats(self) -> dict[str, int]:
        """Counters for metrics and tests: recorded + unspooled = written + pending + dropped + spooled.

        ``spooled`` counts records this logger put in the spool (at close, or at a failed write with
        ``spool_on_failure``); ``unspooled`` the records an earlier run (or this one)
        spooled that this one took over (then written, or dropped when the spool held more than ``max_pending``).
        """
        with self._lock:
            return {**self._counts, "pending": len(self._pending) + len(self._in_flight)}

    def _encode(
        self, request_id: str, protocol: str, inputs: list, outputs: dict | list, model_version: str | None = None
    ) -> _Entry:
        """Encode a record as one sorted-keys JSON line, snapshotting the payload so later mutation cannot leak in."""
        stamp = _utc_time(self._clock())
        document = {
            "id": str(request_id),
            "time": stamp,
            "model_name": self._model_name,
            "model_version": model_version or self._model_version,
            "protocol": str(protocol),
            "inputs": inputs,
            "outputs": outputs,
        }
        # orjson writes NaN/inf as null and numpy arrays natively: ~0.2 ms for a 64-window batch where a
        # Python walk plus json.dumps took ~17 ms on the request path
        line = orjson.dumps(
            document, default=_as_list, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
        ).decode()
        return _entry(stamp, line)

    def _drop(self, reason: str, count: int = 1) -> None:
        """Count dropped records for the stats and the next warning; the caller holds ``_lock``."""
        self._counts["dropped"] += count
        self._unreported_drops[reason] += count

    def _run(self) -> None:
        """Flusher loop: flush when a batch is full or the interval passes; after a failure wait an interval."""
        while not self._stop.is_set():
            self._wake.wait(self._flush_interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                ok = self._flush() is None
            except Exception:  # a bug must not kill the thread and silently stop payload logging
                _LOGGER.exception("payload log %s: flush failed unexpectedly", self._safe_uri)
                ok = False
            if not ok:
                self._stop.wait(self._flush_interval_s)

    def _flush(self, report: bool = True) -> Exception | None:
        """Send the spool, then the pending batches, in order, until done or a write fails; the error, if any."""
        with self._flush_lock:
            if self._closed:
                return None
            error = self._send_spool() if self._spool is not None else None
            if error is None:
                error = self._write_pending()
            if error is not None and self._spool_on_failure:
                self._spool_pending()
            if report:
                self._report(error)
            return error

    def _spool_pending(self) -> None:
        """Move every pending record to the spool after a failed write (``spool_on_failure``).

        A process that dies hard (power cut, OOM kill, ``kill -9``) then loses at most the records of one flush
        interval instead of everything queued while the store was away; the next flush that reaches the store sends
        the spool first, in order, under the same content-hashed part names.
        """
        with self._lock:
            if self._closed or not self._pending:
                return
            entries = list(self._pending)
            self._pending.clear()
        assert self._spool is not None  # spool_on_failure implies a spool folder
        spooled, error = self._spool_records(self._spool, entries, min(self._batch_size, len(entries)))
        if error is not None:
            _LOGGER.warning(
                "payload log %s: spooling %d records failed: %s", self._safe_uri, len(entries) - spooled, error
            )

    def _final_flush(self, outcome: list[Exception | None]) -> None:
        """The last flush of ``close``, run in its own thread so that close can stop waiting for it."""
        try:
            outcome.append(self._flush(report=False))
        except Exception as exc:  # a bug: close still spools what is left and says why
            _LOGGER.exception("payload log %s: final flush failed unexpectedly", self._safe_uri)
            outcome.append(exc)

    def _write_pending(self) -> Exception | None:
        """Write pending batches in order until none is left or a write fails; the error that stopped it."""
        with self._lock:
            rounds = math.ceil(len(self._pending) / self._batch_size)
        error: Exception | None = None
        for _ in range(rounds):
            with self._lock:
                if self._closed:
                    return None
                batch = [self._pending.popleft() for _ in range(min(self._batch_size, len(self._pending)))]
                self._in_flight = batch
            if not batch:
                break
            unwritten, error = self._write_batch(batch)
            with self._lock:
                if self._closed:  # close() spooled this batch while the write hung: it is accounted for there
                    return None
                self._in_flight = []
                self._counts["written"] += len(batch) - len(unwritten)
                if error is not None:
                    self._counts["failed_writes"] += 1
                    self._pending.extendleft(reversed(unwritten))
                    while len(self._pending) > self._max_pending:
                        self._pending.popleft()
                        self._drop(_QUEUE_FULL)
            if error is not None:
                break
        return error

    def _write_batch(self, batch: list[_Entry]) -> tuple[list[_Entry], Exception | None]:
        """Write a batch as one object per UTC day; returns the records not written and the error that stopped it."""
        runs = _day_runs(batch)
        for index, run in enumerate(runs):
            data = "".join(entry.line + "\n" for entry in run).encode()
            try:
                write_bytes(_part_uri(self._store_uri, self._model_name, run, data), data)
            except Exception as exc:  # StorageError from S3, OSError from a local disk
                return [entry for rest in runs[index:] for entry in rest], exc
        return [], None

    def _spool_files(self) -> list[Path]:
        """This model's spool files, oldest first (their names start with the UTC time they were written)."""
        return sorted(self._spool.glob(_SPOOL_GLOB)) if self._spool is not None else []

    def _read_spool_file(self, path: Path) -> list[_Entry] | None:
        """The records of one spool file; None if it is gone or not this model's records (warned once per file)."""
        try:
            text = path.read_text(encoding="utf-8")
            return [_spooled_entry(line, self._model_name) for line in text.splitlines() if line.strip()]
        except FileNotFoundError:  # another process of this model sent it meanwhile
            return None
        except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            if path.name not in self._bad_spool_files:
                self._bad_spool_files.add(path.name)
                _LOGGER.warning("payload log %s: spool file %s left unsent: %s", self._safe_uri, path, exc)
            return None

    def _send_spool(self) -> Exception | None:
        """Write what an earlier run spooled as parts, oldest first, deleting each file once written; the error."""
        sent = 0
        error: Exception | None = None
        for path in self._spool_files():
            entries = self._read_spool_file(path)
            if entries is None:
                continue
            if entries:
                _, error = self._write_batch(entries)
            with self._lock:
                if self._closed:
                    return None
                if error is not None:
                    self._counts["failed_writes"] += 1
                    break
                self._counts["unspooled"] += len(entries)
                self._counts["written"] += len(entries)
            path.unlink(missing_ok=True)  # only now: a crash before this sends the same parts again, same names
            sent += len(entries)
        if sent:
            _LOGGER.info("payload log %s: sent %d records spooled by an earlier run", self._safe_uri, sent)
        return error

    def _shut_down(self, error: Exception | None) -> None:
        """Take every record still held (the batch in flight first), spool or drop it, and log one warning line."""
        with self._lock:
            self._closed = True
            leftovers = [*self._in_flight, *self._pending]
            in_flight = len(self._in_flight)
            self._in_flight = []
            self._pending.clear()
        spooled, spool_error = 0, None
        if leftovers and self._spool is None:
            with self._lock:
                self._drop(_NO_SPOOL, len(leftovers))
        elif leftovers and self._spool is not None:
            spooled, spool_error = self._spool_records(self._spool, leftovers, in_flight)
        with self._lock:
            drops, self._unreported_drops = self._unreported_drops, collections.Counter()
        parts = []
        if leftovers:
            why = _describe(error) if error is not None else "they arrived during the last flush"
            parts.append(f"store did not take {len(leftovers)} records at shutdown ({why})")
        if spooled:
            parts.append(f"spooled {spooled} records to {self._spool} for the next start")
        if spool_error is not None:
            parts.append(f"spooling failed: {_describe(spool_error)}")
        if drops:
            reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(drops.items()))
            parts.append(f"dropped {sum(drops.values())} records since the last report ({reasons})")
        if parts:
            _LOGGER.warning("payload log %s: %s", self._safe_uri, "; ".join(parts))

    def _spool_records(self, folder: Path, entries: list[_Entry], in_flight: int) -> tuple[int, Exception | None]:
        """Write records to spool files in ``folder``, keeping it within ``max_pending``; (how many spooled, error)."""
        spooled = 0
        try:
            excess = self._trim_spool(len(entries))
            if excess:
                with self._lock:
                    self._drop(_SPOOL_FULL, excess)
            entries, in_flight = entries[excess:], max(0, in_flight - excess)
            written_at = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            for index, chunk in enumerate(_spool_chunks(entries, in_flight, self._batch_size)):
                data = "".join(entry.line + "\n" for entry in chunk).encode()
                atomic_write_bytes(folder / f"spool-{written_at}-{os.getpid()}-{index:05d}.jsonl", data)
                spooled += len(chunk)
                with self._lock:
                    self._counts["spooled"] += len(chunk)
        except OSError as exc:  # a full or read-only disk: what could not be spooled is lost, and said so
            with self._lock:
                self._drop(_SPOOL_FAILED, len(entries) - spooled)
            return spooled, exc
        return spooled, None

    def _trim_spool(self, incoming: int) -> int:
        """Make room for ``incoming`` records by dropping the oldest spooled ones; how many incoming do not fit."""
        sizes = self._spool_sizes()
        over = sum(count for _, count in sizes) + incoming - self._max_pending
        for path, count in sizes:
            if over <= 0:
                break
            cut = min(count, over)
            if cut == count:
                path.unlink(missing_ok=True)
            else:  # keep the newest lines of the file
                atomic_write_bytes(path, b"".join(path.read_bytes().splitlines(keepends=True)[cut:]))
            over -= cut
            with self._lock:  # taken over from an earlier run, then dropped
                self._counts["unspooled"] += cut
                self._drop(_SPOOL_FULL, cut)
        return max(0, over)

    def _spool_sizes(self) -> list[tuple[Path, int]]:
        """(file, record count) of this model's spool files, oldest first; files that vanished count as empty."""
        sizes = []
        for path in self._spool_files():
            with contextlib.suppress(FileNotFoundError):
                sizes.append((path, path.read_bytes().count(b"\n")))
        return sizes

    def _report(self, error: Exception | None) -> None:
        """Log at most one warning per flush: drops since the last report and/or the store going down."""
        with self._lock:
            drops, self._unreported_drops = self._unreported_drops, collections.Counter()
            pending = len(self._pending)
            went_down = error is not None and not self._store_down
            came_back = error is None and self._store_down
            self._store_down = error is not None
        parts = []
        if drops:
            reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(drops.items()))
            parts.append(f"dropped {sum(drops.values())} records since the last report ({reasons})")
        if went_down:
            parts.append(f"store write failed, retrying: {_describe(error)}")
        if parts:
            _LOGGER.warning("payload log %s: %s; %d pending", self._safe_uri, "; ".join(parts), pending)
        if came_back:
            _LOGGER.info("payload log %s: store writable again; %d pending", self._safe_uri, pending)


def _describe(error: Exception | None) -> str:
    """One line for a write error; storage errors are already free of credentials."""
    return str(error) if isinstance(error, StorageError) else f"{type(error).__name__}: {error}"


def _partition_files(
    store_uri: str, model_name: str, start: datetime.date | None, end: datetime.date | None
) -> list[tuple[datetime.date, str]]:
    """(day, URI) of every part in [start, end]: one listing per day for a closed range, else one for the model."""
    root = join_uri(store_uri, model_name)
    if start is not None and end is not None and 0 <= (end - start).days < _MAX_DAYS_LISTED_ONE_BY_ONE:
        days = (start + datetime.timedelta(days=n) for n in range((end - start).days + 1))
        uris: Iterable[str] = (uri for day in days for uri in list_files(join_uri(root, f"date={day.isoformat()}")))
    else:
        uris = list_files(root)
    found = []
    for uri in uris:
        match = _PART_RE.search(uri)
        if match is None:
            continue
        day = datetime.date.fromisoformat(match.group(1))
        if (start is None or day >= start) and (end is None or day <= end):
            found.append((day, uri))
    return found


def _parse_record(document: object) -> PayloadRecord:
    """Check one decoded JSON line and build its record; raises ValueError when it is not a payload record."""
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    fields: dict[str, Any] = {field.name: document.get(field.name) for field in dataclasses.fields(PayloadRecord)}
    expected = {"inputs": list, "outputs": dict | list}
    bad = [name for name, value in fields.items() if not isinstance(value, expected.get(name, str))]
    if bad:
        raise ValueError(f"missing or mistyped {', '.join(bad)}")
    return PayloadRecord(**fields)


def _read_part(uri: str) -> list[PayloadRecord]:
    """Every record of one JSON Lines part; a corrupt line raises StorageError naming the object and line."""
    text = read_bytes(uri).decode("utf-8", errors="replace")
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(_parse_record(json.loads(line)))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise StorageError(
                uri, f"corrupt payload record ({exc})", field=f"line {number}", expected="one JSON record per line"
            ) from None
    return records


def read_payload_logs(
    store_uri: str,
    model_name: str,
    start: datetime.date | None = None,
    end: datetime.date | None = None,
    model_version: str | None = None,
) -> list[PayloadRecord]:
    """Read logged records of UTC days [start, end] (None = open), sorted by (time, id); [] if nothing is stored."""
    try:
        parts = _partition_files(str(store_uri), model_name, start, end)
    except StorageError as exc:
        if exc.problem == "no such bucket":
            return []
        raise
    records = [record for _, uri in parts for record in _read_part(uri)]
    if model_version is not None:
        records = [record for record in records if record.model_version == model_version]
    return sorted(records, key=lambda record: (record.time, record.id))
