"""One ``shopfloor run`` per work dir at a time: a lock the second run meets at once, naming the first.

Two runs in one work dir used to both exit 0: they share the pipeline root, the model store and the serving
state, so one printed a dead URL and the other's version as published. The lock is an ``flock`` on
``<work-dir>/.shopfloor.lock``: the kernel releases it when the holder exits, however it exits, so a crashed run
never leaves the work dir locked. The file says who holds it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from shopfloor.common.errors import ShopfloorError

__all__ = ["LOCK_FILE", "exclusive_work_dir", "writable_work_dir"]

LOCK_FILE = ".shopfloor.lock"


def writable_work_dir(work_dir: Path) -> Path:
    """Create the work dir if needed; a path under a file or without write access is a one-line error."""
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        probe = work_dir / f".write-check-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ShopfloorError(
            str(work_dir), f"cannot write there ({exc.strerror})", field="--work-dir", expected="a writable folder"
        ) from None
    return work_dir


@contextlib.contextmanager
def exclusive_work_dir(work_dir: Path, purpose: str) -> Iterator[Path]:
    """Hold the work dir for ``purpose`` (e.g. 'run predictive-maintenance') until the block ends."""
    writable_work_dir(work_dir)
    path = work_dir / LOCK_FILE
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ShopfloorError(
                str(work_dir), f"in use by {holder}", field="--work-dir", expected="one run per work dir at a time"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        handle.write(f"shopfloor {purpose} (pid {os.getpid()}, since {started})\n")
        handle.flush()
        try:
            yield work_dir
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
