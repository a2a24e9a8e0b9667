"""Request bodies that stall time out without blocking anyone else, over real HTTP to the real app.

Before, a client that sent its headers and then nothing held its request open for ever (uvicorn has no body
timeout); a thousand of them would hold a thousand coroutines and sockets.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from shopfloor.serving.server import build_app, load_window_model
from tests.servers import serving_in_thread
from tests.serving.test_http import instances, post

NAME = "pm"
TIMEOUT_S = 1.5


@pytest.fixture(scope="module")
def server(published_model):
    """Our app with a short body timeout, served by uvicorn on a free loopback port in this process."""
    model = load_window_model(str(published_model), NAME)
    with serving_in_thread(build_app(model, max_body_bytes=100_000, body_timeout_s=TIMEOUT_S)) as url:
        yield url


def _open_request(url: str, declared_length: int, first_bytes: bytes, chunked: bool = False) -> socket.socket:
    """A POST whose headers and first body bytes are sent; the rest is up to the caller (or never comes)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {declared_length}"
    head = f"POST /v1/models/{NAME}:predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    head += f"{length}\r\n\r\n"
    sock.sendall(head.encode() + first_bytes)
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict]:
    """Status and JSON body of the one answer on a connection the server closes after it."""
    raw = b""
    while chunk := sock.recv(65536):
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_stalled_body_gets_408_while_others_are_served(server: str, trained_windows) -> None:
    one = {"instances": instances(trained_windows, 1)}
    assert post(f"{server}/v1/models/{NAME}:predict", one)[0] == 200  # warm
    stalled = [_open_request(server, 1_000, b'{"instances": [') for _ in range(20)]
    started = time.monotonic()
    served_meanwhile = []
    while time.monotonic() - started < TIMEOUT_S * 0.8:
        before = time.monotonic()
        assert post(f"{server}/v1/models/{NAME}:predict", one)[0] == 200
        served_meanwhile.append(time.monotonic() - before)
    answers = [_answer(sock) for sock in stalled]
    waited = time.monotonic() - started
    for sock in stalled:
        sock.close()
    assert answers == [(408, {"error": f"request body not received within {TIMEOUT_S:g} s"})] * 20
    assert TIMEOUT_S * 0.9 < waited < TIMEOUT_S + 5
    assert served_meanwhile and max(served_meanwhile) < 1.0, served_meanwhile


def test_a_body_trickling_in_is_bounded_as_a_whole(server: str) -> None:
    sock = _open_request(server, 1_000, b"[")
    started = time.monotonic()
    sent = 1
    with pytest.raises(OSError):  # the server answers and closes while we still trickle
        while time.monotonic() - started < TIMEOUT_S * 4:
            time.sleep(0.2)
            sock.sendall(b"1,")  # never a gap as long as the timeout: only a bound on the whole body stops it
            sent += 2
    assert time.monotonic() - started < TIMEOUT_S + 3
    status, body = _answer(sock)
    sock.close()
    assert status == 408 and "not received within" in body["error"]


def test_a_streamed_body_over_the_limit_gets_413(server: str) -> None:
    sock = _open_request(server, 0, b"", chunked=True)
    piece = b"1," * 20_000
    with pytest.raises(OSError):
        for _ in range(10):  # 400,000 bytes in 40,000-byte chunks, no length declared
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            time.sleep(0.05)
    status, body = _answer(sock)
    sock.close()
    assert (status, body) == (413, {"error": "request body larger than 100000 bytes"})


def test_a_client_that_goes_away_mid_body_leaves_the_server_serving(server: str, trained_windows) -> None:
    for _ in range(10):
        _open_request(server, 1_000, b'{"instances": [[').close()
    assert post(f"{server}/v1/models/{NAME}:predict", {"instances": instances(trained_windows, 2)})[0] == 200
