"""Payload logging: batching, partitions, the background flusher, a store that is down, threads, corrupt parts."""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from urllib3.util.retry import Retry

from shopfloor.common.errors import StorageError
from shopfloor.common.storage import S3Settings, list_files, read_bytes
from shopfloor.contracts import payload_log
from shopfloor.contracts.payload_log import PayloadLogger, PayloadRecord, read_payload_logs

LOGGER_NAME = "shopfloor.payload_log"
PART_RE = re.compile(r"/m/date=(\d{4}-\d{2}-\d{2})/part-(\d{9})-[0-9a-f]{8}\.jsonl$")


def _epoch(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 UTC time."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class StepClock:
    """A clock that starts at ``start`` and advances ``step_s`` after every reading."""

    def __init__(self, start: str, step_s: float = 0.0):
        self.now = _epoch(start)
        self.step_s = step_s

    def __call__(self) -> float:
        value = self.now
        self.now += self.step_s
        return value


def _closed_port() -> int:
    """A localhost port where nothing listens (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _parts(root: str | Path) -> list[str]:
    return [uri.replace("\\", "/") for uri in list_files(root) if uri.endswith(".jsonl")]


def _ids(uri: str) -> list[str]:
    return [json.loads(line)["id"] for line in read_bytes(uri).decode().splitlines()]


def _wait_for(predicate, timeout_s: float = 3.0) -> float:
    """Poll until ``predicate()`` holds; returns the seconds it took, fails the test on timeout."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"condition not met within {timeout_s} s")
        time.sleep(0.01)
    return time.monotonic() - started


def _drop_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME and r.levelno == logging.WARNING]


# --- local store -------------------------------------------------------------------------------------------------


def test_flush_writes_the_partition_layout_and_reads_back_equal(tmp_path):
    clock = StepClock("2026-11-25T10:00:00.123Z", step_s=0.001)
    logger = PayloadLogger(str(tmp_path), "m", "3", clock=clock)
    inputs = [{"temp": 71.5, "vibration": float("nan"), "rpm": 1500, "site": "a"}, {"temp": float("inf")}]
    logger.record("req-1", "v1", inputs, {"predictions": [0.25, float("-inf")]})
    logger.record("req-2", "v2", [[1.0, None]], [{"name": "p", "data": [0.5]}])
    inputs[0]["temp"] = -1.0  # the logger snapshot the request: later mutation does not reach the log

    assert logger.stats == {
        "recorded": 2,
        "written": 0,
        "pending": 2,
        "dropped": 0,
        "failed_writes": 0,
        "spooled": 0,
        "unspooled": 0,
    }
    logger.flush()
    assert logger.stats == {
        "recorded": 2,
        "written": 2,
        "pending": 0,
        "dropped": 0,
        "failed_writes": 0,
        "spooled": 0,
        "unspooled": 0,
    }

    (part,) = _parts(tmp_path)
    match = PART_RE.search(part)
    assert match is not None, part
    assert match.groups() == ("2026-11-25", "100000123")
    lines = read_bytes(part).decode().splitlines()
    assert all(line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":")) for line in lines)

    assert read_payload_logs(str(tmp_path), "m") == [
        PayloadRecord(
            id="req-1",
            time="2026-11-25T10:00:00.123Z",
            model_name="m",
            model_version="3",
            protocol="v1",
            inputs=[{"temp": 71.5, "vibration": None, "rpm": 1500, "site": "a"}, {"temp": None}],
            outputs={"predictions": [0.25, None]},
        ),
        PayloadRecord(
            id="req-2",
            time="2026-11-25T10:00:00.124Z",
            model_name="m",
            model_version="3",
            protocol="v2",
            inputs=[[1.0, None]],
            outputs=[{"name": "p", "data": [0.5]}],
        ),
    ]


def test_numpy_values_are_logged_as_plain_json(tmp_path):
    np = pytest.importorskip("numpy")
    logger = PayloadLogger(str(tmp_path), "m", "1", clock=StepClock("2026-11-25T10:00:00Z"))
    logger.record("r", "v2", [np.array([1.5, np.nan], dtype=np.float32)], {"predictions": np.array([1, 0])})
    logger.flush()
    (record,) = read_payload_logs(str(tmp_path), "m")
    assert record.inputs == [[1.5, None]] and record.outputs == {"predictions": [1, 0]}


def test_flush_splits_batches_on_batch_size(tmp_path):
    logger = PayloadLogger(str(tmp_path), "m", "1", batch_size=10, clock=StepClock("2026-11-25T10:00:00Z", 0.001))
    for i in range(25):
        logger.record(f"r{i:02d}", "v1", [[i]], [i])
    logger.flush()
    parts = sorted(_parts(tmp_path))
    assert [len(_ids(part)) for part in parts] == [10, 10, 5]
    assert [i for part in parts for i in _ids(part)] == [f"r{i:02d}" for i in range(25)]
    assert logger.stats["written"] == 25 and logger.stats["pending"] == 0


def test_background_thread_flushes_on_the_interval_and_on_a_full_batch(tmp_path):
    by_interval = PayloadLogger(str(tmp_path / "a"), "m", "1", flush_interval_s=0.1).start()
    by_batch = PayloadLogger(str(tmp_path / "b"), "m", "1", batch_size=5, flush_interval_s=60).start()
    try:
        for i in range(3):
            by_interval.record(f"r{i}", "v1", [[i]], [i])
        for i in range(5):
            by_batch.record(f"r{i}", "v1", [[i]], [i])
        assert _wait_for(lambda: by_interval.stats["written"] == 3) < 1.0
        assert _wait_for(lambda: by_batch.stats["written"] == 5) < 1.0  # long before the 60 s interval
    finally:
        by_interval.close()
        by_batch.close()
    assert len(read_payload_logs(str(tmp_path / "a"), "m")) == 3
    assert len(read_payload_logs(str(tmp_path / "b"), "m")) == 5


def test_close_writes_what_is_left(tmp_path):
    logger = PayloadLogger(str(tmp_path), "m", "1", flush_interval_s=60).start()
    logger.record("r", "v1", [[1]], [1])
    logger.close()
    assert logger.stats == {
        "recorded": 1,
        "written": 1,
        "pending": 0,
        "dropped": 0,
        "failed_writes": 0,
        "spooled": 0,
        "unspooled": 0,
    }
    assert [r.id for r in read_payload_logs(str(tmp_path), "m")] == ["r"]


def test_a_batch_crossing_midnight_becomes_two_partitions(tmp_path):
    clock = StepClock("2026-11-25T23:59:59.950Z", step_s=0.025)  # .950 .975 | .000 .025 of the next day
    logger = PayloadLogger(str(tmp_path), "m", "1", clock=clock)
    for i in range(4):
        logger.record(f"r{i}", "v1", [[i]], [i])
    logger.flush()
    parts = {PART_RE.search(part).groups(): _ids(part) for part in _parts(tmp_path)}
    assert parts == {("2026-11-25", "235959950"): ["r0", "r1"], ("2026-11-26", "000000000"): ["r2", "r3"]}
    records = read_payload_logs(str(tmp_path), "m")
    assert [r.time for r in records] == [
        "2026-11-25T23:59:59.950Z",
        "2026-11-25T23:59:59.975Z",
        "2026-11-26T00:00:00.000Z",
        "2026-11-26T00:00:00.025Z",
    ]


def test_date_range_and_model_version_filters(tmp_path):
    clock = StepClock("2026-11-24T12:00:00Z")
    loggers = {version: PayloadLogger(str(tmp_path), "m", version, clock=clock) for version in ("1", "2")}
    for day in ("2026-11-24", "2026-11-25", "2026-11-26"):
        clock.now = _epoch(f"{day}T12:00:00Z")
        for version, logger in loggers.items():
            logger.record(f"{day}-v{version}", "v1", [[1]], [1])
    for logger in loggers.values():
        logger.flush()
    PayloadLogger(str(tmp_path), "other", "1", clock=clock).record("other", "v1", [[1]], [1])  # never flushed

    def ids(**kwargs) -> list[str]:
        return [r.id for r in read_payload_logs(str(tmp_path), "m", **kwargs)]

    d24, d25, d26 = (datetime.date(2026, 11, day) for day in (24, 25, 26))
    everything = ["2026-11-24-v1", "2026-11-24-v2", "2026-11-25-v1", "2026-11-25-v2", "2026-11-26-v1", "2026-11-26-v2"]
    assert ids() == everything
    assert ids(start=d25, end=d25) == ["2026-11-25-v1", "2026-11-25-v2"]
    assert ids(start=d25) == ["2026-11-25-v1", "2026-11-25-v2", "2026-11-26-v1", "2026-11-26-v2"]
    assert ids(end=d25) == ["2026-11-24-v1", "2026-11-24-v2", "2026-11-25-v1", "2026-11-25-v2"]
    assert ids(start=d24, end=d26, model_version="2") == ["2026-11-24-v2", "2026-11-25-v2", "2026-11-26-v2"]
    assert ids(start=d26, end=d24) == []
    assert ids(start=datetime.date(2020, 1, 1), end=datetime.date(2026, 12, 31), model_version="1") == [
        "2026-11-24-v1",
        "2026-11-25-v1",
        "2026-11-26-v1",
    ]
    assert read_payload_logs(str(tmp_path), "m", model_version="9") == []


def test_an_empty_or_missing_store_reads_as_no_records(tmp_path):
    assert read_payload_logs(str(tmp_path / "missing"), "m") == []
    (tmp_path / "empty" / "m").mkdir(parents=True)
    assert read_payload_logs(str(tmp_path / "empty"), "m", start=datetime.date(2026, 1, 1)) == []


# --- S3 (moto over HTTP) -----------------------------------------------------------------------------------------


def test_s3_round_trip(s3_bucket):
    store = f"s3://{s3_bucket}/payloads"
    logger = PayloadLogger(store, "m", "7", batch_size=3, clock=StepClock("2026-11-25T23:59:59.998Z", 0.001))
    for i in range(5):
        logger.record(f"r{i}", "v2", [{"x": float(i) if i != 2 else float("nan")}], {"predictions": [i]})
    logger.flush()
    parts = _parts(store)
    assert all(PART_RE.search(part) and part.startswith(f"{store}/m/date=") for part in parts)
    assert len(parts) == 3  # [r0 r1 | r2] crosses midnight, then [r3 r4]
    records = read_payload_logs(store, "m")
    assert [r.id for r in records] == ["r0", "r1", "r2", "r3", "r4"]
    assert records[2].inputs == [{"x": None}] and records[2].time == "2026-11-26T00:00:00.000Z"
    assert read_payload_logs(store, "m", start=datetime.date(2026, 11, 26), model_version="7")[0].id == "r2"
    assert read_payload_logs(store, "nothing-here") == []
    assert read_payload_logs(f"s3://missing-{os.urandom(4).hex()}/payloads", "m") == []


def test_store_down_keeps_records_bounded_and_delivers_them_in_order_when_back(
    s3_endpoint, s3_bucket, monkeypatch, caplog
):
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    # minio's urllib3 retries back off ~6 s per failed write; keep the retries, skip the sleeping
    monkeypatch.setattr(Retry, "get_backoff_time", lambda self: 0)
    bucket = f"later-{os.urandom(4).hex()}"
    store = f"s3://{bucket}/payloads"
    clock = StepClock("2026-11-25T10:00:00Z", step_s=0.001)
    logger = PayloadLogger(store, "m", "1", batch_size=50, max_pending=300, clock=clock)
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)

    started = time.perf_counter()
    for i in range(1000):
        logger.record(f"r{i:04d}", "v1", [{"x": i}], {"predictions": [i]})
    assert time.perf_counter() - started < 0.05
    assert logger.stats == {
        "recorded": 1000,
        "written": 0,
        "pending": 300,
        "dropped": 700,
        "failed_writes": 0,
        "spooled": 0,
        "unspooled": 0,
    }

    logger.flush()
    assert logger.stats == {
        "recorded": 1000,
        "written": 0,
        "pending": 300,
        "dropped": 700,
        "failed_writes": 1,
        "spooled": 0,
        "unspooled": 0,
    }
    (warning,) = _drop_warnings(caplog)
    assert "dropped 700 records" in warning and store in warning and secret not in warning

    caplog.clear()
    logger.flush()  # still down, nothing new dropped: no new warning
    assert logger.stats["failed_writes"] == 2 and logger.stats["pending"] == 300
    assert _drop_warnings(caplog) == []

    for i in range(1000, 1010):
        logger.record(f"r{i:04d}", "v1", [{"x": i}], {"predictions": [i]})
    logger.flush()
    (warning,) = _drop_warnings(caplog)
    assert "dropped 10 records" in warning and store in warning

    caplog.clear()
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    S3Settings.from_env().client().make_bucket(bucket_name=bucket)
    logger.flush()
    assert logger.stats == {
        "recorded": 1010,
        "written": 300,
        "pending": 0,
        "dropped": 710,
        "failed_writes": 3,
        "spooled": 0,
        "unspooled": 0,
    }
    assert _drop_warnings(caplog) == []
    expected = [f"r{i:04d}" for i in range(710, 1010)]  # the newest 300: only the counted oldest were dropped
    parts = sorted(_parts(store))  # part names start with their first record's time
    assert [len(_ids(part)) for part in parts] == [50] * 6
    assert [i for part in parts for i in _ids(part)] == expected
    assert [r.id for r in read_payload_logs(store, "m")] == expected


def test_store_down_in_the_background_never_slows_record(monkeypatch, tmp_path):
    release = threading.Event()
    calls = []

    def hanging_write(uri: str, data: bytes) -> None:  # a store that hangs, then refuses
        calls.append(uri)
        release.wait(5)
        raise StorageError(uri, "S3 request failed (MaxRetryError)")

    monkeypatch.setattr(payload_log, "write_bytes", hanging_write)
    logger = PayloadLogger(str(tmp_path), "m", "1", batch_size=10, max_pending=100, flush_interval_s=0.05).start()
    try:
        for i in range(10):
            logger.record(f"r{i}", "v1", [[i]], [i])
        _wait_for(lambda: calls)  # the flusher is now stuck in a write
        started = time.perf_counter()
        for i in range(10, 1010):
            logger.record(f"r{i}", "v1", [[i]], [i])
        assert time.perf_counter() - started < 0.05
        stats = logger.stats
        assert stats["recorded"] == 1010 and stats["pending"] == 110 and stats["dropped"] == 900  # 10 in flight
    finally:
        release.set()
        monkeypatch.setattr(payload_log, "write_bytes", lambda uri, data: None)
        logger.close()
    assert logger.stats["failed_writes"] >= 1 and logger.stats["pending"] == 0
    assert logger.stats["written"] + logger.stats["dropped"] == 1010


def test_a_retried_write_whose_reply_was_lost_does_not_duplicate_records(monkeypatch, tmp_path):
    real_write = payload_log.write_bytes
    attempts = []

    def write_then_lose_the_first_reply(uri: str, data: bytes) -> None:
        real_write(uri, data)
        attempts.append(uri)
        if len(attempts) == 1:
            raise StorageError(uri, "S3 request failed (ReadTimeoutError)")

    monkeypatch.setattr(payload_log, "write_bytes", write_then_lose_the_first_reply)
    logger = PayloadLogger(str(tmp_path), "m", "1", clock=StepClock("2026-11-25T10:00:00Z", 0.001))
    for i in range(3):
        logger.record(f"r{i}", "v1", [[i]], [i])
    logger.flush()
    assert logger.stats["failed_writes"] == 1 and logger.stats["pending"] == 3
    logger.flush()
    assert logger.stats["written"] == 3 and logger.stats["pending"] == 0
    assert (
        attempts[0] == attempts[1] and len(_parts(tmp_path)) == 1
    )  # same records, same bytes, same object name: overwritten, not duplicated
    assert [r.id for r in read_payload_logs(str(tmp_path), "m")] == ["r0", "r1", "r2"]


def test_record_never_raises_and_counts_what_it_cannot_log(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    logger = PayloadLogger(str(tmp_path), "m", "1")
    logger.record("bad-object", "v1", [object()], {"predictions": [1]})
    logger.record("bad-set", "v1", [[1]], {"predictions": {1, 2}})
    logger.record("good", "v1", [[1]], {"predictions": [1]})

    def broken_clock() -> float:
        raise RuntimeError("clock")

    PayloadLogger(str(tmp_path), "m", "1", clock=broken_clock).record("x", "v1", [], [])  # must not raise
    assert logger.stats == {
        "recorded": 3,
        "written": 0,
        "pending": 1,
        "dropped": 2,
        "failed_writes": 0,
        "spooled": 0,
        "unspooled": 0,
    }
    logger.flush()
    (warning,) = _drop_warnings(caplog)
    assert "dropped 2 records" in warning and "not JSON-serializable" in warning and str(tmp_path) in warning
    assert [r.id for r in read_payload_logs(str(tmp_path), "m")] == ["good"]


def test_concurrent_record_from_many_threads_loses_nothing(tmp_path):
    logger = PayloadLogger(str(tmp_path), "m", "1", batch_size=64, flush_interval_s=0.02).start()
    barrier = threading.Barrier(8)

    def serve(worker: int) -> None:
        barrier.wait()
        for i in range(500):
            logger.record(f"w{worker}-{i}", "v1", [{"x": float(i)}], {"predictions": [i % 2]})

    threads = [threading.Thread(target=serve, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    logger.close()
    assert logger.stats == {
        "recorded": 4000,
        "written": 4000,
        "pending": 0,
        "dropped": 0,
        "failed_writes": 0,
        "spooled": 0,
        "unspooled": 0,
    }
    records = read_payload_logs(str(tmp_path), "m")
    assert len(records) == 4000 and len({r.id for r in records}) == 4000


# --- corrupt parts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad_line", ['{"id": "r9", "time": ', '{"id": "r9"}', "[1, 2]"])
def test_a_corrupt_line_names_the_object_and_the_line(tmp_path, bad_line):
    logger = PayloadLogger(str(tmp_path), "m", "1", clock=StepClock("2026-11-25T10:00:00Z", 0.001))
    logger.record("r1", "v1", [[1]], [1])
    logger.record("r2", "v1", [[2]], [2])
    logger.flush()
    (part,) = list_files(tmp_path)
    Path(part).write_text(Path(part).read_text() + bad_line + "\n")
    with pytest.raises(StorageError) as info:
        read_payload_logs(str(tmp_path), "m")
    assert info.value.source == part
    assert f"{part}: line 3: corrupt payload record" in str(info.value)


# --- shutdown and the spool ------------------------------------------------------------------------------------


def _balanced(stats: dict[str, int]) -> bool:
    """The counters' invariant: every record taken in is written, pending, dropped or spooled."""
    taken_in = stats["recorded"] + stats["unspooled"]
    return taken_in == stats["written"] + stats["pending"] + stats["dropped"] + stats["spooled"]


def _spool_ids(folder: Path) -> list[str]:
    """The record ids in a model's spool folder, oldest file first."""
    return [i for path in sorted(folder.glob("spool-*.jsonl")) for i in _ids(str(path))]


def _unwritable_store(tmp_path: Path) -> str:
    """A local store under a regular file: every write fails with an OSError, as a real broken disk would."""
    (tmp_path / "not-a-folder").write_text("")
    return str(tmp_path / "not-a-folder" / "logs")


def test_close_while_the_store_is_down_spools_everything_and_the_next_start_sends_it(
    s3_endpoint, s3_bucket, monkeypatch, caplog, tmp_path
):
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(Retry, "get_backoff_time", lambda self: 0)  # keep minio's retries, skip their sleeping
    store, spool = f"s3://{s3_bucket}/payloads", tmp_path / "spool"
    clock = StepClock("2026-11-25T10:00:00Z", step_s=0.001)
    logger = PayloadLogger(store, "m", "1", batch_size=50, flush_interval_s=0.05, spool_dir=spool, clock=clock)
    logger.start()
    expected = [f"r{i:04d}" for i in range(1000)]
    for request_id in expected:
        logger.record(request_id, "v1", [{"x": 1.0}], {"predictions": [0]})
    _wait_for(lambda: any("store write failed" in w for w in _drop_warnings(caplog)))  # the flusher met it down
    caplog.clear()
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)

    started = time.monotonic()
    logger.close(timeout_s=3)
    assert time.monotonic() - started < 3 + 2  # the bound, plus the local spool write on a busy machine

    stats = logger.stats
    assert stats["spooled"] == 1000 and stats["pending"] == 0 and stats["written"] == 0 and stats["dropped"] == 0
    assert _balanced(stats)
    assert _spool_ids(spool / "m") == expected
    (warning,) = _drop_warnings(caplog)  # one line says what happened, where, and why
    assert "spooled 1000 records" in warning and str(spool / "m") in warning and store in warning
    assert secret not in warning

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)  # the store is back; a new run of the server starts
    real_write, written = payload_log.write_bytes, []

    def recording_write(uri: str, data: bytes) -> None:
        real_write(uri, data)
        written.extend(json.loads(line)["id"] for line in data.decode().splitlines())

    monkeypatch.setattr(payload_log, "write_bytes", recording_write)
    later = PayloadLogger(store, "m", "2", batch_size=50, flush_interval_s=0.05, spool_dir=spool)
    later.record("new", "v1", [{"x": 2.0}], {"predictions": [1]})
    later.start()
    _wait_for(lambda: later.stats["written"] == 1001, timeout_s=30)
    later.close()
    assert written == [*expected, "new"]  # the spool first, in order, then the new record
    assert later.stats == {
        "recorded": 1,
        "written": 1001,
        "pending": 0,
        "dropped": 0,
        "failed_writes": 0,
        "spooled": 0,
        "unspooled": 1000,
    }
    assert list((spool / "m").iterdir()) == []  # every file deleted once the store took it
    assert [r.id for r in read_payload_logs(store, "m")] == [*expected, "new"]


def test_close_does_not_wait_for_a_write_that_hangs_and_a_late_write_is_not_duplicated(monkeypatch, tmp_path):
    real_write, release, calls = payload_log.write_bytes, threading.Event(), []

    def hanging_write(uri: str, data: bytes) -> None:  # a store that takes the first write only much later
        calls.append(uri)
        release.wait(30)
        real_write(uri, data)

    monkeypatch.setattr(payload_log, "write_bytes", hanging_write)
    store, spool = tmp_path / "store", tmp_path / "spool"
    clock = StepClock("2026-11-25T10:00:00Z", step_s=0.001)
    logger = PayloadLogger(str(store), "m", "1", batch_size=10, flush_interval_s=0.05, spool_dir=spool, clock=clock)
    logger.start()
    expected = [f"r{i:02d}" for i in range(25)]
    try:
        for request_id in expected:
            logger.record(request_id, "v1", [[1]], [1])
        _wait_for(lambda: calls)  # the flusher is stuck in its first write
        started = time.monotonic()
        logger.close(timeout_s=1)
        elapsed = time.monotonic() - started
    finally:
        release.set()  # the hung write now completes, after the records were spooled
    assert 0.9 < elapsed < 1 + 2
    stats = logger.stats
    assert stats["spooled"] == 25 and stats["pending"] == 0 and stats["written"] == 0 and _balanced(stats)
    files = sorted((spool / "m").glob("spool-*.jsonl"))
    assert [len(_ids(str(path))) for path in files] == [10, 10, 5]  # the batch in flight keeps its own file
    assert _spool_ids(spool / "m") == expected

    _wait_for(lambda: _parts(store))  # the late write landed ...
    time.sleep(0.1)
    assert logger.stats == stats  # ... and changed nothing: close had accounted for its records
    monkeypatch.setattr(payload_log, "write_bytes", real_write)
    later = PayloadLogger(str(store), "m", "1", batch_size=10, spool_dir=spool)
    later.flush()
    assert later.stats["unspooled"] == 25 and later.stats["written"] == 25
    assert len(_parts(store)) == 3  # the late part was overwritten by the same bytes, not written twice
    assert [r.id for r in read_payload_logs(str(store), "m")] == expected


def test_without_a_spool_folder_what_the_store_did_not_take_is_dropped_and_said(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    store = _unwritable_store(tmp_path)
    logger = PayloadLogger(store, "m", "1", flush_interval_s=60).start()
    for i in range(7):
        logger.record(f"r{i}", "v1", [[i]], [i])
    logger.close(timeout_s=2)
    assert logger.stats == {
        "recorded": 7,
        "written": 0,
        "pending": 0,
        "dropped": 7,
        "failed_writes": 1,
        "spooled": 0,
        "unspooled": 0,
    }
    (warning,) = _drop_warnings(caplog)
    assert "store did not take 7 records" in warning and "dropped 7 records" in warning
    assert "7 no spool folder" in warning and store in warning

    caplog.clear()
    logger.record("late", "v1", [[1]], [1])
    logger.record("later", "v1", [[1]], [1])
    assert logger.stats["dropped"] == 9 and logger.stats["pending"] == 0 and _balanced(logger.stats)
    (warning,) = _drop_warnings(caplog)  # said once, not once per record
    assert "after close" in warning


def test_the_spool_keeps_at_most_max_pending_records_dropping_the_oldest(tmp_path, caplog):
    store, spool = _unwritable_store(tmp_path), tmp_path / "spool"
    first = PayloadLogger(store, "m", "1", batch_size=10, max_pending=30, spool_dir=spool)
    for i in range(20):
        first.record(f"a{i:02d}", "v1", [[i]], [i])
    first.close(timeout_s=2)
    assert first.stats["spooled"] == 20 and _balanced(first.stats)

    caplog.clear()
    second = PayloadLogger(store, "m", "1", batch_size=10, max_pending=30, spool_dir=spool)
    for i in range(25):
        second.record(f"b{i:02d}", "v1", [[i]], [i])
    second.close(timeout_s=2)
    stats = second.stats
    assert stats["spooled"] == 25 and stats["unspooled"] == 15 and stats["dropped"] == 15 and _balanced(stats)
    assert _spool_ids(spool / "m") == [f"a{i:02d}" for i in range(15, 20)] + [f"b{i:02d}" for i in range(25)]
    (warning,) = _drop_warnings(caplog)
    assert "spooled 25 records" in warning and "dropped 15 records" in warning and "15 spool full" in warning


def test_spool_files_of_another_model_are_never_sent_under_this_one(tmp_path, caplog):
    spool = tmp_path / "spool"
    other = PayloadLogger(_unwritable_store(tmp_path), "other", "1", spool_dir=spool)
    other.record("o1", "v1", [[1]], [1])
    other.close(timeout_s=2)
    (spooled,) = (spool / "other").iterdir()
    misplaced = spool / "m" / spooled.name  # a file put into this model's spool folder by hand
    misplaced.parent.mkdir()
    misplaced.write_bytes(spooled.read_bytes())

    caplog.clear()
    store = tmp_path / "store"
    logger = PayloadLogger(str(store), "m", "1", spool_dir=spool)
    logger.record("m1", "v1", [[1]], [1])
    logger.flush()
    logger.flush()
    assert [r.id for r in read_payload_logs(str(store), "m")] == ["m1"]
    assert read_payload_logs(str(store), "other") == []
    assert _spool_ids(spool / "other") == ["o1"] and misplaced.is_file()  # left where it was, unsent
    (warning,) = _drop_warnings(caplog)  # one line for the misplaced file, not one per flush
    assert str(misplaced) in warning and "a record of model 'other'" in warning
