"""``shopfloor serve`` and ``shopfloor stop``: a published model's server on this machine."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from shopfloor.app.cli.shared import DEFAULT_WORK_DIR, Subcommands

__all__ = ["ServeRequest", "StopRequest", "add_parsers", "serve", "stop"]


@dataclasses.dataclass(frozen=True)
class ServeRequest:
    """Which published model to serve, under which name, on which address and ports, logging payloads where."""

    model_uri: str
    name: str = "predictive-maintenance"
    host: str = "127.0.0.1"
    port: int = 8080
    payload_log: str | None = None
    grpc_port: int | None = None  # also the Open Inference Protocol over gRPC on this port (None: REST only)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ServeRequest:
        """The request a parsed `shopfloor serve` command line asks for."""
        return cls(
            model_uri=args.model_uri,
            name=args.name,
            host=args.host,
            port=args.port,
            payload_log=args.payload_log,
            grpc_port=args.grpc_port,
        )

    def server_argv(self) -> list[str]:
        """The model server's own command line (shopfloor.serving.server) for this request."""
        argv = ["--model-uri", self.model_uri, "--model-name", self.name, "--host", self.host]
        argv += ["--http-port", str(self.port)]
        if self.payload_log:
            argv += ["--payload-log-uri", self.payload_log]
        if self.grpc_port:
            argv += ["--grpc-port", str(self.grpc_port)]
        return argv


@dataclasses.dataclass(frozen=True)
class StopRequest:
    """Which model's server to stop, among those a local run under the work dir started."""

    name: str = "predictive-maintenance"
    work_dir: Path = Path(DEFAULT_WORK_DIR)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> StopRequest:
        """The request a parsed `shopfloor stop` command line asks for."""
        return cls(name=args.name, work_dir=Path(args.work_dir))


def add_parsers(commands: Subcommands) -> None:
    """Add `shopfloor serve` and `shopfloor stop` to the command line."""
    serve_ = commands.add_parser("serve", help="serve a published model on this machine (KServe V1 and V2)")
    serve_.add_argument("model_uri", help="published model version (or model folder), a path or s3:// URI")
    serve_.add_argument("--name", default="predictive-maintenance", help="model name in the URLs")
    serve_.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    serve_.add_argument("--port", type=int, default=8080)
    serve_.add_argument("--payload-log", help="folder or s3:// prefix for request/response logs")
    serve_.add_argument("--grpc-port", type=int, help="also answer the Open Inference Protocol over gRPC here")
    serve_.set_defaults(make_request=ServeRequest.from_args, execute=serve)

    stop_ = commands.add_parser("stop", help="stop the model server a local run started")
    stop_.add_argument("name", nargs="?", default="predictive-maintenance")
    stop_.add_argument("--work-dir", default=DEFAULT_WORK_DIR)
    stop_.set_defaults(make_request=StopRequest.from_args, execute=stop)


def serve(request: ServeRequest) -> int:
    """Serve a published model (path or s3://) in the foreground until Ctrl-C."""
    from shopfloor.serving.server import main as serve_model

    return serve_model(request.server_argv())


def stop(request: StopRequest) -> int:
    """Stop the model server a local run started."""
    from shopfloor.components.deploy.local_target import stop_server

    stopped = stop_server(request.work_dir.resolve() / "serving", request.name)
    print(f"stopped {request.name}" if stopped else f"{request.name} was not running", file=sys.stderr)
    return 0
