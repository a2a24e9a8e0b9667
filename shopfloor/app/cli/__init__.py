"""The ``shopfloor`` command line: run a scenario on one machine, compile, submit and schedule on Kubeflow.

Exit codes: 0 success; 1 bad input or a failed step (one line on stderr naming file, field and expectation);
2 bad command line; 3 the run finished but the model failed the quality gate (nothing was published).

One module per command group (run, validate, serve, monitor, approvals, feedback, compile, kubeflow, demo) adds its
subcommands and turns the parsed command line into a small frozen request; its command function takes only that
request.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shopfloor.app.cli import approvals, demo, feedback, kubeflow, monitor, run, serve, validate
from shopfloor.app.cli import compile as compile_group  # the module, not the builtin
from shopfloor.app.cli.approvals import ListenRequest, ListRequest
from shopfloor.app.cli.compile import CompileRequest
from shopfloor.app.cli.demo import DemoDataRequest, DemoDriftRequest
from shopfloor.app.cli.feedback import FeedbackRequest
from shopfloor.app.cli.kubeflow import ScheduleRequest, SubmitRequest
from shopfloor.app.cli.monitor import DecisionRequest, MonitorRequest
from shopfloor.app.cli.run import RunRequest
from shopfloor.app.cli.serve import ServeRequest, StopRequest
from shopfloor.app.cli.shared import EXIT_ERROR
from shopfloor.app.cli.validate import ValidateRequest
from shopfloor.common.errors import ShopfloorError

__all__ = [
    "CompileRequest",
    "DecisionRequest",
    "DemoDataRequest",
    "DemoDriftRequest",
    "FeedbackRequest",
    "ListRequest",
    "ListenRequest",
    "MonitorRequest",
    "Request",
    "RunRequest",
    "ScheduleRequest",
    "ServeRequest",
    "StopRequest",
    "SubmitRequest",
    "ValidateRequest",
    "build_parser",
    "main",
    "parse_request",
]

Request = (
    RunRequest
    | ValidateRequest
    | ServeRequest
    | StopRequest
    | MonitorRequest
    | DecisionRequest
    | ListenRequest
    | ListRequest
    | FeedbackRequest
    | CompileRequest
    | SubmitRequest
    | ScheduleRequest
    | DemoDriftRequest
    | DemoDataRequest
)

# in the order `shopfloor --help` lists them
_COMMAND_GROUPS = (run, validate, serve, monitor, approvals, feedback, compile_group, kubeflow, demo)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand; each sets ``make_request`` and ``execute``."""
    parser = argparse.ArgumentParser(prog="shopfloor", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for group in _COMMAND_GROUPS:
        group.add_parsers(commands)
    return parser


def parse_request(argv: Sequence[str] | None = None) -> Request:
    """The request a command line asks for (argparse exits with 2 on a bad one)."""
    args = build_parser().parse_args(argv)
    return args.make_request(args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``shopfloor`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.execute(args.make_request(args))
    except ShopfloorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
