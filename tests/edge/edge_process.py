"""Helpers for the edge tests: an edge runtime as its own process, published edge exports, polling."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shopfloor.contracts.model_artifact import load_keras_model
from shopfloor.contracts.model_store import ModelStore
from shopfloor.families.edge_export import EdgeExport, write_edge

__all__ = [
    "REPO",
    "TOLERANCE",
    "Edge",
    "close",
    "copy_model",
    "edge_args",
    "edge_requirements",
    "keras_reference",
    "make_edge_venv",
    "poll",
    "publish",
    "start_edge",
    "v1_body",
]

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-3
"""float32 export vs Keras: |edge - keras| <= TOLERANCE * max(1, max |keras|) on every output (as the export checks)."""


def publish(store: Path, name: str, version: str, source: Path, export: EdgeExport) -> Path:
    """Copy a published version (or a model folder) into ``store`` with its edge export, and point latest at it."""
    target = store / name / version
    if (source / "model").is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copytree(source, target / "model")
    write_edge(export, str(target / "model" / "edge"))
    ModelStore(str(store)).set_latest(name, version)
    return target


def copy_model(source_store: Path, store: Path, name: str) -> None:
    """Copy one model's published versions to another store and point its latest.json into the copy.

    latest.json holds the version's absolute URI: a copied pointer would still send readers to the original.
    """
    shutil.copytree(source_store / name, store / name)
    version = json.loads((store / name / "latest.json").read_text())["version"]
    ModelStore(str(store)).set_latest(name, version)


def poll(condition: Callable[[], object], timeout_s: float = 60.0, what: str = "condition") -> None:
    """Wait until ``condition()`` is true, checking every 50 ms; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g} s waiting for {what}"
        time.sleep(0.05)


class Edge:
    """A running ``python -m shopfloor.edge`` process and the URL it serves on."""

    def __init__(self, process: subprocess.Popen, url: str, lines: list[str]):
        self.process, self.url, self.lines = process, url, lines

    def get(self, path: str) -> tuple[int, Any]:
        """GET ``path``: (status, JSON answer, or the text of /metrics)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as answer:
                body = answer.read().decode()
                return answer.status, json.loads(body) if path != "/metrics" else body
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def post(self, path: str, body: object) -> tuple[int, Any]:
        """POST ``body`` as JSON to ``path``: (status, JSON answer)."""
        request = urllib.request.Request(self.url + path, json.dumps(body).encode(), method="POST")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def payload_log(self) -> dict:
        """The payload logger's counters (``GET /v1/payload-log``)."""
        code, body = self.get("/v1/payload-log")
        assert code == 200 and isinstance(body, dict), body
        return body

    def stop(self) -> str:
        """SIGTERM, wait for the exit; the process's output."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        return "\n".join(self.lines)

    def kill(self) -> None:
        """SIGKILL: a hard crash, nothing runs after it."""
        self.process.kill()
        self.process.wait(timeout=30)


def start_edge(args: list[str], python: str = sys.executable, env: dict | None = None, cwd: Path = REPO) -> Edge:
    """Start the edge runtime and wait for its line saying where it serves."""
    command = [python, "-P", "-m", "shopfloor.edge", *args]
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line.rstrip())
        if line.startswith("shopfloor-edge:"):
            break
    stream = process.stdout

    def keep_reading() -> None:
        for rest in stream:
            lines.append(rest.rstrip())

    threading.Thread(target=keep_reading, daemon=True).start()
    marker = next((x for x in lines if x.startswith("shopfloor-edge:")), "")
    assert " on " in marker, "\n".join(lines)
    url = marker.split(" on ", 1)[1].split(",")[0]
    return Edge(process, url, lines)


def edge_args(store: Path, name: str, tmp_path: Path, *extra: str) -> list[str]:
    """Arguments serving ``name`` from ``store`` on a free port with a cache under ``tmp_path``."""
    return ["--model-store", str(store), "--model", name, "--port", "0", "--cache-dir", str(tmp_path / "cache"), *extra]


def keras_reference(store: Path, name: str, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """What Keras answers for these inputs (the served outputs, before thresholds)."""
    model = load_keras_model(store / name / f"v-{name}01" / "model")
    outputs = model(inputs.astype(np.float32), training=False)
    if name == "pm":
        return {
            "failure_probability": np.asarray(outputs["failure"]).ravel(),
            "rul_hours": np.asarray(outputs["rul"]).ravel(),
        }
    if name == "ad":
        return {"anomaly_score": np.asarray(outputs["score"]).ravel()}
    return {"probabilities": np.asarray(outputs)}


def v1_body(inputs: np.ndarray) -> dict:
    """A V1 body of these inputs, NaN as null (a missing reading)."""
    values = inputs.astype(object)
    values[np.isnan(inputs)] = None
    return {"instances": values.tolist()}


def close(edge_values: list, keras_values: np.ndarray) -> bool:
    """Whether the edge's values are within the stated tolerance of Keras'."""
    got = np.asarray(edge_values, dtype=np.float64)
    return bool(np.abs(got - keras_values).max() <= TOLERANCE * max(1.0, float(np.abs(keras_values).max())))


def edge_requirements() -> list[str]:
    """The pinned requirements of the ``edge`` extra, as setup.cfg states them."""
    import configparser

    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    lines = config["options.extras_require"]["edge"].splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def make_edge_venv(folder: Path) -> tuple[Path, dict[str, str]]:
    """A virtual environment with only the edge extra's requirements, and the environment to run our package there.

    The repository's ``shopfloor`` folder is reached through a folder holding nothing but a link to it (no
    dependencies installed, and not the repository root, whose ``components``/``serving`` folders would be
    importable too). Returns (its python, the environment variables for a subprocess).
    """
    import os

    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True)
    python = folder / "venv" / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *edge_requirements()]
    subprocess.run(pip, check=True, stdout=subprocess.DEVNULL)
    path = folder / "path"
    path.mkdir()
    (path / "shopfloor").symlink_to(REPO / "shopfloor", target_is_directory=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = str(path)
    return python, env
