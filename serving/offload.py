"""Heavy requests off the event loop, in a bounded pool: explanations never stall predicts or health checks.

An explanation of a large batch takes seconds of TensorFlow work; run on the event loop it held every other
request (predicts waited 1.7 s, readiness 1.5 s). Here it runs in a small thread pool (TensorFlow releases the
GIL while it computes), at most ``workers`` at once and ``waiting`` more queued; beyond that the server answers
503 with ``Retry-After`` at once instead of queueing without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

__all__ = ["BoundedPool", "Overloaded"]

T = TypeVar("T")


class Overloaded(Exception):
    """The pool is full: the request should be retried after ``retry_after_s``."""

    def __init__(self, reason: str, retry_after_s: int = 1):
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class BoundedPool:
    """At most ``workers`` calls run and ``waiting`` wait; the next one is refused with ``Overloaded``.

    The calls run in threads, or in ``executor`` when given (``serving.explain_process``: a worker process).
    """

    def __init__(self, name: str, workers: int = 1, waiting: int = 2, executor: Executor | None = None):
        self.name = name
        self.capacity = workers + waiting
        self.in_flight = 0  # changed only on the event loop's thread
        self.executor = executor or ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` in the pool and await its result, or refuse at once when the pool is full."""
        if self.in_flight >= self.capacity:
            raise Overloaded(f"{self.name}: {self.in_flight} requests in progress, try again shortly")
        self.in_flight += 1
        try:
            return await asyncio.wrap_future(self.executor.submit(function, *args))
        except BrokenProcessPool as error:  # the worker process died (out of memory, killed): a new one starts
            restart = getattr(self.executor, "restart_if_broken", None)
            if restart is not None:
                restart(error)
            raise Overloaded(f"{self.name}: the explaining process stopped and is restarting", 10) from None
        finally:
            self.in_flight -= 1
