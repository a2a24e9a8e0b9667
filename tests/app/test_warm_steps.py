"""Warm step processes on the local runner: same outputs, logs, failures and exit statuses as fresh processes.

The zygote here preloads only kfp's executor and a marker module (``colorsys``, which no step imports), so these
tests stay fast; a step that finds the marker imported ran in a fork of the zygote. The one test with the real
preload list (TensorFlow and all) is slow.
"""

import io
import json
import os
import re
import socket
import struct
import time
from pathlib import Path

import pytest
from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from shopfloor.app import warm_steps
from shopfloor.app.local_runner import PipelineFailed, run_locally

MARKER = "colorsys"


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def greet(name: str, greeting: Output[Artifact]):
    """Write a greeting and what the process looked like; log to stdout and stderr, and a progress line."""
    import json
    import logging
    import os
    import random
    import sys

    import numpy as np

    logging.basicConfig(level=logging.INFO)
    logging.getLogger("shopfloor").info("shopfloor | greeting %s", name)
    print(f"hello {name} on stdout")
    print(f"hello {name} on stderr", file=sys.stderr)
    seen = {
        "text": f"hello {name}",
        "warm": "colorsys" in sys.modules,
        "argv0": os.path.basename(sys.argv[0]),
        "main": sys.modules["__main__"].__name__,
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "kfp_runtime": os.environ.get("_KFP_RUNTIME"),
        "numpy_draw": float(np.random.random()),
        "random_draw": random.random(),
    }
    with open(greeting.path, "w") as out:
        json.dump(seen, out)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def echo(greeting: Input[Artifact], copy: Output[Artifact]):
    """Copy the greeting on."""
    import shutil

    shutil.copy(greeting.path, copy.path)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def fail(greeting: Input[Artifact], how: str, copy: Output[Artifact]):
    """Fail as asked: an exception, an exit status, or a signal."""
    import os
    import signal
    import sys

    if how == "raise":
        raise ValueError("the sensor data has no rows")
    if how == "exit":
        sys.exit(3)
    os.kill(os.getpid(), getattr(signal, how))


@dsl.pipeline(name="greetings")
def greetings(name: str = "world") -> Artifact:
    """Two greetings, one copied on."""
    first = greet(name=name)
    second = greet(name=name).after(first)
    return echo(greeting=second.outputs["greeting"]).outputs["copy"]


@dsl.pipeline(name="failing")
def failing(how: str = "raise") -> Artifact:
    """A greeting, then a step that fails."""
    first = greet(name="world")
    return fail(greeting=first.outputs["greeting"], how=how).outputs["copy"]


@pytest.fixture
def zygotes(monkeypatch: pytest.MonkeyPatch) -> list[warm_steps.WarmSteps]:
    """Light preloads (kfp's executor and the marker), and every zygote a run starts, to look at afterwards."""
    monkeypatch.delenv(warm_steps.FRESH_ENV, raising=False)
    monkeypatch.setattr(warm_steps, "PRELOAD", ("kfp.dsl.executor", "numpy", MARKER))
    started: list[warm_steps.WarmSteps] = []
    original = warm_steps.WarmSteps.__init__

    def recording(self: warm_steps.WarmSteps, preload: tuple[str, ...] | None = None) -> None:
        original(self, preload)
        started.append(self)
        deadline = time.monotonic() + 60  # steps go to the zygote once it has imported its preloads
        while not self.ready.exists() and self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)

    monkeypatch.setattr(warm_steps.WarmSteps, "__init__", recording)
    return started


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # a zombie has no process left to leak


def _screen(text: str) -> str:
    """The console without timings."""
    return re.sub(r"\(\d+\.\d s\)", "(t)", text)


def _streamed(log: Path) -> list[str]:
    """The lines the steps themselves printed, as the run's log holds them (no timestamps or paths)."""
    lines = [line.strip() for line in log.read_text().splitlines()]
    return [line for line in lines if line.startswith(("hello ", "INFO:shopfloor", "shopfloor |"))]


def _run(pipeline, arguments: dict, work: Path, fresh: bool) -> tuple[object, str]:
    console = io.StringIO()
    run = run_locally(pipeline, arguments, work, console=console, fresh_processes=fresh)
    return run, console.getvalue()


def test_kfp_internals_are_what_the_hook_assumes():
    """A kfp upgrade that changes how the subprocess runner picks its interpreter fails here, loudly."""
    assert warm_steps.kfp_hook_problem() is None
    command = " ".join(greet.component_spec.implementation.container.command)
    assert "python3 -m kfp.dsl.executor_main" in command


def test_warm_steps_give_the_outputs_logs_and_screen_of_fresh_processes(tmp_path: Path, zygotes: list):
    warm, warm_screen = _run(greetings, {"name": "plant"}, tmp_path / "warm", fresh=False)
    fresh, fresh_screen = _run(greetings, {"name": "plant"}, tmp_path / "fresh", fresh=True)

    assert len(zygotes) == 1, "the warm run started one zygote, the fresh one none"
    assert _screen(warm_screen) == _screen(fresh_screen)
    assert "shopfloor | " not in warm_screen and "      greeting plant" in warm_screen
    assert _streamed(warm.log) == _streamed(fresh.log)
    assert warm.log.read_text().count("hello plant on stdout") == 2
    assert set(warm.step_seconds) == set(fresh.step_seconds) == {"greet", "greet-2", "echo"}

    warm_out = json.loads(Path(warm.outputs["Output"]).read_text())
    fresh_out = json.loads(Path(fresh.outputs["Output"]).read_text())
    assert warm_out["warm"] and not fresh_out["warm"], "warm steps are forks of the zygote, fresh ones are not"
    for seen in (warm_out, fresh_out):
        assert seen["text"] == "hello plant"
        assert seen["argv0"] == "executor_main.py" and seen["main"] == "__main__"
        assert seen["cwd"] == os.getcwd() and seen["kfp_runtime"] == "true"
    # each step its own process, gone after the run, and with its own random state
    first = json.loads(Path(warm.outputs["Output"]).parents[1].joinpath("greet", "greeting").read_text())
    assert first["pid"] != warm_out["pid"]
    assert first["numpy_draw"] != warm_out["numpy_draw"] and first["random_draw"] != warm_out["random_draw"]
    assert _gone(first["pid"]) and _gone(warm_out["pid"])
    assert _gone(zygotes[0].pid) and not zygotes[0].folder.exists(), "the zygote ends with its run"


@pytest.mark.parametrize("how", ["raise", "exit", "SIGKILL", "SIGSEGV"])
def test_a_failing_or_killed_step_fails_the_run_naming_it(tmp_path: Path, zygotes: list, how: str):
    started = time.monotonic()
    with pytest.raises(PipelineFailed) as warm:
        _run(failing, {"how": how}, tmp_path / "warm", fresh=False)
    with pytest.raises(PipelineFailed) as fresh:
        _run(failing, {"how": how}, tmp_path / "fresh", fresh=True)

    assert time.monotonic() - started < 60, "a dead step is a failed step, never a hang"
    assert str(warm.value.source) == str(fresh.value.source) == "step 'fail'"
    assert warm.value.problem == fresh.value.problem
    if how == "raise":
        assert warm.value.problem == "the sensor data has no rows"
        tracebacks = [_traceback(error.value.log) for error in (warm, fresh)]
        assert tracebacks[0] == tracebacks[1], "the warm step's traceback starts where python -m's does"
    assert not list((tmp_path / "warm" / "pipeline-root").iterdir()), "a failed run leaves no folder behind"
    assert _gone(zygotes[0].pid)


def _traceback(log: Path) -> list[str]:
    """The failing step's traceback frames (file and function; line numbers of runpy's frozen code included)."""
    frames = re.findall(r'File "([^"]+)", line \d+, in (\S+)', log.read_text())
    return [(os.path.basename(path), function) for path, function in frames]  # each step has its own temp dir


def test_the_off_switch_runs_fresh_processes(tmp_path: Path, zygotes: list, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(warm_steps.FRESH_ENV, "1")
    run, _ = _run(greetings, {"name": "plant"}, tmp_path, fresh=False)
    assert not json.loads(Path(run.outputs["Output"]).read_text())["warm"]
    assert zygotes == [], "no zygote starts when fresh processes are asked for"


def test_steps_run_fresh_when_the_zygote_is_gone(tmp_path: Path, zygotes: list, monkeypatch: pytest.MonkeyPatch):
    """A zygote that died (or never started) leaves the shim nothing to connect to: it runs the step fresh."""
    original = warm_steps.WarmSteps.__init__

    def dead_on_arrival(self: warm_steps.WarmSteps, preload: tuple[str, ...] | None = None) -> None:
        original(self, preload)
        self.process.kill()
        self.process.wait()

    monkeypatch.setattr(warm_steps.WarmSteps, "__init__", dead_on_arrival)
    run, screen = _run(greetings, {"name": "plant"}, tmp_path, fresh=False)
    assert not json.loads(Path(run.outputs["Output"]).read_text())["warm"]
    assert "< echo: ok" in screen
    assert "the warm step process server failed" in run.log.read_text()


def test_the_kfp_hook_is_removed_after_the_run(tmp_path: Path, zygotes: list):
    from kfp.local import subprocess_task_handler

    before = subprocess_task_handler.environment
    _run(greetings, {"name": "plant"}, tmp_path, fresh=False)
    assert subprocess_task_handler.environment is before


@pytest.mark.slow
def test_the_real_zygote_forks_single_threaded_and_its_steps_run_tensorflow(tmp_path: Path):
    """With every preload (TensorFlow, pandas, lightgbm, ...): one thread at each fork, and TF works in the fork."""
    zygote = warm_steps.WarmSteps()
    preloaded, deadline = False, time.monotonic() + 180
    try:
        while not preloaded and time.monotonic() < deadline:  # until a request comes after every preload
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.connect(str(zygote.socket_path))
            argv = ["-m", warm_steps.EXECUTOR_MODULE, "--help"]
            payload = json.dumps({"argv": argv, "cwd": str(tmp_path), "env": dict(os.environ)}).encode()
            with open(os.devnull, "w") as null:
                socket.send_fds(connection, [struct.pack("!Q", len(payload))], [null.fileno()] * 3)
                connection.sendall(payload)
            replies = connection.makefile("rb")
            started, finished = json.loads(replies.readline()), json.loads(replies.readline())
            assert started["threads_at_fork"] == 1 and finished == {"returncode": 0}
            preloaded = started["preloaded"]
            time.sleep(1)
    finally:
        zygote.stop()

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def tensorflow_sum(result: Output[Artifact]):
        import tensorflow as tf

        with open(result.path, "w") as out:
            out.write(str(int(tf.reduce_sum(tf.constant([1, 2, 3])))))

    @dsl.pipeline(name="tensorflow-twice")
    def tensorflow_twice() -> Artifact:
        first = tensorflow_sum()
        return tensorflow_sum().after(first).outputs["result"]

    assert preloaded, "the zygote imported everything within 3 minutes"
    run = run_locally(tensorflow_twice, {}, tmp_path / "work", console=io.StringIO())
    assert Path(run.outputs["Output"]).read_text() == "6"


def test_a_signal_status_from_the_zygote_kills_the_shim_with_that_signal(tmp_path: Path, zygotes: list):
    """The shim ends as the step ended: its exit code, or the signal that killed it (as ``sh`` would see)."""
    import subprocess

    zygote = warm_steps.WarmSteps(("kfp.dsl.executor",))
    try:
        for code, expected in (("import sys; sys.exit(7)", 7), ("import os; os.kill(os.getpid(), 9)", -9)):
            module = tmp_path / "ephemeral_component.py"
            module.write_text(code)
            function = ["--function_to_execute", "main", "--executor_input", "{}"]
            result = subprocess.run(
                [zygote.shim, "-m", warm_steps.EXECUTOR_MODULE, "--component_module_path", str(module), *function],
                capture_output=True,
                check=False,
                timeout=60,
            )
            # executor_main imports the module before parsing the rest: the code runs at its import
            assert result.returncode == expected, result.stderr[-2000:]
    finally:
        zygote.stop()


def test_the_steps_that_wait_for_the_zygote_are_steps_of_ours() -> None:
    """A renamed step must not silently start fresh beside the zygote's TensorFlow import again."""
    import ast

    from shopfloor import components

    steps = set()
    for path in Path(components.__path__[0]).glob("*/component.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any("component" in ast.unparse(d) for d in node.decorator_list):
                steps.add(node.name)
    assert warm_steps.HEAVY_STEPS <= steps, warm_steps.HEAVY_STEPS - steps
    assert {"train", "evaluate", "explain"} <= warm_steps.HEAVY_STEPS
