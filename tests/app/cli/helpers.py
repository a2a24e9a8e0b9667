"""Running the installed ``shopfloor`` console script as a user does, and reading what it printed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

SHOPFLOOR = str(Path(sys.executable).with_name("shopfloor"))


def shopfloor(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the console script with the current environment (S3 variables included, when a test set them)."""
    return subprocess.run([SHOPFLOOR, *args], capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def printed_path(stdout: str, label: str) -> Path:
    """A path the run printed after ``label:``."""
    match = re.search(rf"^\s*{re.escape(label)}:\s+(\S+)$", stdout, re.MULTILINE)
    assert match, f"{label!r} not in output:\n{stdout}"
    return Path(match[1])


def post_json(url: str, body: bytes, token: str | None = None) -> tuple[int, dict]:
    """POST a JSON body (with a bearer token if given), return status and decoded answer (errors included)."""
    headers = {"content-type": "application/json"} | ({"authorization": f"Bearer {token}"} if token else {})
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def gate_values(stdout: str) -> dict[str, float]:
    """The gate lines of the run summary as {metric: value}."""
    return {m[1]: float(m[2]) for m in re.finditer(r"gate (\w+): ([0-9.eE+-]+)", stdout)}
