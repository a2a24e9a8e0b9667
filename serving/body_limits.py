"""Bounds on what a client may send: a body larger than the limit gets 413, one that does not arrive in time 408.

An ASGI middleware, so it holds for every route (kserve's V1/V2 ones included): it reads the whole body, bounded
in size and in time, before the app sees the request, then hands it on in one piece. A client that sends its
headers and then its body slowly, or not at all, holds only its own request and only until ``timeout_s``; the
event loop serves everyone else meanwhile. Routes never see a half-read body, so no route turns a refusal into a
400 or a 500.
"""

from __future__ import annotations

import asyncio
import json

__all__ = ["DEFAULT_BODY_TIMEOUT_S", "DEFAULT_MAX_BODY_BYTES", "BodyLimits"]

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_BODY_TIMEOUT_S = 30.0
_CLIENT_GONE = object()


class BodyLimits:
    """ASGI middleware: 413 for a body over ``max_bytes`` (declared or streamed), 408 for one over ``timeout_s``."""

    def __init__(self, app, max_bytes: int = DEFAULT_MAX_BODY_BYTES, timeout_s: float = DEFAULT_BODY_TIMEOUT_S):
        if max_bytes < 1 or not timeout_s > 0:
            raise ValueError("max_bytes must be >= 1 and timeout_s > 0")
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope, receive, send):
        """Read the body within the bounds, then hand the request on; refuse it in one line otherwise."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _answer(send, 413, self._too_large())
        try:
            body = await asyncio.wait_for(self._read_body(receive), self.timeout_s)
        except TimeoutError:
            return await _answer(send, 408, f"request body not received within {self.timeout_s:g} s")
        if body is _CLIENT_GONE:
            return None
        if body is None:
            return await _answer(send, 413, self._too_large())
        handed_on = False

        async def replay():
            nonlocal handed_on
            if handed_on:  # after the body, receive only waits for the client to go away
                return await receive()
            handed_on = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    async def _read_body(self, receive) -> bytes | object | None:
        """The whole body, None once it passes ``max_bytes``, or ``_CLIENT_GONE`` if the client went away."""
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _CLIENT_GONE
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> str:
        """The 413 answer's one line."""
        return f"request body larger than {self.max_bytes} bytes"


async def _answer(send, status: int, error: str) -> None:
    """Send a JSON ``{"error": ...}`` answer and close the connection: what is left of the body stays unread."""
    body = json.dumps({"error": error}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
