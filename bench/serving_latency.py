"""Latency of the served model over localhost HTTP against the same Keras model called in-process.

Trains a small model on the demo data (in-process, two epochs), then on the same real test windows and at
batch sizes 1 and 64 measures: ``keras_model.predict(x)``, the direct call ``keras_model(x, training=False)``
that the server uses, and ``python -m shopfloor.serving.server`` started through ``LocalServerTarget`` (its own process)
over V1 ``:predict`` and V2 ``/infer`` JSON, with payload logging off and on (to a temp folder). Request bodies
are serialized before timing and sent over one persistent connection, so the served rows measure the server
(HTTP, JSON decode, validation, model, response) plus the loopback round trip, not client-side encoding.
Ends with 200 concurrent V1 batch-1 requests from 32 threads.

    python bench/serving_latency.py [--requests N] [--days 30] [--short]

``--short`` (a quick check that it runs, for CI): a small plant (2 sites x 3 assets, 40 days), 5 timed calls per
row; same tables, no verdict on the target.
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

BATCH_SIZES = (1, 64)
DEFAULT_REQUESTS = {1: 300, 64: 100}
WARMUP = 20
DISTINCT_BATCHES = 16
CONCURRENT_REQUESTS = 200
CONCURRENT_THREADS = 32


def train_small_model(root: Path, plant) -> np.ndarray:
    """Demo data -> ingest -> windows -> a two-epoch model in ``root/model``; returns the test windows."""
    from shopfloor.components.ingest.ingest import ingest
    from shopfloor.contracts.model_artifact import write_model
    from shopfloor.demo.plant import write_plant_data
    from shopfloor.families.predictive_maintenance.config import ModelConfig, PredictiveMaintenanceConfig
    from shopfloor.families.predictive_maintenance.labelling import label_windows
    from shopfloor.families.predictive_maintenance.model import train_model

    write_plant_data(root / "data", plant)
    config = PredictiveMaintenanceConfig().resolve_data(root / "data")
    result = ingest(config.data.sensors, config.data.events, config.data)
    windows = label_windows(result.sensors, result.events, result.features, config.data.failure_values, config.labeling)
    write_model(train_model(windows, ModelConfig(epochs=2)), str(root / "model"))
    return windows.part("test").x.astype(np.float32)


def batches_of(test_x: np.ndarray, size: int) -> list[np.ndarray]:
    """``DISTINCT_BATCHES`` consecutive batches of test windows (wrapping around), shared by every path."""
    need = size * DISTINCT_BATCHES
    rows = np.resize(np.arange(len(test_x)), need)
    return [np.ascontiguousarray(test_x[rows[i : i + size]]) for i in range(0, need, size)]


def v1_body(batch: np.ndarray) -> bytes:
    """A V1 ``{"instances": ...}`` body, NaN (missing reading) as null."""
    from shopfloor.serving.codec import finite_or_none

    return json.dumps({"instances": finite_or_none(batch)}, allow_nan=False).encode()


def v2_body(batch: np.ndarray) -> bytes:
    """A V2 inference request body: one FP32 input ``window`` of shape [n, window, features], NaN as null."""
    flat = [v if np.isfinite(v) else None for v in batch.ravel().tolist()]
    tensor = {"name": "window", "datatype": "FP32", "shape": list(batch.shape), "data": flat}
    return json.dumps({"inputs": [tensor]}, allow_nan=False).encode()


def time_calls(call: Callable[[object], object], inputs: list, count: int) -> tuple[np.ndarray, float]:
    """Warm up, then ``count`` sequential calls cycling through ``inputs``: latencies (s) and total wall time (s)."""
    for i in range(WARMUP):
        call(inputs[i % len(inputs)])
    latencies = np.empty(count)
    start = time.perf_counter()
    for i in range(count):
        item = inputs[i % len(inputs)]
        began = time.perf_counter()
        call(item)
        latencies[i] = time.perf_counter() - began
    return latencies, time.perf_counter() - start


class Client:
    """One persistent HTTP/1.1 connection to the server, posting pre-serialized bodies."""

    def __init__(self, url: str):
        parsed = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)

    def post(self, path: str, body: bytes) -> bytes:
        """POST a JSON body; the response body, or RuntimeError on a non-200 answer."""
        self.connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status} {data[:200]!r}")
        return data

    def get(self, path: str) -> dict:
        """GET a JSON document."""
        self.connection.request("GET", path)
        return json.loads(self.connection.getresponse().read())

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


COMPILED = "in-process compiled"


def in_process_rows(keras_model, batches: dict[int, list[np.ndarray]], requests: dict[int, int]) -> list[tuple]:
    """``predict()``, the eager call and the server's own compiled forward pass, per batch size."""
    from shopfloor.serving.predictor import _compiled

    def predict(x: np.ndarray) -> object:
        return keras_model.predict(x, verbose=0)

    def direct(x: np.ndarray) -> object:
        return keras_model(x, training=False)

    compiled_call = _compiled(keras_model, *next(iter(batches.values()))[0].shape[1:])

    def compiled(x: np.ndarray) -> object:
        return compiled_call(x)

    rows = []
    for size, items in batches.items():
        rows.append(("in-process predict()", size, *time_calls(predict, items, requests[size])))
        rows.append(("in-process model(x)", size, *time_calls(direct, items, requests[size])))
        rows.append((COMPILED, size, *time_calls(compiled, items, requests[size])))
    return rows


def served_rows(
    url: str, name: str, label: str, bodies: dict[str, dict[int, list[bytes]]], requests: dict[int, int]
) -> list[tuple]:
    """V1 and V2 over one persistent connection, per batch size."""
    paths = {"V1": f"/v1/models/{name}:predict", "V2": f"/v2/models/{name}/infer"}
    client = Client(url)
    rows = []
    try:
        for protocol, per_size in bodies.items():
            path = paths[protocol]

            def post(body: bytes, path: str = path) -> bytes:
                return client.post(path, body)

            for size, items in per_size.items():
                rows.append((f"served {protocol} {label}", size, *time_calls(post, items, requests[size])))
    finally:
        client.close()
    return rows


def concurrent_v1(url: str, name: str, bodies: list[bytes]) -> tuple[float, int, list[tuple[bool, float]]]:
    """``CONCURRENT_REQUESTS`` V1 batch-1 requests from a pool of threads, one connection per thread.

    Returns the wall time, the error count and (first request on its connection?, latency s) per success.
    """
    local = threading.local()
    path = f"/v1/models/{name}:predict"

    def one(i: int) -> tuple[bool, float] | None:
        first = not hasattr(local, "client")
        if first:
            local.client = Client(url)
        began = time.perf_counter()
        try:
            local.client.post(path, bodies[i % len(bodies)])
        except (OSError, RuntimeError, http.client.HTTPException):
            local.client.close()
            del local.client
            return None
        return first, time.perf_counter() - began

    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENT_THREADS) as pool:
        results = list(pool.map(one, range(CONCURRENT_REQUESTS)))
    wall = time.perf_counter() - start
    done = [r for r in results if r is not None]
    return wall, CONCURRENT_REQUESTS - len(done), done


def print_concurrent(wall: float, errors: int, done: list[tuple[bool, float]]) -> None:
    """The concurrency row, with requests that opened their connection apart from those that reused one."""
    print(
        f"\nconcurrent V1 batch 1: {CONCURRENT_REQUESTS} requests from {CONCURRENT_THREADS} threads in {wall:.2f} s, "
        f"{errors} errors, {len(done) / wall:.0f} windows/s"
    )
    for first, label in ((True, "first on a new connection"), (False, "on a reused connection")):
        ms = np.array([latency for opened, latency in done if opened == first]) * 1000
        if ms.size:
            p50, p99 = np.percentile(ms, [50, 99])
            print(f"  {label:<26} {ms.size:>4} requests  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {ms.max():7.1f} ms")


def check_served_matches(url: str, name: str, keras_model, batch: np.ndarray, body: bytes) -> float:
    """Largest |served - in-process| failure probability on one batch (a sanity check, not timed)."""
    client = Client(url)
    try:
        served = [
            p["failure_probability"] for p in json.loads(client.post(f"/v1/models/{name}:predict", body))["predictions"]
        ]
    finally:
        client.close()
    local = np.asarray(keras_model(batch, training=False)["failure"]).reshape(-1)
    return float(np.max(np.abs(np.asarray(served) - local)))


def deploy(state: Path, model_dir: Path, name: str, payload_log_uri: str = ""):
    """Start ``python -m shopfloor.serving.server`` for the model through the local deploy target."""
    from shopfloor.components.deploy.local_target import LocalServerTarget
    from shopfloor.components.deploy.target import DeploymentRequest

    request = DeploymentRequest(
        model_name=name,
        model_uri=str(model_dir),
        model_version="v-bench",
        payload_log_uri=payload_log_uri,
        ready_timeout_s=120.0,
    )
    return LocalServerTarget(state).deploy(request)


def print_table(rows: list[tuple]) -> dict[tuple[str, int], float]:
    """Print p50/p99/throughput per row; returns p50 (ms) by (path, batch)."""
    print(f"{'path':<28}{'batch':>6}{'calls':>7}{'p50 ms':>9}{'p99 ms':>9}{'windows/s':>11}")
    p50s = {}
    for label, size, latencies, wall in rows:
        p50, p99 = np.percentile(latencies * 1000, [50, 99])
        p50s[(label, size)] = p50
        print(f"{label:<28}{size:>6}{len(latencies):>7}{p50:>9.2f}{p99:>9.2f}{size * len(latencies) / wall:>11.0f}")
    return p50s


def print_summary(p50s: dict[tuple[str, int], float], judge: bool = True) -> None:
    """The figures the issue asks for: served minus in-process p50 at batch 1, and served/in-process ratios.

    ``judge`` false (short runs) leaves out the verdict on the target: a few calls per row say nothing about it.
    """
    predict, direct = "in-process predict()", COMPILED
    print("\nserved (payload logging off) against in-process, p50 (compiled = the server's own forward pass):")
    print(
        f"{'protocol':<10}{'batch':>6}{'served ms':>11}{'- predict() ms':>16}{'- compiled ms':>15}"
        f"{'/ predict()':>13}{'/ compiled':>12}"
    )
    for protocol in ("V1", "V2"):
        served = f"served {protocol} log off"
        for size in BATCH_SIZES:
            ms, reference, call = p50s[(served, size)], p50s[(predict, size)], p50s[(direct, size)]
            print(
                f"{protocol:<10}{size:>6}{ms:>11.2f}{ms - reference:>+16.2f}{ms - call:>+15.2f}"
                f"{ms / reference:>13.2f}{ms / call:>12.2f}"
            )
    verdicts = []
    for protocol in ("V1", "V2"):
        gap = p50s[(f"served {protocol} log off", 1)] - p50s[(predict, 1)]
        verdicts.append(f"{protocol} {'met' if gap <= 2.0 else 'MISSED'} ({gap:+.2f} ms)")
    if judge:
        print(f"target: served p50 at batch 1 within 2 ms of in-process predict() p50: {', '.join(verdicts)}")
    for protocol in ("V1", "V2"):
        on, off = f"served {protocol} log on", f"served {protocol} log off"
        changes = ", ".join(f"batch {size} {p50s[(on, size)] - p50s[(off, size)]:+.2f} ms" for size in BATCH_SIZES)
        print(f"payload logging on minus off, {protocol} p50: {changes}")


def main() -> None:
    """Train, serve, measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=None, help="timed calls per row (default 300 at batch 1, 100 at 64)"
    )
    parser.add_argument("--days", type=int, default=30, help="days of demo data to train on (default 30)")
    parser.add_argument("--short", action="store_true", help="small plant, 5 calls per row (CI)")
    args = parser.parse_args()
    if args.short:
        args.requests = args.requests or 5
    requests = {size: args.requests or DEFAULT_REQUESTS[size] for size in BATCH_SIZES}

    from shopfloor.components.deploy.local_target import stop_server
    from shopfloor.contracts.model_artifact import load_keras_model
    from shopfloor.demo.plant import PlantDataSpec

    plant = PlantDataSpec(sites=2, assets_per_site=3, days=40) if args.short else PlantDataSpec(days=args.days)

    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        test_x = train_small_model(root, plant)
        keras_model = load_keras_model(root / "model")
        batches = {size: batches_of(test_x, size) for size in BATCH_SIZES}
        bodies = {
            "V1": {size: [v1_body(b) for b in items] for size, items in batches.items()},
            "V2": {size: [v2_body(b) for b in items] for size, items in batches.items()},
        }
        print(
            f"{len(test_x)} test windows of {test_x.shape[1]}x{test_x.shape[2]}; data and model made in "
            f"{time.perf_counter() - began:.1f} s; V1 body {len(bodies['V1'][1][0])} B (batch 1), "
            f"{len(bodies['V1'][64][0])} B (batch 64); V2 {len(bodies['V2'][64][0])} B (batch 64)"
        )
        print(
            "served rows: bodies serialized before timing, one persistent connection (http.client), "
            f"{WARMUP} warm-up calls per row\n"
        )

        state = root / "servers"
        rows = in_process_rows(keras_model, batches, requests)
        names = ("bench-off", "bench-on")
        stats = {}
        try:
            endpoint = deploy(state, root / "model", names[0])
            drift = check_served_matches(endpoint.url, names[0], keras_model, batches[64][0], bodies["V1"][64][0])
            rows += served_rows(endpoint.url, names[0], "log off", bodies, requests)
            concurrent = concurrent_v1(endpoint.url, names[0], bodies["V1"][1])
            stop_server(state, names[0])
            endpoint = deploy(state, root / "model", names[1], payload_log_uri=str(root / "payload-logs"))
            rows += served_rows(endpoint.url, names[1], "log on", bodies, requests)
            client = Client(endpoint.url)
            stats = client.get("/v1/payload-log")
            client.close()
        finally:
            for name in names:
                stop_server(state, name)

    p50s = print_table(rows)
    print_concurrent(*concurrent)
    print(f"payload logger after the logged rows: {stats}")
    print(f"served vs in-process failure probability, max |diff| on 64 windows: {drift:.2e}")
    print_summary(p50s, judge=not args.short)
    print(f"\ntotal {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
