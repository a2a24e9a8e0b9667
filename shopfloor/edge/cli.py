"""``shopfloor-edge``: serve a published model's edge export over HTTP and/or MQTT, keep it updated, log payloads.

    shopfloor-edge --model-store s3://models --model pump-failure [--version v-...] [--variant int8] [--port 8080]
                   [--mqtt-host localhost] [--payload-log s3://payload-logs] [--payload-spool /var/lib/shopfloor/spool]

The model is pulled from the store at start and every ``--update-interval-s`` seconds or on SIGHUP, and swapped
in atomically (``shopfloor.edge.updates``); with ``--version`` that one published version is served and
``latest.json`` is not followed (the KServe predictor: the deploy step decides what serves). Payload records that
the store does not take (unreachable, down) go to the bounded local spool at the failed write, and the spool is
sent first, in order, whenever the store takes writes again (at start, then every flush interval). SIGTERM or
SIGINT stops it: the payload log gets a last flush and spools the rest.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from shopfloor.common.errors import StorageError
from shopfloor.contracts.payload_log import PayloadLogger
from shopfloor.edge.server import EdgeMetrics, EdgeServer
from shopfloor.edge.updates import ModelUpdater

__all__ = ["main", "parser"]

_LOGGER = logging.getLogger("shopfloor.edge")
_SIGNALS = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT}


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="shopfloor-edge", description=__doc__.splitlines()[0])
    p.add_argument("--model-store", required=True, help="the model store: a folder or s3://bucket/prefix")
    p.add_argument("--model", required=True, help="the model's name in the store")
    p.add_argument(
        "--version",
        default="",
        help="serve this published version only, never following latest.json ('' = follow latest.json)",
    )
    p.add_argument(
        "--variant",
        choices=["int8", "float32"],
        default="int8",
        help="which TFLite export answers (float32 where int8 is not offered)",
    )
    p.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "shopfloor-edge-models"))
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port; 0: a free one; -1: no HTTP")
    p.add_argument("--update-interval-s", type=float, default=300.0, help="how often to look for a new version")
    p.add_argument("--mqtt-host", default="", help="MQTT broker for the edge loop ('' = no MQTT)")
    p.add_argument("--mqtt-port", type=int, default=1883)
    p.add_argument("--mqtt-prefix", default="shopfloor/edge")
    p.add_argument("--payload-log", default="", help="where payload logs go (folder or s3://); '' = not logged")
    p.add_argument(
        "--payload-spool",
        default=str(Path(tempfile.gettempdir()) / "shopfloor-payload-spool"),
        help="local folder (bounded) holding payload records the store did not take; sent first once it is back",
    )
    p.add_argument(
        "--payload-flush-interval-s",
        type=float,
        default=2.0,
        help="how often payload records go to the store (or, while it is unreachable, to the spool)",
    )
    p.add_argument("--max-batch", type=int, default=1024)
    return p


def _wait_for_stop(wake: threading.Event) -> None:
    """Take the blocked signals in the main thread: SIGHUP wakes the update loop, SIGTERM or SIGINT returns."""
    while True:
        received = signal.sigwait(_SIGNALS)
        if received != signal.SIGHUP:
            _LOGGER.info("edge: %s received, stopping", signal.Signals(received).name)
            return
        _LOGGER.info("edge: SIGHUP received, looking for a new version")
        wake.set()


def _update_loop(updater: ModelUpdater, wake: threading.Event, stop: threading.Event, interval_s: float) -> None:
    """Look for a new version every ``interval_s`` or when woken (SIGHUP); the served model stays on failure."""
    while not stop.is_set():
        wake.wait(interval_s)
        wake.clear()
        if stop.is_set():
            return
        try:
            updater.check()
        except Exception as exc:  # the loop must outlive any failed update, or updates stop for good
            _LOGGER.warning(
                "edge %s: update failed, still serving %s: %s",
                updater.name,
                getattr(updater.current, "version", "nothing"),
                exc,
            )


def main(argv: list[str] | None = None) -> int:
    """Run the edge runtime until SIGTERM/SIGINT; 2 when no model could be loaded at all."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parser().parse_args(argv)
    # Before any thread exists (LiteRT's, paho's, the HTTP server's): every thread inherits the block, so a signal
    # stays pending until the main thread takes it with sigwait. With Python handlers instead, the kernel may
    # deliver SIGHUP to another thread while the main thread sleeps in a lock that no signal interrupts, and the
    # update waits for the next interval (the flaky SIGHUP test); a signal during start-up is taken afterwards.
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    metrics = EdgeMetrics()
    updater = ModelUpdater(
        args.model_store, args.model, args.cache_dir, args.variant, args.max_batch, version=args.version
    )
    updater.listeners.append(metrics.served)
    updater.start_from_cache()
    try:
        updater.check()
    except (StorageError, OSError, ValueError, KeyError) as exc:
        _LOGGER.warning("edge %s: model store not readable at start: %s", args.model, exc)
    if updater.current is None:
        print(f"shopfloor-edge: {args.model}: no published version in {args.model_store} or the cache", flush=True)
        return 2
    logger: Any = None
    if args.payload_log:
        logger = PayloadLogger(
            args.payload_log,
            args.model,
            updater.current.version,
            spool_dir=args.payload_spool,
            spool_on_failure=True,  # on disk within one flush interval while the store is away: kill -9 loses no more
            flush_interval_s=args.payload_flush_interval_s,
        )
        logger.start()
    stop, wake = threading.Event(), threading.Event()
    server = None
    edge = EdgeServer(args.model, lambda: updater.current, metrics, logger)
    if args.port >= 0:
        server = edge.serve(args.host, args.port)
        threading.Thread(target=server.serve_forever, name="edge-http", daemon=True).start()
    mqtt_loop = None
    if args.mqtt_host:
        from shopfloor.edge.mqtt import MqttLoop

        mqtt_loop = MqttLoop(
            args.model, lambda: updater.current, args.mqtt_host, args.mqtt_port, args.mqtt_prefix, logger
        ).start()
    threading.Thread(target=_update_loop, args=(updater, wake, stop, args.update_interval_s), daemon=True).start()
    where = f"http://{args.host}:{server.server_address[1]}" if server else "no HTTP"
    current = updater.current
    print(
        f"shopfloor-edge: {args.model} {current.version} ({current.kind}, litert-{current.variant}) on {where}"
        + (f", mqtt {args.mqtt_host}:{args.mqtt_port}" if mqtt_loop else ""),
        flush=True,
    )
    _wait_for_stop(wake)
    stop.set()
    wake.set()
    if server is not None:
        server.shutdown()
    if mqtt_loop is not None:
        mqtt_loop.stop()
    if logger is not None:
        logger.close()
    print(f"shopfloor-edge: {args.model} stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
