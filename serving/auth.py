"""Who may write to the model server: bearer tokens with a role, and a per-identity rate limit.

Reading (predict, explain, metadata, health) is open to whoever reaches the port, as in KServe. Writing needs a
right: operator feedback needs the ``operator`` role, loading and unloading models (the repository routes, off
unless the server is started with them) the ``admin`` role, which includes the operator's. Tokens come from a
file that a Kubernetes Secret mounts (``--tokens-file`` or ``$SHOPFLOOR_API_TOKENS_FILE``), one entry each::

    tokens:
      - {identity: olga, role: operator, token_sha256: 5e88...}   # or token: <the token itself>

Only their sha256 is kept in memory, compared in constant time; the identity recorded with a write is the
token's, never a field of the request body. Without a tokens file every write is refused (403): there is no
anonymous write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import os
import threading
import time
from pathlib import Path
from typing import Literal

import yaml

from shopfloor.common.credentials import API_TOKENS_FILE_ENV
from shopfloor.common.errors import ConfigError

__all__ = ["ROLES", "TOKENS_FILE_ENV", "Authorizer", "Denied", "Identity", "RateLimiter"]

TOKENS_FILE_ENV = API_TOKENS_FILE_ENV
Role = Literal["operator", "admin"]
ROLES: tuple[Role, ...] = ("operator", "admin")
_RANK = {"operator": 1, "admin": 2}


@dataclasses.dataclass(frozen=True)
class Identity:
    """Who a token belongs to and what it may do."""

    name: str
    role: Role


class Denied(Exception):
    """A request without the right: ``status`` 401 (no or unknown token), 403 (not allowed) or 429 (too many)."""

    def __init__(self, status: int, reason: str, retry_after_s: int | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after_s = retry_after_s


def _digest(token: str) -> str:
    """The sha256 a token is kept and compared as."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Authorizer:
    """Maps bearer tokens (by their sha256) to identities; empty = every write refused."""

    grants: tuple[tuple[str, Identity], ...] = ()

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Authorizer:
        """Read a tokens file; a bad entry is a one-line error naming the file and the entry."""
        source = str(path)
        try:
            document = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(source, f"cannot read tokens ({type(exc).__name__})", expected="a YAML file") from None
        entries = document.get("tokens") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ConfigError(source, "no token list", field="tokens", expected="a list of identity, role, token")
        grants = []
        for index, entry in enumerate(entries):
            field = f"tokens[{index}]"
            if not isinstance(entry, dict) or not str(entry.get("identity") or "").strip():
                raise ConfigError(source, "no identity", field=field, expected="identity: who holds the token")
            if entry.get("role") not in ROLES:
                raise ConfigError(
                    source, f"role {entry.get('role')!r}", field=f"{field}.role", expected=" | ".join(ROLES)
                )
            digest = entry.get("token_sha256") or (_digest(str(entry["token"])) if entry.get("token") else "")
            if len(str(digest)) != 64:
                raise ConfigError(source, "no token", field=field, expected="token or token_sha256 (64 hex digits)")
            grants.append((str(digest).lower(), Identity(str(entry["identity"]).strip(), entry["role"])))
        return cls(tuple(grants))

    @classmethod
    def from_env(cls, path: str | None = None) -> Authorizer:
        """From ``path``, else ``$SHOPFLOOR_API_TOKENS_FILE``, else none (every write refused)."""
        chosen = path or os.environ.get(TOKENS_FILE_ENV)
        return cls.from_file(chosen) if chosen else cls()

    def identify(self, authorization: str | None) -> Identity:
        """The identity of an ``Authorization: Bearer <token>`` header; 401 without a known token."""
        if not self.grants:
            raise Denied(403, "writes are disabled on this server (no tokens configured)")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Denied(401, "a bearer token is required (Authorization: Bearer <token>)")
        digest = _digest(token.strip())
        for known, identity in self.grants:
            if hmac.compare_digest(known, digest):
                return identity
        raise Denied(401, "unknown token")

    def require(self, authorization: str | None, role: Role) -> Identity:
        """The caller's identity if its role includes ``role``; else 401 or 403."""
        identity = self.identify(authorization)
        if _RANK[identity.role] < _RANK[role]:
            raise Denied(403, f"{identity.name} may not do this (needs the {role} role)")
        return identity


class RateLimiter:
    """At most ``per_minute`` writes per identity in any minute (a token bucket each); 429 beyond."""

    def __init__(self, per_minute: int = 30):
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, identity: Identity) -> None:
        """Spend one write of ``identity``'s budget, or raise 429 saying when the next one is allowed."""
        rate = self.per_minute / 60.0
        with self._lock:
            now = time.monotonic()
            tokens, last = self._buckets.get(identity.name, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[identity.name] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / rate)
                raise Denied(429, f"{identity.name}: more than {self.per_minute} writes a minute", retry_after_s=wait)
            self._buckets[identity.name] = (tokens - 1.0, now)
