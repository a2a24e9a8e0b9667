"""Warm step processes for the KFP local runner: each step is a fork of a process that has its libraries imported.

KFP's ``SubprocessRunner`` starts every step as ``sh -ec '<write ephemeral_component.py>; python3 -m
kfp.dsl.executor_main ...'``, so each step's fresh interpreter imports TensorFlow, pandas, lightgbm, kfp, ... again:
seconds per step that are pure runner overhead. For the duration of a local run, :func:`warm_step_processes`

* starts a *zygote*: a fork server that imports the libraries the steps use (``PRELOAD``, then the modules the
  steps' bodies import) without running a TensorFlow op, so no TensorFlow thread pool exists when it forks;
* puts a small *shim* executable in the interpreter's place in the step command, by wrapping the one function of
  ``kfp.local.subprocess_task_handler`` that names the interpreter (``environment``) and restoring it afterwards.
  The shim sends its argv, cwd, environment and stdin/stdout/stderr (``socket.send_fds``) to the zygote, which
  forks a child that runs ``kfp.dsl.executor_main`` as ``__main__`` exactly as ``python -m`` would, and reports
  the child's exit status back; the shim exits with it (or dies of the same signal).

What stays as with fresh processes: each step is still its own process with its own memory (a fork, as on a
cluster each step is its own pod); KFP itself still runs ``sh``, reads the step's output and decides success from
the exit status, so logs, progress lines and failures look as before. What differs, honestly: a step starts with
every preloaded module already imported, so module import-time state (registries filled at import, cached
config, environment variables libraries read at import) is the zygote's, not one computed by the step's own
process; the hash seed (``PYTHONHASHSEED``) is the zygote's; import-time warnings are printed once by the zygote
rather than in every step's log. numpy's global RNG is reseeded in every child (Python's ``random`` reseeds itself
on fork), and Arrow's jemalloc background thread is off in the zygote so that it forks single-threaded
(OpenBLAS stops its own workers before a fork).

Anything that goes wrong falls back to a fresh interpreter: a zygote that cannot start or dies (the shim then
execs the real interpreter), a command that is not the executor (``pip install``), a KFP whose internals changed
(:func:`kfp_hook_problem`). ``SHOPFLOOR_FRESH_STEP_PROCESSES=1`` turns the whole mechanism off.

Until the zygote has imported everything, a light step (ingest, label, publish...) starts a fresh interpreter
rather than wait; a step that imports TensorFlow or LightGBM itself (``HEAVY_STEPS``) waits for the zygote, which
is already importing them, instead of importing them a second time beside it on the same cores.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "FRESH_ENV",
    "PRELOAD",
    "WarmSteps",
    "fresh_processes_requested",
    "kfp_hook_problem",
    "warm_step_processes",
]

FRESH_ENV = "SHOPFLOOR_FRESH_STEP_PROCESSES"
EXECUTOR_MODULE = "kfp.dsl.executor_main"
# Steps that import TensorFlow (or LightGBM and scikit-learn) themselves: they wait for the zygote, which is
# importing them already, instead of importing them once more beside it on the same cores.
HEAVY_STEPS = frozenset({"train", "evaluate", "explain", "hpo_worker", "hpo_setup", "hpo_select"})

# What the zygote imports, in this order; then the modules the steps' bodies import (components/*/component.py),
# then the built-in model families. Light libraries come first: the zygote serves steps between two imports, so
# the first steps wait for these, not for TensorFlow. Never kfp.dsl.executor_main itself: runpy runs it afresh.
PRELOAD: tuple[str, ...] = (
    "kfp.dsl.executor",
    "kfp.dsl.kfp_config",
    "kfp.dsl.utils",
    "numpy",
    "pandas",
    "pydantic",
    "sklearn.metrics",
    "scipy.stats",
    "lightgbm",
    "matplotlib.pyplot",  # with the Agg backend, as shopfloor.common.plots selects it
    "PIL.Image",
    "tensorflow",
    "keras",
    "optuna",
    "@steps",
    "@families",
)

_SHIM = '''#!{python} -IS
"""A step's interpreter on shopfloor's local runner: the step runs in a fork of the warm zygote at SOCKET."""
import json, os, signal, socket, struct, sys, time

SOCKET = {socket!r}
READY = {ready!r}
PYTHON = {python!r}


def fresh():
    os.execv(PYTHON, [PYTHON, *sys.argv[1:]])


def function():
    args = sys.argv[1:]
    return args[args.index("--function_to_execute") + 1] if "--function_to_execute" in args[:-1] else ""


def ready():
    if os.path.exists(READY):
        return True
    if function() not in {heavy!r}:
        return False  # a light step starts fresh sooner than the zygote finishes importing TensorFlow
    deadline = time.monotonic() + 120  # a TensorFlow step would import it anyway: the zygote is already at it
    while time.monotonic() < deadline and not os.path.exists(READY):
        time.sleep(0.05)
    return os.path.exists(READY)


def main():
    if sys.argv[1:3] != ["-m", {executor!r}] or not ready():
        fresh()  # not a step, or a light one while the zygote is still importing
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(SOCKET)
        request = {{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}}
        payload = json.dumps(request).encode()
        socket.send_fds(conn, [struct.pack("!Q", len(payload))], [0, 1, 2])
        conn.sendall(payload)
        replies = conn.makefile("rb")
        started = json.loads(replies.readline() or b"{{}}")
    except (OSError, ValueError):
        started = {{}}
    if "pid" not in started:
        fresh()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the step itself: it shares our process group
    try:
        finished = json.loads(replies.readline() or b"{{}}")
    except (OSError, ValueError):
        finished = {{}}
    if "returncode" not in finished:
        print("shopfloor: the warm step process server stopped before the step finished", file=sys.stderr)
        os._exit(1)
    code = finished["returncode"]
    if code < 0:  # die of the step's signal, as its own interpreter did
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL and SIGSTOP keep their default
            pass
        os.kill(os.getpid(), -code)
        os._exit(128 - code)
    os._exit(code)


main()
'''


def fresh_processes_requested() -> bool:
    """Whether ``SHOPFLOOR_FRESH_STEP_PROCESSES`` asks for a fresh interpreter per step (the off switch)."""
    return os.environ.get(FRESH_ENV, "").strip().lower() not in ("", "0", "false", "no")


# ------------------------------------------------------------------------------------------------- the KFP hook


def kfp_hook_problem() -> str | None:
    """Why the hook into KFP's subprocess runner would not work with the installed kfp; None when it would.

    The hook assumes what kfp 2.17 does: ``SubprocessTaskHandler.run`` takes the interpreter from the context
    manager ``environment(use_venv, runner_config, has_pip_install)`` and puts it in place of ``python3`` in the
    step's command (``replace_python_executable``), and a lightweight component's command runs
    ``python3 -m kfp.dsl.executor_main``. A kfp that changes any of that makes this return the reason (tests
    check it returns None), and runs fall back to fresh processes.
    """
    from kfp.dsl import component_factory
    from kfp.local import subprocess_task_handler as handler

    environment = getattr(handler, "environment", None)
    if environment is None or not callable(environment):
        return "kfp.local.subprocess_task_handler.environment is gone"
    if list(inspect.signature(environment).parameters) != ["use_venv", "runner_config", "has_pip_install"]:
        return f"kfp.local.subprocess_task_handler.environment{inspect.signature(environment)} changed"
    run_names = handler.SubprocessTaskHandler.run.__code__.co_names
    if "environment" not in run_names or "replace_python_executable" not in run_names:
        return "SubprocessTaskHandler.run no longer takes its interpreter from environment()"
    if getattr(component_factory, "EXECUTOR_MODULE", None) != EXECUTOR_MODULE:
        return f"kfp's executor module is no longer {EXECUTOR_MODULE}"
    source = inspect.getsource(component_factory._get_command_and_args_for_lightweight_component)
    if "python3 -m {EXECUTOR_MODULE}" not in source:
        return "a lightweight component's command no longer runs python3 -m the executor"
    return None


_hook_lock = threading.Lock()
_hook_users = 0
_original_environment: Callable[..., Any] | None = None
_shims: list[str] = []  # the shims of the warm runs in progress, newest last (KFP may start steps on any thread)


def _warm_environment(*args: Any, **kwargs: Any) -> contextlib.AbstractContextManager[str]:
    """KFP's ``environment`` as it is, but the current run's shim in place of this interpreter."""
    assert _original_environment is not None
    original = _original_environment

    @contextlib.contextmanager
    def chosen() -> Iterator[str]:
        with original(*args, **kwargs) as executable:
            shim = _shims[-1] if _shims else None
            pip_install = bool(kwargs.get("has_pip_install", args[2] if len(args) > 2 else False))
            yield shim if shim and executable == sys.executable and not pip_install else executable

    return chosen()


@contextlib.contextmanager
def _hook_installed(shim: str) -> Iterator[None]:
    """KFP's subprocess runner starts steps through ``shim`` while the block lasts (the newest block's shim)."""
    global _hook_users, _original_environment
    from kfp.local import subprocess_task_handler as handler

    with _hook_lock:
        if _hook_users == 0:
            _original_environment = handler.environment
            handler.environment = _warm_environment
        _hook_users += 1
        _shims.append(shim)
    try:
        yield
    finally:
        with _hook_lock:
            _shims.remove(shim)
            _hook_users -= 1
            if _hook_users == 0:
                handler.environment = _original_environment
                _original_environment = None


# --------------------------------------------------------------------------------------- the runner's side


class WarmSteps:
    """A running zygote and the shim that sends steps to it; :meth:`stop` ends both."""

    def __init__(self, preload: tuple[str, ...] | None = None):
        self.folder = Path(tempfile.mkdtemp(prefix="shopfloor-steps-"))
        self.socket_path = self.folder / "zygote.sock"
        self.ready = self.folder / "ready"  # the zygote creates it when it has imported everything
        self.shim = str(self.folder / "python")
        self._diagnostics = self.folder / "zygote.log"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        read_end, self._control = os.pipe()
        try:
            listener.bind(str(self.socket_path))
            listener.listen(64)
            shim = _SHIM.format(
                python=sys.executable,
                socket=str(self.socket_path),
                ready=str(self.ready),
                executor=EXECUTOR_MODULE,
                heavy=HEAVY_STEPS,
            )
            Path(self.shim).write_text(shim)
            os.chmod(self.shim, 0o700)
            # Arrow's jemalloc starts a background thread when loaded: off here, so the zygote forks single-threaded
            malloc_conf = ",".join(filter(None, [os.environ.get("JE_ARROW_MALLOC_CONF"), "background_thread:false"]))
            with self._diagnostics.open("wb") as diagnostics:
                modules = json.dumps(PRELOAD if preload is None else preload)
                self.process = subprocess.Popen(
                    [sys.executable, "-m", __name__, str(listener.fileno()), str(read_end), modules, str(self.ready)],
                    pass_fds=(listener.fileno(), read_end),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=diagnostics,
                    env={**os.environ, "JE_ARROW_MALLOC_CONF": malloc_conf},
                )
        except BaseException:
            os.close(self._control)
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        finally:
            # the zygote holds the only listening socket: once it is gone, the shim's connect fails and it runs fresh
            listener.close()
            os.close(read_end)

    @property
    def pid(self) -> int:
        """The zygote's process id."""
        return self.process.pid

    def stop(self) -> str | None:
        """End the zygote (and any step of it still running) and remove its folder; its stderr if it failed."""
        with contextlib.suppress(OSError):
            os.close(self._control)
        if self.process.poll() is None:
            self.process.terminate()  # steps still running die with it (their parent-death signal)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        failed = self.process.returncode not in (0, -signal.SIGTERM)
        problem = self._diagnostics.read_text(errors="replace").strip() if failed else None
        shutil.rmtree(self.folder, ignore_errors=True)
        return problem or (f"exit status {self.process.returncode}" if failed else None)


@contextlib.contextmanager
def warm_step_processes(enabled: bool = True, on_problem: Callable[[str], None] | None = None) -> Iterator[bool]:
    """Run the local runner's steps (those started while the block lasts) as forks of a warm zygote.

    Yields whether steps run warm: False when ``enabled`` is False, ``SHOPFLOOR_FRESH_STEP_PROCESSES`` is set,
    the installed kfp does not fit the hook, or the zygote cannot start; they then run in fresh processes as
    before. ``on_problem`` hears why warm steps were not available, or the zygote's stderr if it failed.
    """
    problem = None if enabled and not fresh_processes_requested() else "off"
    problem = problem or kfp_hook_problem()
    warm: WarmSteps | None = None
    if problem is None:
        try:
            warm = WarmSteps()
        except Exception as exc:
            problem = f"the warm step process server did not start: {exc}"
    if warm is None:
        if problem != "off" and on_problem is not None:
            on_problem(f"steps run in fresh processes: {problem}")
        yield False
        return
    try:
        with _hook_installed(warm.shim):
            yield True
    finally:
        stopped = warm.stop()
        if stopped and on_problem is not None:
            on_problem(f"the warm step process server failed: {stopped}")


# ------------------------------------------------------------------------------------------- the zygote's side


def _step_imports() -> list[str]:
    """The modules the steps' bodies import (every ``components/<step>/component.py``), in file order."""
    found: list[str] = []
    spec = importlib.util.find_spec("shopfloor.components")
    for folder in sorted(spec.submodule_search_locations or []) if spec else []:
        for path in sorted(Path(folder).glob("*/component.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.append(node.module)
                elif isinstance(node, ast.Import):
                    found.extend(alias.name for alias in node.names)
    return list(dict.fromkeys(name for name in found if name != EXECUTOR_MODULE))


def _family_modules() -> list[str]:
    """The built-in model families' modules (plugins are imported by the steps that ask for them)."""
    from shopfloor.families import registry

    return [location.partition(":")[0] for location in registry._BUILT_IN.values()]


def _preload(name: str) -> None:
    """Import ``name`` (or the step or family modules for ``@steps``/``@families``); failures are the steps' own."""
    names = _step_imports() if name == "@steps" else _family_modules() if name == "@families" else [name]
    for module in names:
        try:
            if module == "matplotlib.pyplot":
                import matplotlib

                matplotlib.use("Agg")
            importlib.import_module(module)
        except BaseException as exc:
            print(f"preload {module}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


def _thread_count() -> int:
    """This process's threads, native ones included (Linux); 1 where that cannot be read."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _tensorflow_started() -> bool:
    """Whether TensorFlow's runtime (its eager context, and with it its thread pools) exists in this process."""
    context = sys.modules.get("tensorflow.python.eager.context")
    handle = getattr(context, "_context", None)
    return bool(handle is not None and getattr(handle, "_initialized", True))


class _Zygote:
    """The fork server: accepts step requests on the listening socket, forks, reports exit statuses."""

    def __init__(self, listener: socket.socket, control: int):
        self.pid = os.getpid()
        self.listener = listener
        self.control = control
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        self.selector.register(control, selectors.EVENT_READ, "control")
        self.children: dict[int, tuple[socket.socket, int]] = {}  # pid -> (the shim's connection, pidfd)
        self.path_entry = None if sys.flags.safe_path else sys.path[0]
        self.preloaded = False

    def run(self, preload: list[str], ready: Path) -> None:
        """Import ``preload``; say so in ``ready``; serve steps until the runner closes control.

        Shims send steps only once ``ready`` exists (meanwhile light steps start fresh and ``HEAVY_STEPS`` wait
        for it); what comes anyway is served between two imports.
        """
        for name in preload:
            self.poll(0)
            _preload(name)
        self.preloaded = True
        ready.touch()
        while True:
            self.poll(None)

    def poll(self, timeout: float | None) -> None:
        """Handle what is ready: a new step, a finished step, a shim gone, the runner gone."""
        for key, _ in self.selector.select(timeout):
            if key.data == "accept":
                with contextlib.suppress(OSError):
                    self.serve(self.listener.accept()[0])
            elif key.data == "control":
                if not os.read(self.control, 1):
                    self.shutdown()
            elif isinstance(key.data, tuple) and key.data[0] == "exited":
                self.reap(key.data[1])
            elif isinstance(key.data, tuple) and key.data[0] == "shim":
                # the shim wrote nothing after its request: readable means it is gone; its step goes too
                with contextlib.suppress(OSError):
                    if not key.fileobj.recv(1):  # type: ignore[union-attr]
                        os.kill(key.data[1], signal.SIGKILL)

    def serve(self, conn: socket.socket) -> None:
        """Receive one step's request and fork its process, or tell the shim to run a fresh one."""
        conn.settimeout(30)
        fds: list[int] = []
        try:
            header, fds, _, _ = socket.recv_fds(conn, 8, 3)
            size = struct.unpack("!Q", header)[0]
            payload = b""
            while len(payload) < size:
                chunk = conn.recv(min(size - len(payload), 1 << 20))
                if not chunk:
                    raise EOFError("the shim went away")
                payload += chunk
            request = json.loads(payload)
            if len(fds) != 3:
                raise ValueError(f"{len(fds)} standard streams")
        except (OSError, ValueError, EOFError, struct.error):
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        refusal = self.unsafe_to_fork()
        if refusal:
            self.reply(conn, {"fallback": refusal})
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self.child(conn, fds, request)  # never returns
        threads = _thread_count()  # right after the fork: what ran beside us when it forked (1: nothing)
        for fd in fds:
            os.close(fd)
        self.reply(conn, {"pid": pid, "threads_at_fork": threads, "preloaded": self.preloaded})
        pidfd = os.pidfd_open(pid)
        self.children[pid] = (conn, pidfd)
        self.selector.register(pidfd, selectors.EVENT_READ, ("exited", pid))
        self.selector.register(conn, selectors.EVENT_READ, ("shim", pid))

    @staticmethod
    def unsafe_to_fork() -> str | None:
        """Why forking now could give a step a broken library; None when it is safe."""
        if threading.active_count() != 1:
            return f"{threading.active_count()} Python threads"
        if _tensorflow_started():
            return "TensorFlow's runtime has started"
        return None

    @staticmethod
    def reply(conn: socket.socket, message: dict) -> None:
        """Send the shim one line; a shim that is gone is not an error here."""
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(message).encode() + b"\n")

    def reap(self, pid: int) -> None:
        """Collect a finished step's exit status and send it to its shim."""
        conn, pidfd = self.children.pop(pid)
        self.selector.unregister(pidfd)
        self.selector.unregister(conn)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        self.reply(conn, {"returncode": os.waitstatus_to_exitcode(status)})
        conn.close()

    def shutdown(self) -> None:
        """The runner is gone: end the steps still running and exit."""
        for pid in list(self.children):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            self.reap(pid)
        os._exit(0)

    def child(self, conn: socket.socket, fds: list[int], request: dict) -> None:
        """In the forked child: become the step's process and run the executor as ``python -m`` would."""
        code = 1
        try:
            self.become_step(conn, fds, request)
            code = _run_executor()
        except BaseException:
            with contextlib.suppress(BaseException):
                traceback.print_exc()
                sys.stderr.flush()
        finally:
            os._exit(code)

    def become_step(self, conn: socket.socket, fds: list[int], request: dict) -> None:
        """Drop the server's sockets and signals; take the step's streams, cwd, environment and argv."""
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _die_with_parent()
        if os.getppid() != self.pid:
            os._exit(1)
        self.selector.close()
        self.listener.close()
        os.close(self.control)
        conn.close()
        for other, pidfd in self.children.values():
            other.close()
            os.close(pidfd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if self.path_entry is not None and sys.path and sys.path[0] == self.path_entry:
            sys.path[0] = os.getcwd()  # ``python -m`` puts the working directory first
        unbuffered = bool(os.environ.get("PYTHONUNBUFFERED")) or bool(getattr(sys.flags, "unbuffered", 0))
        for stream, line_buffering in ((sys.stdout, os.isatty(1)), (sys.stderr, True)):
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(line_buffering=line_buffering and not unbuffered, write_through=unbuffered)
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed()  # the zygote's global RNG state would otherwise be every step's
        sys.modules.pop(EXECUTOR_MODULE, None)
        main = type(sys)("__main__")
        sys.modules["__main__"] = main
        sys.argv = ["-m", *request["argv"][2:]]  # as ``python -m``; runpy puts the module's path in argv[0]


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the zygote dies, so no step outlives its run."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _exit_code(exit: SystemExit) -> int:
    """The exit status Python gives an uncaught ``SystemExit``."""
    code = exit.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    with contextlib.suppress(Exception):
        print(code, file=sys.stderr)
    return 1


def _run_executor() -> int:
    """``python -m kfp.dsl.executor_main`` in this process: run, then exit as the interpreter would; the status."""
    import atexit
    import runpy

    run_as_main = runpy._run_module_as_main  # type: ignore[attr-defined]
    interrupted = False
    try:
        run_as_main(EXECUTOR_MODULE, alter_argv=True)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code is not run_as_main.__code__:
            tb = tb.tb_next
        shown = tb or exc.__traceback__
        sys.excepthook(type(exc), exc.with_traceback(shown), shown)
        interrupted, code = isinstance(exc, KeyboardInterrupt), 1
    threading._shutdown()  # type: ignore[attr-defined]  # non-daemon threads finish, as at interpreter exit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            code = 120 if code == 0 else code
    if interrupted:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return code


def _zygote_main(argv: list[str]) -> None:
    """The zygote: ``python -m shopfloor.app.warm_steps <listening fd> <control fd> <preload JSON> <ready path>``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the steps; the runner stops the zygote
    if not hasattr(os, "pidfd_open"):
        sys.exit("no os.pidfd_open here: steps run in fresh processes")
    listener = socket.socket(fileno=int(argv[0]))
    _Zygote(listener, int(argv[1])).run(json.loads(argv[2]), Path(argv[3]))


if __name__ == "__main__":
    _zygote_main(sys.argv[1:])
