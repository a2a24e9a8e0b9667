"""Fixtures of the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def work_dirs():
    """Work folders of `shopfloor run`; the model servers those runs started are stopped afterwards."""
    from shopfloor.components.deploy.local_target import running_server, stop_server

    folders: list[Path] = []
    yield folders
    for folder in folders:
        for state in (folder / "serving").glob("*.json"):
            if running_server(folder / "serving", state.stem) is not None:
                stop_server(folder / "serving", state.stem)
