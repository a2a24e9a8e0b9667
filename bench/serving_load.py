"""200 concurrent clients against our model server and, side by side, kserve's stock ``ModelServer`` on the same model.

Trains the small predictive-maintenance model of ``serving_latency.py`` (demo data, two epochs) and serves that one
folder twice, each server in its own process, payload logging off for both: ``python -m shopfloor.serving.server``
started through ``LocalServerTarget``, and ``kserve.ModelServer(enable_grpc=False, workers=1)`` around a
``WindowModel`` that ``load_window_model`` loads from the same folder (this script re-run with ``--stock-server``),
so the only difference is the server around the model. Stock keeps its own defaults (uvicorn access log and kserve's
per-request latency log lines, to its log file). Both run uvicorn with its default loop, uvloop, and httptools. Each
server answers one predict (both answers must agree) and one explain first: ours explains in a worker process that
loads in the background after the server is ready, and that start is not what this measures.

The load generator runs in a third process (so it shares neither server's GIL): ``--clients`` asyncio clients (raw
streams on uvloop) connect at once, as wrk does, then each posts V1 ``:predict`` batch-1 bodies (real test windows,
serialized beforehand) back to back on its one keep-alive HTTP/1.1 connection (closed loop) for ``--duration``
seconds, each request bounded by ``--timeout`` (a connection that timed out or failed is closed and reopened).
Ours and stock take turns, ``--rounds`` times, in alternating order, so a change in the machine's other load hits
both. Per server: requests answered 200, throughput, p50/p99/max latency (connecting included), the slowest first
answer on a connection, non-200 answers, timeouts, connection errors and the client's CPU per request; then the same
load against a canned-response asyncio server: the client's own ceiling on this machine. Servers, client and
whatever else runs share the machine's cores.

    python bench/serving_load.py [--clients 200] [--duration 10] [--rounds 2] [--timeout 10] [--days 30] [--short]

``--short`` (a quick check that it runs, for CI): a small plant (2 sites x 3 assets, 40 days), one 3 s round; same
table and ratio lines, no verdict on the target (p99 <= 1 s, no errors, timeouts or connection errors, ours at
least stock's throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from serving_latency import batches_of, deploy, train_small_model, v1_body

HOST = "127.0.0.1"
STOCK_NAME = "bench-stock"
OURS_NAME = "bench-ours"
P99_TARGET_MS = 1000.0
CANNED_BODY = b'{"predictions":[{"failure_probability":0.5,"fails_within_horizon":false,"rul_hours":1.0}]}'


def http_request(path: str, body: bytes) -> bytes:
    """One keep-alive HTTP/1.1 POST of a JSON body, as bytes ready to write."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bool]:
    """Send one request and read its response: the status code and whether the server keeps the connection open."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    start = lower.find(b"content-length:")
    if start < 0:
        raise ValueError("response without Content-Length")
    length = int(lower[start + 15 : lower.index(b"\r\n", start)])
    await reader.readexactly(length)
    return status, b"connection: close" not in lower


class ClientStats:
    """What the clients saw: latencies (s) of 200 answers, each connection's first answer, counts of the rest."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.first_answers: list[float] = []
        self.errors = 0
        self.timeouts = 0
        self.connection_errors = 0


async def one_client(
    port: int, requests: list[bytes], offset: int, stop_at: float, timeout_s: float, stats: ClientStats
) -> None:
    """A closed loop on one connection until ``stop_at``: a request, its answer, the next request.

    A request's latency includes opening the connection when it needs one (the first, or after a failure).
    """
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    started, first = time.perf_counter(), True
    i = offset
    while time.perf_counter() < stop_at:
        request = requests[i % len(requests)]
        i += 1
        began = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s):
                if connection is None:
                    connection = await asyncio.open_connection(HOST, port)
                status, keep = await exchange(*connection, request)
        except TimeoutError:
            stats.timeouts += 1
            close(connection)
            connection = None
            continue
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            stats.connection_errors += 1
            close(connection)
            connection = None
            await asyncio.sleep(0.05)
            continue
        answered = time.perf_counter()
        if status == 200:
            stats.latencies.append(answered - began)
        else:
            stats.errors += 1
        if first:
            stats.first_answers.append(answered - started)
            first = False
        if not keep:
            close(connection)
            connection = None
    close(connection)


def close(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
    """Close a client connection, if there is one."""
    if connection is not None:
        connection[1].close()


async def drive(
    port: int, requests: list[bytes], clients: int, duration_s: float, timeout_s: float
) -> tuple[ClientStats, float, float]:
    """All clients connect at once (as wrk does) and loop for ``duration_s``; stats, wall time, client CPU time."""
    stats = ClientStats()
    began, cpu_began = time.perf_counter(), time.process_time()
    stop_at = began + duration_s
    await asyncio.gather(*(one_client(port, requests, i, stop_at, timeout_s, stats) for i in range(clients)))
    return stats, time.perf_counter() - began, time.process_time() - cpu_began


def run_load(port: int, requests: list[bytes], clients: int, duration_s: float, timeout_s: float) -> dict:
    """The load generator's process: run the clients on uvloop; a plain dict of results (picklable)."""
    import uvloop

    stats, wall, cpu = uvloop.run(drive(port, requests, clients, duration_s, timeout_s))
    return {
        "latencies": np.asarray(stats.latencies),
        "first_answers": np.asarray(stats.first_answers),
        "errors": stats.errors,
        "timeouts": stats.timeouts,
        "connection_errors": stats.connection_errors,
        "wall_s": wall,
        "client_cpu_s": cpu,
    }


async def canned_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer every request on a connection with the same small 200 JSON response."""
    response = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(CANNED_BODY)}\r\n\r\n".encode()
        + CANNED_BODY
    )
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            start = head.find(b"content-length:")
            await reader.readexactly(int(head[start + 15 : head.index(b"\r\n", start)]) if start >= 0 else 0)
            writer.write(response)
            await writer.drain()
    writer.close()


def serve_canned(port: int) -> None:
    """A canned-response HTTP server on uvloop until killed: what the client alone reaches on this machine."""
    import uvloop

    async def serve() -> None:
        server = await asyncio.start_server(canned_connection, HOST, port, backlog=1024)
        await server.serve_forever()

    uvloop.run(serve())


def serve_stock(model_dir: str, name: str, port: int) -> None:
    """kserve's stock ModelServer (HTTP only, one worker) around our WindowModel loaded from ``model_dir``."""
    sys.argv = sys.argv[:1]  # kserve parses sys.argv when first imported: ours are not its options
    from kserve import ModelServer

    from shopfloor.components.deploy.local_target import free_port
    from shopfloor.serving.server import load_window_model

    model = load_window_model(model_dir, name)
    print(f"stock ModelServer: {type(model).__name__} {name} from {model_dir} on port {port}", flush=True)
    ModelServer(http_port=port, grpc_port=free_port(), enable_grpc=False, workers=1).start([model])


def start_process(command: list[str], log_path: Path) -> subprocess.Popen:
    """A child process in its own session (so its whole group can be stopped), output to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )


def wait_ready(url: str, process: subprocess.Popen, log_path: Path, timeout_s: float = 120.0) -> None:
    """Poll ``url`` until it answers 200; RuntimeError if the process ends or the timeout passes first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(urllib.error.URLError, OSError):
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.25)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.is_file() else ""
    raise RuntimeError(f"{url} not ready (exit code {process.poll()}):\n{tail}")


def stop_process(process: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """SIGTERM the child's process group, SIGKILL it if it has not ended within ``timeout_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def post_json(url: str, body: bytes) -> dict:
    """One POST outside the measurement (a sanity check, a warm-up)."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def round_order(targets: list[tuple[str, int, str]], rounds: int) -> list[tuple[str, int, str]]:
    """Ours and stock in alternating order each round (drift in the machine's load hits both), the ceiling once."""
    servers, ceiling = targets[:2], targets[2:]
    order = []
    for i in range(rounds):
        order += servers if i % 2 == 0 else servers[::-1]
    return order + ceiling


def merge(parts: list[dict]) -> dict:
    """One server's rounds as one result: latencies pooled, counts, wall and CPU times summed."""
    merged = {key: np.concatenate([p[key] for p in parts]) for key in ("latencies", "first_answers")}
    for key in ("errors", "timeouts", "connection_errors", "wall_s", "client_cpu_s"):
        merged[key] = sum(p[key] for p in parts)
    return merged


def per_round_rates(results: dict[str, list[dict]]) -> str:
    """Each server's throughput round by round (how much the machine's other load moved the figures)."""
    lines = []
    for label, parts in list(results.items())[:2]:
        rates = ", ".join(f"{len(r['latencies']) / r['wall_s']:.0f}" for r in parts)
        lines.append(f"{label.split(' (')[0]} {rates}")
    return "; ".join(lines)


def summarize(label: str, result: dict) -> dict:
    """The row of one server: counts, throughput (req/s), latency percentiles (ms), client CPU per request."""
    ms = result["latencies"] * 1000
    ok = len(ms)
    p50, p99 = np.percentile(ms, [50, 99]) if ok else (float("nan"), float("nan"))
    return {
        "label": label,
        "ok": ok,
        "rps": ok / result["wall_s"],
        "p50": p50,
        "p99": p99,
        "max": ms.max() if ok else float("nan"),
        "first_max": result["first_answers"].max() * 1000 if len(result["first_answers"]) else float("nan"),
        "errors": result["errors"],
        "timeouts": result["timeouts"],
        "connection_errors": result["connection_errors"],
        "cpu_us": result["client_cpu_s"] / max(ok, 1) * 1e6,
        "cpu_share": result["client_cpu_s"] / result["wall_s"],
    }


def print_rows(rows: list[dict]) -> None:
    """One line per target: requests, throughput, latency percentiles, failures and the client's CPU.

    ``1st max ms``: the slowest first answer on a connection, counted from the start (connecting included).
    """
    print(
        f"{'server':<30}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'1st max ms':>11}"
        f"{'non-200':>9}"
        f"{'timeouts':>9}{'conn err':>9}{'client us/req':>15}{'client cpu':>11}"
    )
    for r in rows:
        print(
            f"{r['label']:<30}{r['ok']:>9}{r['rps']:>9.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['max']:>9.1f}"
            f"{r['first_max']:>11.1f}"
            f"{r['errors']:>9}{r['timeouts']:>9}{r['connection_errors']:>9}{r['cpu_us']:>15.0f}"
            f"{r['cpu_share']:>10.0%}"
        )


def print_verdict(ours: dict, stock: dict) -> None:
    """The target of the issue, judged on this run: p99 <= 1 s, no failures, ours at least stock's throughput."""
    failures = ours["errors"] + ours["timeouts"] + ours["connection_errors"]
    checks = [
        (f"p99 {ours['p99']:.0f} ms <= {P99_TARGET_MS:.0f} ms", ours["p99"] <= P99_TARGET_MS),
        (f"{failures} errors/timeouts/connection errors", failures == 0),
        (f"throughput {ours['rps']:.0f} >= stock {stock['rps']:.0f} req/s", ours["rps"] >= stock["rps"]),
    ]
    verdict = "met" if all(ok for _, ok in checks) else "MISSED"
    details = "; ".join(f"{text} {'ok' if ok else 'NO'}" for text, ok in checks)
    print(f"target: {verdict} ({details})")


@contextlib.contextmanager
def running_servers(root: Path) -> Iterator[dict[str, int]]:
    """Ours (through the local deploy target), stock and the canned server, ready; their ports by role."""
    from shopfloor.components.deploy.local_target import free_port, stop_server

    ports = {"stock": free_port(), "canned": free_port()}
    stock_log, state = root / "stock.log", root / "servers"
    stock = start_process(
        [sys.executable, __file__, "--stock-server", str(root / "model"), STOCK_NAME, str(ports["stock"])], stock_log
    )
    canned = get_context("spawn").Process(target=serve_canned, args=(ports["canned"],), daemon=True)
    try:
        ports["ours"] = int(deploy(state, root / "model", OURS_NAME).url.rsplit(":", 1)[1])
        wait_ready(f"http://{HOST}:{ports['stock']}/v2/models/{STOCK_NAME}/ready", stock, stock_log)
        canned.start()
        yield ports
    finally:
        stop_server(state, OURS_NAME)
        stop_process(stock)
        if canned.is_alive():
            canned.kill()
            canned.join()


def warm_up(ports: dict[str, int], body: bytes) -> bool:
    """One predict and one explain per server (ours: its explain worker has loaded); whether the answers agree."""
    answers = []
    for port, name in ((ports["ours"], OURS_NAME), (ports["stock"], STOCK_NAME)):
        answers.append(post_json(f"http://{HOST}:{port}/v1/models/{name}:predict", body)["predictions"])
        post_json(f"http://{HOST}:{port}/v1/models/{name}:explain", body)
    return answers[0] == answers[1]


def measure(
    ports: dict[str, int], bodies: list[bytes], args: argparse.Namespace, duration: float, rounds: int
) -> dict[str, list[dict]]:
    """Each target's load results, round by round, from the load generator's own process."""
    targets = [
        ("ours (shopfloor.serving)", ports["ours"], OURS_NAME),
        ("kserve ModelServer (stock)", ports["stock"], STOCK_NAME),
        ("canned 200 (client ceiling)", ports["canned"], "canned"),
    ]
    results: dict[str, list[dict]] = {label: [] for label, _, _ in targets}
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        for label, port, name in round_order(targets, rounds):
            requests = [http_request(f"/v1/models/{name}:predict", body) for body in bodies]
            job = pool.submit(run_load, port, requests, args.clients, duration, args.timeout)
            results[label].append(job.result())
    return results


def print_report(results: dict[str, list[dict]], judge: bool) -> None:
    """The table, the throughput per round, the two ratios and (``judge``) the verdict on the target."""
    rows = [summarize(label, merge(parts)) for label, parts in results.items()]
    print_rows(rows)
    if max(len(parts) for parts in results.values()) > 1:
        print(f"req/s per round: {per_round_rates(results)}")
    ours, stock = rows[0], rows[1]
    print(f"\nthroughput ours / stock: {ours['rps'] / stock['rps']:.2f}")
    print(f"p99 ours / stock: {ours['p99'] / stock['p99']:.2f}")
    if judge:
        print_verdict(ours, stock)


def main() -> None:
    """Train, start the servers, load each in turn from a separate process, print the table and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent keep-alive connections (default 200)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per server and round (default 10)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds, the servers alternating (default 2)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds (default 10)")
    parser.add_argument("--days", type=int, default=30, help="days of demo data to train on (default 30)")
    parser.add_argument("--short", action="store_true", help="small plant, one 3 s round (CI)")
    parser.add_argument("--stock-server", nargs=3, metavar=("MODEL_DIR", "NAME", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stock_server:
        model_dir, name, port = args.stock_server
        serve_stock(model_dir, name, int(port))
        return
    duration = args.duration or (3.0 if args.short else 10.0)
    rounds = args.rounds or (1 if args.short else 2)

    from shopfloor.demo.plant import PlantDataSpec

    plant = PlantDataSpec(sites=2, assets_per_site=3, days=40) if args.short else PlantDataSpec(days=args.days)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        test_x = train_small_model(root, plant)
        bodies = [v1_body(b) for b in batches_of(test_x, 1)]
        with running_servers(root) as ports:
            same = warm_up(ports, bodies[0])
            print(
                f"{len(test_x)} test windows of {test_x.shape[1]}x{test_x.shape[2]}; data, model and servers ready in "
                f"{time.perf_counter() - began:.1f} s; V1 batch-1 body {len(bodies[0])} B; same answer from both "
                f"servers: {same}"
            )
            print(
                f"load: {args.clients} clients connecting at once, then each posting V1 :predict batch 1 back to back "
                f"on its keep-alive HTTP/1.1 connection (closed loop), {duration:g} s per server and round, {rounds} "
                f"round(s) alternating the servers, timeout {args.timeout:g} s; load generator in its own process "
                f"(asyncio streams on uvloop); payload logging off on both servers; {os.cpu_count()} CPUs shared by "
                "servers, client and anything else running\n"
            )
            results = measure(ports, bodies, args, duration, rounds)
    print_report(results, judge=not args.short)
    print(f"\ntotal {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
