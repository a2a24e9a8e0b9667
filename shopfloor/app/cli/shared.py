"""What several commands share: exit codes, the folders under --work-dir, and the scenario data options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from shopfloor.common.errors import ShopfloorError

if TYPE_CHECKING:
    from shopfloor.pipelines.scenarios import Scenario

__all__ = [
    "DEFAULT_WORK_DIR",
    "EXIT_ERROR",
    "EXIT_GATE_FAILED",
    "Subcommands",
    "add_data_options",
    "data_base",
    "model_store_uri",
    "monitor_state_uri",
    "payload_log_uri",
]

EXIT_ERROR = 1
EXIT_GATE_FAILED = 3
DEFAULT_WORK_DIR = "shopfloor-runs"

# what ArgumentParser.add_subparsers returns; every command module adds its parsers to it
Subcommands = argparse._SubParsersAction


def add_data_options(command: argparse.ArgumentParser) -> None:
    """Add the scenario, --data, --config and --work-dir options that run, validate and monitor share."""
    from shopfloor.pipelines.scenarios import SCENARIOS

    command.add_argument("scenario", choices=sorted(SCENARIOS))
    command.add_argument(
        "--data",
        help="folder or s3:// prefix the config's data paths are relative to "
        "(default: the config's folder, or generated demo data)",
    )
    command.add_argument("--config", help="scenario config YAML (default: built-in defaults)")
    command.add_argument("--work-dir", default=DEFAULT_WORK_DIR, help="pipeline root, model store and logs")


def model_store_uri(work_dir: Path, model_store: str | None) -> str:
    """--model-store, else <work-dir>/model-store: where `shopfloor run` publishes and the others read."""
    return model_store or str(work_dir.resolve() / "model-store")


def payload_log_uri(work_dir: Path, payload_log: str | None) -> str:
    """--payload-log, else <work-dir>/payload-logs: where a locally served model logs its requests."""
    return payload_log or str(work_dir.resolve() / "payload-logs")


def monitor_state_uri(work_dir: Path, state_uri: str | None = None) -> str:
    """--state-uri, else <work-dir>/monitor: where the monitor keeps reports and retrain requests."""
    return state_uri or str(work_dir.resolve() / "monitor")


def data_base(scenario: Scenario, data: str | None, config: str | None, work_dir: Path) -> str:
    """Folder that relative data paths resolve against: --data, else the config's folder, else demo data."""
    if data:
        if not data.startswith("s3://") and not Path(data).is_dir():
            raise ShopfloorError(
                data,
                "data folder not found",
                field="--data",
                expected="a folder (or s3:// prefix) holding the files the config names",
            )
        return data
    if config:
        return str(Path(config).resolve().parent)
    demo = work_dir.resolve() / "demo-data" / scenario.name
    if not demo.is_dir():
        print(f"Generating demo data into {demo}", file=sys.stderr)
        scenario.write_demo_data(demo)
    return str(demo)
