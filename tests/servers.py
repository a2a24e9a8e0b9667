"""Servers the tests talk to: the machine's own on localhost, and our app served by uvicorn in the test process."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

__all__ = ["port_open", "require_server", "serving_in_thread"]


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections at ``host:port`` (within a second)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(reachable: bool, what: str) -> None:
    """Go on if the server is there; a missing one fails the test under ``CI=true`` and skips it otherwise."""
    if reachable:
        return
    message = f"{what} not reachable"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def serving_in_thread(app) -> Iterator[str]:
    """An ASGI app served by uvicorn on a free loopback port in this process; yields its base URL."""
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{running.servers[0].sockets[0].getsockname()[1]}"
    finally:
        running.should_exit = True
        thread.join(10)
