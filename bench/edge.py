"""The edge runtime next to the full model server and Keras in-process: cold start, latency, throughput, memory, size.

Trains a small failure predictor on the demo data (in-process), publishes it with its TFLite edge export into a
model store in a temporary folder, then in one run and on the same real test windows measures:

- ``python -m shopfloor.edge`` (LiteRT, stdlib HTTP; ``--variant float32`` and ``int8``);
- ``python -m shopfloor.serving.server`` (the full server: kserve, FastAPI, TensorFlow; its defaults, so with
  its explanation worker process);
- Keras in-process (``model(x, training=False)``; its cold start and memory in a fresh process that imports
  TensorFlow, loads the model and predicts once).

Cold start: process start to the first answered V1 predict (each server gets a free port; polled every 10 ms).
Latency: V1 batch-1 requests over one persistent connection (bodies serialized before timing), p50 and p99.
Throughput: windows/s of V1 batch-64 requests back to back. RSS: the process and its children after the timed
requests. Installed size: the files of the distributions each one needs, resolved from this environment's
metadata (the ``edge`` extra of setup.cfg for the edge runtime; the package's own requirements for the full
server and for Keras), the Python interpreter not counted. Targets: edge RSS <= 1/5 of the full server's,
installed size <= 1/10, cold start <= 1 s.

    python bench/edge.py [--requests 300] [--days 30] [--short]

``--short`` (CI): a small plant and 10 timed calls per row; same tables, no verdict on the targets.
"""

from __future__ import annotations

import argparse
import configparser
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NAME = "pm"
VERSION = "v-bench01"
WARMUP = 10


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_store(root: Path, days: int, short: bool) -> np.ndarray:
    """Demo data -> a two-epoch model with its edge export, published in ``root/store``; returns test windows."""
    from shopfloor.components.ingest.ingest import ingest
    from shopfloor.contracts.model_artifact import write_model
    from shopfloor.contracts.model_store import ModelStore
    from shopfloor.demo.plant import PlantDataSpec, write_plant_data
    from shopfloor.families.edge_export import EdgeConfig, write_edge
    from shopfloor.families.predictive_maintenance.config import ModelConfig, PredictiveMaintenanceConfig
    from shopfloor.families.predictive_maintenance.edge import export_window_model
    from shopfloor.families.predictive_maintenance.labelling import label_windows
    from shopfloor.families.predictive_maintenance.model import train_model

    plant = PlantDataSpec(sites=2, assets_per_site=3, days=40) if short else PlantDataSpec(days=days)
    write_plant_data(root / "data", plant)
    config = PredictiveMaintenanceConfig().resolve_data(root / "data")
    result = ingest(config.data.sensors, config.data.events, config.data)
    windows = label_windows(result.sensors, result.events, result.features, config.data.failure_values, config.labeling)
    trained = train_model(windows, ModelConfig(epochs=2))
    model_dir = root / "store" / NAME / VERSION / "model"
    write_model(trained, str(model_dir))
    write_edge(export_window_model(trained.model, windows, 0.5, EdgeConfig()), str(model_dir / "edge"))
    ModelStore(str(root / "store")).set_latest(NAME, VERSION)
    return windows.part("test").x.astype(np.float32)


def v1_body(batch: np.ndarray) -> bytes:
    """A V1 body of these windows (NaN as null)."""
    values = batch.astype(object)
    values[np.isnan(batch)] = None
    return json.dumps({"instances": values.tolist()}).encode()


class Client:
    """One persistent HTTP/1.1 connection posting pre-serialized bodies."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: bytes) -> bytes:
        """POST and return the body; raises on a non-200 answer."""
        self.connection.request("POST", path, body, {"Content-Type": "application/json"})
        answer = self.connection.getresponse()
        data = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{path}: {answer.status} {data[:200]!r}")
        return data


def cold_start(command: list[str], port: int, body: bytes, log: Path) -> tuple[subprocess.Popen, float]:
    """Start a server and time process start to its first answered V1 predict (polled every 10 ms)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = started + 300
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[3]} exited: {log.read_text()[-2000:]}")
        try:
            Client(port).post(f"/v1/models/{NAME}:predict", body)
            return process, time.perf_counter() - started
        except (OSError, RuntimeError, http.client.HTTPException):
            time.sleep(0.01)
    raise TimeoutError(f"{command[3]}: no answer within 300 s")


def timed(call: Callable[[bytes], object], bodies: list[bytes], count: int) -> np.ndarray:
    """Seconds per call over ``count`` calls (after ``WARMUP`` untimed ones), cycling through ``bodies``."""
    for i in range(WARMUP):
        call(bodies[i % len(bodies)])
    seconds = np.empty(count)
    for i in range(count):
        began = time.perf_counter()
        call(bodies[i % len(bodies)])
        seconds[i] = time.perf_counter() - began
    return seconds


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its children, MB."""
    import psutil  # type: ignore[import-untyped]

    process = psutil.Process(pid)
    members = [process, *process.children(recursive=True)]
    return sum(member.memory_info().rss for member in members) / 2**20


def _requirement_names(requirements: list[str], extras: tuple[str, ...] = ()) -> list[tuple[str, tuple[str, ...]]]:
    """(distribution name, its requested extras) of requirement strings that apply here."""
    from packaging.requirements import Requirement

    names = []
    for text in requirements:
        requirement = Requirement(text)
        environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
        if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
            names.append((requirement.name, tuple(sorted(requirement.extras))))
    return names


def closure(requirements: list[str]) -> set[str]:
    """The distributions installed here that these requirements need, transitively (normalized names)."""
    seen: set[str] = set()
    todo = _requirement_names(requirements)
    while todo:
        name, extras = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(key)
        todo += _requirement_names(distribution.requires or [], extras)
    return seen


def installed_mb(distributions: set[str]) -> float:
    """Bytes on disk of every file these distributions installed, MB."""
    total = 0
    for name in distributions:
        for file in metadata.distribution(name).files or []:
            path = Path(file.locate())
            if path.is_file():
                total += path.stat().st_size
    return total / 2**20


def setup_requirements() -> tuple[list[str], list[str]]:
    """(the package's install_requires, its edge extra) from setup.cfg, comments left out."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")

    def lines(text: str) -> list[str]:
        return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]

    return lines(config["options"]["install_requires"]), lines(config["options.extras_require"]["edge"])


def keras_cold_start(model_dir: Path, window: np.ndarray) -> tuple[float, float]:
    """A fresh process that imports TensorFlow, loads the model and predicts once: (seconds, RSS MB)."""
    script = (
        "import resource, sys, time, numpy as np\n"
        "from shopfloor.contracts.model_artifact import load_keras_model\n"
        "model = load_keras_model(sys.argv[1])\n"
        "model(np.load(sys.argv[2]), training=False)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    np.save(model_dir.parent / "window.npy", window)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-P", "-c", script, str(model_dir), str(model_dir.parent / "window.npy")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - began, float(done.stdout.strip().splitlines()[-1])


def measure_server(label: str, command: list[str], port: int, bodies: dict[int, list[bytes]], count: int, log: Path):
    """Cold start, batch-1 latency, batch-64 throughput and RSS of one server process; stopped afterwards."""
    process, cold = cold_start(command, port, bodies[1][0], log)
    try:
        client = Client(port)
        path = f"/v1/models/{NAME}:predict"
        one = timed(lambda body: client.post(path, body), bodies[1], count)
        many = timed(lambda body: client.post(path, body), bodies[64], max(3, count // 4))
        memory = rss_mb(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
    return {"label": label, "cold": cold, "one": one, "windows_s": 64 / float(np.median(many)), "rss": memory}


def main() -> None:
    """Train, publish, measure the three side by side, print the table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=None, help="timed batch-1 calls per row (default 300)")
    parser.add_argument("--days", type=int, default=30, help="days of demo data to train on (default 30)")
    parser.add_argument("--short", action="store_true", help="small plant, 10 calls per row (CI)")
    args = parser.parse_args()
    count = args.requests or (10 if args.short else 300)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from shopfloor.contracts.model_artifact import load_keras_model

    scratch = Path(tempfile.mkdtemp(prefix="bench-edge-"))
    try:
        test_x = make_store(scratch, args.days, args.short)
        model_dir = scratch / "store" / NAME / VERSION / "model"
        rows = np.resize(np.arange(len(test_x)), 64 * 8)
        batches = {1: [test_x[i : i + 1] for i in rows[:16]], 64: [test_x[rows[i : i + 64]] for i in range(0, 512, 64)]}
        bodies = {size: [v1_body(b) for b in items] for size, items in batches.items()}
        edge_info = json.loads((model_dir / "edge" / "tflite.json").read_text())
        variants = ", ".join(f"{k} ({v['bytes']:,} B)" for k, v in edge_info["variants"].items())
        print(
            f"{len(test_x)} test windows of {test_x.shape[1]}x{test_x.shape[2]}; edge variants {variants}; "
            f"{count} batch-1 calls per row after {WARMUP} warm-up calls\n"
        )
        results = []
        for variant in [v for v in ("float32", "int8") if v in edge_info["variants"]]:
            port = free_port()
            command = [sys.executable, "-P", "-m", "shopfloor.edge", "--model-store", str(scratch / "store")]
            command += ["--model", NAME, "--variant", variant, "--port", str(port)]
            command += ["--cache-dir", str(scratch / "edge-cache"), "--update-interval-s", "3600"]
            results.append(measure_server(f"edge runtime ({variant})", command, port, bodies, count, scratch / "e.log"))
        port = free_port()
        command = [sys.executable, "-P", "-m", "shopfloor.serving.server", "--model-dir", str(model_dir)]
        command += ["--model-name", NAME, "--http-port", str(port), "--payload-spool", str(scratch / "spool")]
        results.append(measure_server("full server (serving/)", command, port, bodies, count, scratch / "s.log"))

        keras = load_keras_model(model_dir)
        one = timed(lambda body: keras(batches[1][0], training=False), bodies[1], count)
        many = timed(lambda body: keras(batches[64][0], training=False), bodies[64], max(3, count // 4))
        cold, rss = keras_cold_start(model_dir, batches[1][0])
        results.append(
            {
                "label": "Keras in-process",
                "cold": cold,
                "one": one,
                "windows_s": 64 / float(np.median(many)),
                "rss": rss,
            }
        )

        install_requires, edge_extra = setup_requirements()
        sizes = {"edge": installed_mb(closure(edge_extra)), "full": installed_mb(closure(install_requires))}
        for result in results:
            result["size"] = sizes["edge"] if result["label"].startswith("edge") else sizes["full"]

        header = f"{'path':<26}{'cold start s':>13}{'p50 ms':>9}{'p99 ms':>9}{'windows/s (64)':>16}{'RSS MB':>9}"
        print(f"{header}{'installed MB':>14}")
        for r in results:
            p50, p99 = np.percentile(r["one"] * 1000, [50, 99])
            print(
                f"{r['label']:<26}{r['cold']:>13.2f}{p50:>9.2f}{p99:>9.2f}{r['windows_s']:>16,.0f}"
                f"{r['rss']:>9.0f}{r['size']:>14,.0f}"
            )
        full = next(r for r in results if r["label"].startswith("full"))
        keras_row = results[-1]
        print("\nratios, edge / full server (targets: RSS <= 0.20, installed size <= 0.10, cold start <= 1 s):")
        for edge in (r for r in results if r["label"].startswith("edge")):
            ratios = (
                f"{edge['label']}: RSS {edge['rss'] / full['rss']:.3f}, "
                f"installed size {edge['size'] / full['size']:.3f}, "
                f"cold start {edge['cold']:.2f} s ({edge['cold'] / full['cold']:.3f} of the full server's), "
                f"p50 {np.median(edge['one']) / np.median(full['one']):.2f}, "
                f"RSS vs Keras in-process {edge['rss'] / keras_row['rss']:.3f}"
            )
            if not args.short:
                met = edge["rss"] <= full["rss"] / 5 and edge["size"] <= full["size"] / 10 and edge["cold"] <= 1.0
                ratios += " -> targets " + ("met" if met else "MISSED")
            print(ratios)
        print(
            f"installed: edge extra {len(closure(edge_extra))} distributions, full server "
            f"{len(closure(install_requires))} (this environment's files; the interpreter not counted)"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
