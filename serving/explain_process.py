"""Explanations in a process of their own: predicts and health checks never wait for TensorFlow's explain work.

In one process, an explanation and a predict share TensorFlow's thread pools: a batch-1 predict queued behind
the explanation's gradient work for 100-350 ms on two cores, however the work was chunked. A model server that
also explains (``shopfloor run``, ``shopfloor serve``, an edge PC) therefore hands explanations to one worker
process that loads the same model folder with TensorFlow limited to ``threads`` threads, so the predicting process
keeps the rest of the machine. The InferenceService's explainer replica explains only and keeps the in-process
pool (``serving.offload``). The worker starts with the server and loads in the background; until it is up,
explanations wait for it. A worker that dies (out of memory, killed) is replaced at the next explanation, which
is answered 503 with ``Retry-After`` meanwhile. Shutting down terminates the worker at once.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

__all__ = ["ExplainProcess", "explain_in_worker"]

T = TypeVar("T")
_WORKER_MODEL: Any = None  # the model the worker process explains with; set by _load_in_worker


def _exit_with(parent: int) -> None:
    """Leave when the serving process is gone: a killed server (SIGKILL, out of memory) must not leave its worker.

    The worker holds both ends of its task queue, so it would never see the parent go; it polls its parent id.
    The id is the server's as the server knew it, not the worker's first ``getppid()``: a server killed while the
    worker still started up has already handed the worker to init by then.
    """
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _load_in_worker(
    server: int, class_path: str, name: str, folder: str, settings: dict[str, Any], threads: int
) -> None:
    """Worker start: follow the server's life, limit TensorFlow's threads, then load the served model class."""
    threading.Thread(target=_exit_with, args=(server,), name="exit-with-server", daemon=True).start()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    module_name, _, class_name = class_path.partition(":")
    served = getattr(importlib.import_module(module_name), class_name)
    model = served(name, folder, model_version=settings.pop("model_version"), max_batch=settings.pop("max_batch"))
    for attribute, value in settings.items():
        setattr(model, attribute, value)
    model.load()
    global _WORKER_MODEL
    _WORKER_MODEL = model


def _loaded() -> bool:
    """A no-op the server sends first, so the worker starts loading the model while the server starts."""
    return _WORKER_MODEL is not None


def explain_in_worker(payload: Any, headers: dict[str, str] | None = None) -> Any:
    """Explain a request with the worker's model: what ``explain_now`` answers in the serving process."""
    return _WORKER_MODEL.explain_now(payload, headers)


class ExplainProcess(Executor):
    """One worker process holding the model for explanations: the executor of the model's ``BoundedPool``."""

    def __init__(self, model: Any, threads: int = 1):
        served = type(model)
        self._initargs = (
            f"{served.__module__}:{served.__qualname__}",
            model.name,
            str(model.model_dir),
            {"model_version": model.model_version, "max_batch": model.max_batch, "explain_steps": model.explain_steps},
            threads,
        )
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        """A fresh worker (spawned: a forked TensorFlow is not safe), told to load the model at once."""
        executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_load_in_worker,
            initargs=(os.getpid(), *self._initargs),
        )
        executor.submit(_loaded)
        return executor

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in the worker process (``fn`` and its arguments must pickle)."""
        return self._executor.submit(fn, *args, **kwargs)

    def restart_if_broken(self, error: BaseException) -> None:
        """After a call failed because the worker died, start a new one for the next call."""
        if isinstance(error, BrokenProcessPool):
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._start()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the worker process at once, even mid-explanation or while it still loads TensorFlow.

        A graceful shutdown would wait for the worker to finish loading (10-20 s) before it reads the stop
        sentinel, and the interpreter's exit joins it: a SIGTERM'd server then outlived its grace period. The
        executor has no public way to stop a worker, so its process table is read (a private attribute).
        """
        workers = list(getattr(self._executor, "_processes", {}).values())
        self._executor.shutdown(wait=False, cancel_futures=True)
        for worker in workers:
            worker.terminate()
        if wait:
            for worker in workers:
                worker.join(10)
