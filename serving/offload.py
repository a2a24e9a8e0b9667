"""Model work off the event loop: explanations in a bounded pool, concurrent predicts batched into one call.

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

import numpy as np

__all__ = ["BoundedPool", "MicroBatcher", "Overloaded"]

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


class MicroBatcher:
    """Concurrent predicts share one model call, run off the event loop; never waits for a batch to fill.

    With 200 clients each sending one window, one TensorFlow call per request on the event loop held the loop for
    every call in turn (p99 0.5 s, accept queues starving). Here requests queue their rows; while a call runs, the
    next requests gather, and the next call takes them all (up to ``max_batch`` rows), so batches grow with load
    and a lone request is answered at once. More than ``max_pending`` rows waiting: 503 with ``Retry-After``.
    ``on_batch``, when given, is called with the number of rows of each model call, on the event loop.
    """

    def __init__(
        self,
        name: str,
        score: Callable[[np.ndarray], dict[str, np.ndarray]],
        max_batch: int,
        on_batch: Callable[[int], None] | None = None,
    ):
        self.name = name
        self.on_batch = on_batch  # told the rows of each model call (the batch-size metric)
        self.max_batch = max_batch
        self.max_pending = 8 * max_batch
        self._score = score
        self._pending: list[tuple[np.ndarray, asyncio.Future[dict[str, np.ndarray]]]] = []
        self._pending_rows = 0
        self._draining = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-predict")

    async def score(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The model's outputs for ``rows`` (one entry per row), scored together with whatever else is waiting."""
        if self._pending_rows + len(rows) > self.max_pending:
            raise Overloaded(f"{self.name}: {self._pending_rows} rows waiting to be scored, try again shortly")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[dict[str, np.ndarray]] = loop.create_future()
        self._pending.append((rows, answer))
        self._pending_rows += len(rows)
        if not self._draining:
            self._draining = True
            loop.create_task(self._drain())
        return await answer

    def _next_batch(self) -> list[tuple[np.ndarray, asyncio.Future[dict[str, np.ndarray]]]]:
        """The oldest waiting requests whose rows fit in one call (at least one request)."""
        taken: list[tuple[np.ndarray, asyncio.Future[dict[str, np.ndarray]]]] = []
        rows = 0
        while self._pending and (not taken or rows + len(self._pending[0][0]) <= self.max_batch):
            request = self._pending.pop(0)
            taken.append(request)
            rows += len(request[0])
        self._pending_rows -= rows
        return taken

    async def _drain(self) -> None:
        """Score waiting requests call by call until none is left; each request gets its rows' slice."""
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch = self._next_batch()
                rows = np.concatenate([request for request, _ in batch]) if len(batch) > 1 else batch[0][0]
                if self.on_batch is not None:
                    self.on_batch(len(rows))
                try:
                    outputs = await loop.run_in_executor(self._executor, self._score, rows)
                except Exception as error:  # every request of the call gets the model's error
                    for _, answer in batch:
                        if not answer.done():
                            answer.set_exception(error)
                    continue
                start = 0
                for request, answer in batch:
                    end = start + len(request)
                    if not answer.done():  # a client that went away cancelled its future
                        answer.set_result({name: values[start:end] for name, values in outputs.items()})
                    start = end
        finally:
            self._draining = False
