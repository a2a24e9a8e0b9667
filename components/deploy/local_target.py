"""The one-machine deploy target: our model server as a background process on a free localhost port.

A new version starts beside the old one and takes over only once it answers ready; if it fails to start, the
old server keeps serving (the local counterpart of KServe's rollback). State per model lives in
``<state_dir>/<model_name>.json`` (pid, URL, version, log file) so a later deploy or ``shopfloor stop``
finds the running server.

With an ``edge-*`` runtime the process is the edge runtime (``python -m shopfloor.edge``, pinned to the version,
its cache in ``<state_dir>/edge-cache``) instead of the full server: same readiness route, same state file, and
no tokens (the edge runtime has no write routes).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from shopfloor.common.errors import ShopfloorError
from shopfloor.common.storage import atomic_write_bytes
from shopfloor.components.deploy.target import (
    EDGE_RUNTIMES,
    DeploymentFailed,
    DeploymentRequest,
    Endpoint,
    edge_arguments,
    edge_source,
)
from shopfloor.contracts.model_store import MODEL_NAME

__all__ = [
    "OPERATOR_TOKEN_FILE",
    "LocalServerTarget",
    "free_port",
    "local_tokens_file",
    "running_server",
    "stop_server",
]

OPERATOR_TOKEN_FILE = "operator.token"
# the modules a local deploy starts: the full server, or the edge runtime for an edge-* runtime
_SERVER_MODULES = (b"shopfloor.serving.server", b"shopfloor.edge")


def local_tokens_file(state_dir: Path) -> Path:
    """The local servers' tokens file: made once per state folder, with one operator token for this machine's user.

    The token itself goes to ``operator.token`` beside it (readable by this user only), so the person who ran
    ``shopfloor run`` can give feedback over HTTP; the tokens file keeps only its sha256.
    """
    tokens = state_dir / "tokens.yaml"
    if tokens.is_file():
        return tokens
    import getpass
    import hashlib
    import secrets

    import yaml

    try:
        identity = getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry
        identity = "local-operator"
    token = secrets.token_urlsafe(32)
    entry = {
        "identity": identity,
        "role": "operator",
        "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
    }
    secret = state_dir / OPERATOR_TOKEN_FILE
    secret.touch(mode=0o600)
    secret.write_text(token + "\n")
    atomic_write_bytes(tokens, yaml.safe_dump({"tokens": [entry]}).encode())
    return tokens


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    """Whether a process with this pid exists (and is not a zombie we could reap)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True


def _started_at(pid: int) -> int | None:
    """When a process started, in clock ticks since boot (``/proc/<pid>/stat`` field 22); None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _is_our_server(pid: int, state: dict) -> bool:
    """Whether ``pid`` is still the server the state file recorded: same start time and our server's command.

    A pid is reused once its process ends; without this check ``stop`` could signal an unrelated process.
    """
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    ours = any(module in command for module in _SERVER_MODULES) and state.get("model_name", "").encode() in command
    recorded = state.get("started_at")
    return ours and (recorded is None or recorded == _started_at(pid))


def _state_path(state_dir: Path, model_name: str) -> Path:
    """The model's state file; a name that is not a model name (a path, '..') is a one-line error."""
    if not MODEL_NAME.fullmatch(model_name or ""):
        raise ShopfloorError(
            "model name", f"{model_name!r} is not a model name", expected="lowercase letters, digits and '-'"
        )
    return state_dir / f"{model_name}.json"


def running_server(state_dir: Path, model_name: str) -> dict | None:
    """The state of the model's server if that very server is still running, else None."""
    path = _state_path(state_dir, model_name)
    if not path.is_file():
        return None
    state = json.loads(path.read_text())
    return state if _alive(state["pid"]) and _is_our_server(state["pid"], state) else None


def stop_server(state_dir: Path, model_name: str, timeout_s: float = 10.0) -> bool:
    """Stop the model's server (SIGTERM, then SIGKILL); True if one was running."""
    state = running_server(state_dir, model_name)
    _state_path(state_dir, model_name).unlink(missing_ok=True)
    if state is None:
        return False
    _terminate(state["pid"], timeout_s)
    return True


def _terminate(pid: int, timeout_s: float) -> None:
    """Ask a server's process group to stop; kill it if it does not within the timeout."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _ready(url: str) -> bool:
    """Whether the server answers its V2 readiness route with 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class LocalServerTarget:
    """Deploy by starting ``python -m shopfloor.serving.server`` (or ``shopfloor.edge``) here, bound to ``host``."""

    def __init__(self, state_dir: str | Path, host: str = "127.0.0.1", poll_interval_s: float = 0.25):
        self.state_dir = Path(state_dir)
        self.host = host
        self.poll_interval_s = poll_interval_s

    def _command(self, request: DeploymentRequest, port: int) -> list[str]:
        """The server's command line: the full server, or the edge runtime pinned to the version."""
        if request.runtime in EDGE_RUNTIMES:
            cache = str(self.state_dir / "edge-cache")
            command = [
                sys.executable,
                "-m",
                "shopfloor.edge",
                *edge_arguments(edge_source(request), self.host, port, cache),
            ]
            if request.payload_log_uri:
                command += ["--payload-log", request.payload_log_uri, "--payload-spool", str(self.state_dir / "spool")]
            return command
        command = [
            sys.executable,
            "-m",
            "shopfloor.serving.server",
            "--model-uri",
            request.model_uri,
            "--model-name",
            request.model_name,
            "--host",
            self.host,
            "--http-port",
            str(port),
            "--tokens-file",
            str(local_tokens_file(self.state_dir)),
        ]
        if request.payload_log_uri:  # what the store did not take by shutdown waits in the work dir for the next start
            command += ["--payload-log-uri", request.payload_log_uri, "--payload-spool", str(self.state_dir / "spool")]
        if request.runtime != "keras":
            command += ["--runtime", request.runtime]
        return command

    def _start(self, request: DeploymentRequest, port: int, log_path: Path) -> subprocess.Popen:
        """Start the server detached (own session), so it outlives the pipeline step that started it."""
        command = self._command(request, port)
        with log_path.open("ab") as log:
            return subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )

    def deploy(self, request: DeploymentRequest) -> Endpoint:
        """Start the new version, wait until it is ready, then retire the previous one."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        previous = running_server(self.state_dir, request.model_name)
        port = free_port(self.host)
        url = f"http://{self.host}:{port}"
        log_path = self.state_dir / f"{request.model_name}-{port}.log"
        process = self._start(request, port, log_path)
        deadline = time.monotonic() + request.ready_timeout_s
        while not _ready(f"{url}/v2/models/{request.model_name}/ready"):
            if process.poll() is not None or time.monotonic() > deadline:
                _terminate(process.pid, 5.0)
                kept = (
                    f"version {previous['model_version']} keeps serving at {previous['url']}"
                    if previous
                    else "nothing was serving before"
                )
                last = (log_path.read_text(errors="replace").strip().splitlines() or ["(no output)"])[-1]
                raise DeploymentFailed(
                    f"local deploy of {request.model_name} {request.model_version}",
                    f"server did not become ready ({last}); {kept}",
                    expected=f"see {log_path}",
                )
            time.sleep(self.poll_interval_s)
        state = {
            "pid": process.pid,
            "started_at": _started_at(process.pid),
            "url": url,
            "model_name": request.model_name,
            "model_version": request.model_version,
            "model_uri": request.model_uri,
            "log": str(log_path),
        }
        atomic_write_bytes(self.state_dir / f"{request.model_name}.json", json.dumps(state, indent=2).encode())
        if previous is not None and previous["pid"] != process.pid:
            _terminate(previous["pid"], 10.0)
        return Endpoint(target="local", url=url, model_name=request.model_name, model_version=request.model_version)
