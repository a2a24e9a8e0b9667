"""Errors a user can act on: each names where (file, URI or request), what field, and what was expected."""

from __future__ import annotations

__all__ = ["ShopfloorError", "ConfigError", "DataValidationError", "SearchNotPossible", "StorageError"]


class ShopfloorError(Exception):
    """Base error rendered as one line: ``<source>: <field>: <problem> (expected <expected>)``."""

    def __init__(self, source: str, problem: str, *, field: str | None = None, expected: str | None = None):
        self.source = source
        self.field = field
        self.problem = problem
        self.expected = expected
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [self.source]
        if self.field:
            parts.append(self.field)
        message = ": ".join([*parts, self.problem])
        if self.expected:
            message += f" (expected {self.expected})"
        return " ".join(message.splitlines())  # \n, \r and the other line breaks: one line in a terminal and a log


class ConfigError(ShopfloorError):
    """A scenario config file that is missing, unparsable or fails the schema."""


class DataValidationError(ShopfloorError):
    """Input data that does not match the scenario's schema (columns, dtypes, timestamps, ids)."""


class SearchNotPossible(DataValidationError):
    """Data the model trains on but a search cannot score (e.g. no anomalies to rank configurations by)."""


class StorageError(ShopfloorError):
    """An artifact location that cannot be read or written (missing object, bad URI, unreachable store)."""
