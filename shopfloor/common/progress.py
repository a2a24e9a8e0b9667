"""Progress lines from inside a step, marked so ``shopfloor run`` can show them among the runner's logs."""

from __future__ import annotations

import logging

__all__ = ["PROGRESS_PREFIX", "report_progress"]

PROGRESS_PREFIX = "shopfloor | "
_LOGGER = logging.getLogger("shopfloor")


def report_progress(message: str) -> None:
    """Log one human-readable progress line (shown on screen locally, in the pod log on a cluster)."""
    _LOGGER.info("%s%s", PROGRESS_PREFIX, message)
