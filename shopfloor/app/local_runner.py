"""Run a pipeline on KFP's local runner with per-step progress on screen and the full log in a file.

The runner's own output (executor inputs, streamed task logs) goes to ``<work>/logs/<run>.log``; the screen
shows each step starting and finishing, the progress lines steps report, and on failure the one-line error the
failing step raised. A failed run's folder is removed, so bad input leaves no half-written artifact behind.

Steps run as warm step processes (``shopfloor.app.warm_steps``): each is a fork of a process that imported
TensorFlow, pandas, lightgbm, kfp, ... once for the run, instead of a fresh interpreter importing them again.
``fresh_processes=True`` or ``SHOPFLOOR_FRESH_STEP_PROCESSES=1`` starts a fresh interpreter per step, as KFP does.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import datetime as dt
import io
import logging
import re
import shutil
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from shopfloor.app.warm_steps import warm_step_processes
from shopfloor.common.errors import ShopfloorError
from shopfloor.common.progress import PROGRESS_PREFIX

__all__ = ["LocalRun", "PipelineFailed", "ProgressStream", "run_locally"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
_ERROR = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception)): (.+)$")


class PipelineFailed(ShopfloorError):
    """A step of a local run failed; carries the step's own one-line error and where the full log is."""

    def __init__(self, step: str, problem: str, log: Path):
        self.log = log
        super().__init__(f"step '{step}'", problem)

    def __str__(self) -> str:
        return f"{self.problem} [{self.source} failed; full log: {self.log}]"


@dataclasses.dataclass(frozen=True)
class LocalRun:
    """Where a finished local run left its outputs, and how long it and each step took.

    ``step_seconds`` is keyed by step name; the iterations of a ``dsl.ParallelFor`` share their step's name,
    so their times add up there (the step's total process time, not the loop's wall time).
    """

    name: str
    folder: Path
    outputs: dict[str, str]
    log: Path
    seconds: float
    step_seconds: dict[str, float]


class ProgressStream(io.TextIOBase):
    """A stdout replacement: every line goes to the log; step starts/ends and progress lines to the console."""

    def __init__(self, log: TextIO, console: TextIO):
        self._log, self._console = log, console
        self._pending = ""
        self._started: dict[str, list[float]] = {}
        self.step_seconds: dict[str, float] = {}
        self.failed_step: str | None = None
        self.last_error: str | None = None

    def writable(self) -> bool:  # noqa: D102
        return True

    def write(self, text: str) -> int:  # noqa: D102
        self._log.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._show(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:  # noqa: D102
        self._log.flush()
        self._console.flush()

    def _show(self, line: str) -> None:
        """Translate one runner log line into a console line, if it is worth showing."""
        if started := _STARTED.search(line):
            self._started.setdefault(started[1], []).append(time.monotonic())
            self._console.write(f"  > {started[1]} ...\n")
        elif finished := _FINISHED.search(line):
            step, status = finished[1], finished[2]
            starts = self._started.get(step) or [time.monotonic()]
            seconds = time.monotonic() - starts.pop(0)
            self.step_seconds[step] = self.step_seconds.get(step, 0.0) + seconds
            mark = "ok" if status == "SUCCESS" else status
            self._console.write(f"  < {step}: {mark} ({seconds:.1f} s)\n")
            if status != "SUCCESS":
                self.failed_step = step
        elif PROGRESS_PREFIX in line:
            self._console.write(f"      {line.split(PROGRESS_PREFIX, 1)[1]}\n")
        elif error := _ERROR.match(line):
            self.last_error = error[2].strip()
        self._console.flush()


def _release_log_handlers(stream: ProgressStream, console: TextIO) -> None:
    """Point log handlers made during the run at the console: the run's log file closes when it ends.

    kfp's runner creates handlers on ``sys.stdout`` (our stream while the run lasts); one that outlives the run
    would otherwise fail on every later log line of this process (e.g. monitoring after ``shopfloor run``).
    """
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
                handler.setStream(console)


def _noted(log: TextIO) -> Callable[[str], None]:
    """Where a problem of the warm step processes goes: a line in the run's log (the steps run fresh instead)."""

    def note(problem: str) -> None:
        log.write(f"shopfloor: {problem}\n")
        log.flush()

    return note


def run_locally(
    pipeline: Callable,
    arguments: dict,
    work_dir: Path,
    console: TextIO = sys.stderr,
    fresh_processes: bool = False,
) -> LocalRun:
    """Run ``pipeline`` on ``kfp.local`` (subprocesses, this environment) under ``work_dir``.

    Steps are forks of a warm zygote unless ``fresh_processes`` (or ``SHOPFLOOR_FRESH_STEP_PROCESSES=1``) asks for
    a fresh interpreter per step; either way each step is its own process and fails the run on its own.
    """
    from kfp import local

    root = work_dir / "pipeline-root"
    logs = work_dir / "logs"
    root.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    before = set(root.iterdir())
    log_path = logs / f"run-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%fZ')}.log"
    started = time.monotonic()
    original_print = builtins.print
    with log_path.open("w") as log, warm_step_processes(not fresh_processes, on_problem=_noted(log)):
        stream = ProgressStream(log, console)
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
        try:
            with contextlib.redirect_stdout(stream), warnings.catch_warnings():
                # the runner warns that our image and resource limits do not apply locally: expected here
                warnings.filterwarnings("ignore", module=r"kfp\.local\..*")
                task = pipeline(**arguments)
        except Exception as exc:
            for folder in set(root.iterdir()) - before:  # no half-written artifacts of a failed run
                shutil.rmtree(folder, ignore_errors=True)
            problem = stream.last_error or str(exc).splitlines()[0]
            raise PipelineFailed(stream.failed_step or "pipeline", problem, log_path) from None
        finally:
            # kfp's indented_print swaps builtins.print per task; parallel loop iterations can leave it swapped
            builtins.print = original_print
            _release_log_handlers(stream, console)
    created = sorted(set(root.iterdir()) - before)
    folder = created[-1] if created else root
    outputs = {name: artifact.path for name, artifact in task.outputs.items()}
    return LocalRun(
        name=folder.name,
        folder=folder,
        outputs=outputs,
        log=log_path,
        seconds=time.monotonic() - started,
        step_seconds=dict(stream.step_seconds),
    )
