"""Concurrent predicts share one model call: each request gets exactly its rows' answers, errors reach everyone."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from shopfloor.serving.offload import MicroBatcher, Overloaded


class Recorder:
    """A model that doubles its rows and records the batch sizes it was called with (and on which thread)."""

    def __init__(self, fail_on: float | None = None):
        self.calls: list[int] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on
        self.gate = threading.Event()

    def __call__(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        self.gate.wait(5)
        self.calls.append(len(rows))
        self.threads.add(threading.current_thread().name)
        if self.fail_on is not None and (rows == self.fail_on).any():
            raise ValueError("the model refused a row")
        return {"double": rows[:, 0] * 2, "rows": rows}


def _requests(count: int) -> list[np.ndarray]:
    return [np.full((1 + i % 3, 2), float(i)) for i in range(count)]


def test_requests_waiting_during_a_call_share_the_next_call() -> None:
    model = Recorder()

    async def scenario():
        batcher = MicroBatcher("pm", model, max_batch=64)
        first = asyncio.ensure_future(batcher.score(np.zeros((1, 2))))
        await asyncio.sleep(0.05)  # the first call is running (held at the gate) while 40 more arrive
        rest = [asyncio.ensure_future(batcher.score(rows)) for rows in _requests(40)]
        await asyncio.sleep(0.05)
        model.gate.set()
        return await first, await asyncio.gather(*rest)

    first, answers = asyncio.run(scenario())
    assert first["double"].tolist() == [0.0]
    for rows, answer in zip(_requests(40), answers, strict=True):
        assert np.array_equal(answer["rows"], rows) and np.array_equal(answer["double"], rows[:, 0] * 2)
    assert model.calls[0] == 1 and sum(model.calls) == 1 + sum(len(r) for r in _requests(40))
    assert max(model.calls[1:]) <= 64 and len(model.calls) <= 3, model.calls  # 80 rows: two calls, not 40
    assert model.threads == {"pm-predict_0"}, "the model runs off the event loop, on one thread"


def test_a_model_error_reaches_every_request_of_its_call_and_the_next_call_runs() -> None:
    model = Recorder(fail_on=3.0)

    async def scenario():
        batcher = MicroBatcher("pm", model, max_batch=64)
        blocker = asyncio.ensure_future(batcher.score(np.zeros((1, 2))))
        await asyncio.sleep(0.05)  # the first call runs alone; the next five wait and share the second
        together = [asyncio.ensure_future(batcher.score(rows)) for rows in _requests(5)]
        await asyncio.sleep(0.05)
        model.gate.set()
        results = await asyncio.gather(blocker, *together, return_exceptions=True)
        after = await batcher.score(np.ones((2, 2)))
        return results, after

    results, after = asyncio.run(scenario())
    assert isinstance(results[0], dict)
    assert all(isinstance(result, ValueError) for result in results[1:]), results
    assert after["double"].tolist() == [2.0, 2.0]


def test_more_waiting_rows_than_the_bound_are_refused_at_once() -> None:
    model = Recorder()

    async def scenario():
        batcher = MicroBatcher("pm", model, max_batch=4)
        waiting = [asyncio.ensure_future(batcher.score(np.zeros((4, 2)))) for _ in range(8)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded, match="rows waiting to be scored"):
            await batcher.score(np.zeros((4, 2)))
        model.gate.set()
        return await asyncio.gather(*waiting)

    assert len(asyncio.run(scenario())) == 8
