"""``shopfloor demo-data`` and ``shopfloor demo-drift``: demo data, and the whole monitoring loop on one machine."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from shopfloor.app.cli.monitor import DecisionRequest, MonitorRequest, decide, monitor
from shopfloor.app.cli.run import RunRequest, run
from shopfloor.app.cli.shared import DEFAULT_WORK_DIR, EXIT_ERROR, Subcommands
from shopfloor.common.errors import ShopfloorError
from shopfloor.families.scenarios import load_config

__all__ = ["DemoDataRequest", "DemoDriftRequest", "add_parsers", "demo_data", "demo_drift"]

DEMO_SCENARIO = "predictive-maintenance"


@dataclasses.dataclass(frozen=True)
class DemoDataRequest:
    """Where to write the predictive-maintenance demo data, and the size and seed of the plant it simulates."""

    output: Path
    seed: int = 7
    sites: int = 3
    assets_per_site: int = 8
    days: int = 90

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DemoDataRequest:
        """The request a parsed `shopfloor demo-data` command line asks for."""
        return cls(
            output=Path(args.output),
            seed=args.seed,
            sites=args.sites,
            assets_per_site=args.assets_per_site,
            days=args.days,
        )


@dataclasses.dataclass(frozen=True)
class DemoDriftRequest:
    """The folder the drift demo trains, serves, monitors and retrains in."""

    work_dir: Path = Path(DEFAULT_WORK_DIR)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DemoDriftRequest:
        """The request a parsed `shopfloor demo-drift` command line asks for."""
        return cls(work_dir=Path(args.work_dir))


def add_parsers(commands: Subcommands) -> None:
    """Add `shopfloor demo-drift` and `shopfloor demo-data` to the command line."""
    drift = commands.add_parser("demo-drift", help="serve, replay an ageing plant, detect drift, approve, retrain")
    drift.add_argument("--work-dir", default=DEFAULT_WORK_DIR)
    drift.set_defaults(make_request=DemoDriftRequest.from_args, execute=demo_drift)

    data = commands.add_parser("demo-data", help="write the predictive-maintenance demo data set")
    data.add_argument("output", help="folder to write sensors.csv and events.csv into")
    data.add_argument("--seed", type=int, default=7)
    data.add_argument("--sites", type=int, default=3)
    data.add_argument("--assets-per-site", type=int, default=8)
    data.add_argument("--days", type=int, default=90)
    data.set_defaults(make_request=DemoDataRequest.from_args, execute=demo_data)


def demo_data(request: DemoDataRequest) -> int:
    """Write a scenario's demo data set."""
    from shopfloor.demo.plant import PlantDataSpec, write_plant_data

    spec = PlantDataSpec(
        seed=request.seed, sites=request.sites, assets_per_site=request.assets_per_site, days=request.days
    )
    try:  # the spec is checked when the data is generated, not when it is built
        written = write_plant_data(request.output, spec)
    except ValueError as exc:
        raise ShopfloorError("demo-data", str(exc)) from None
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def demo_drift(request: DemoDriftRequest) -> int:
    """Serve a model, replay an ageing plant, detect drift, approve, retrain: on one machine."""
    import time

    import pandas as pd

    from shopfloor.components.deploy.local_target import running_server
    from shopfloor.components.monitor.policy import RetrainState
    from shopfloor.contracts.model_artifact import load_model_info
    from shopfloor.demo.drift import replay_windows, sensor_windows, write_aged_plant

    work_dir = request.work_dir.resolve()
    name = load_config(None).model_name
    if running_server(work_dir / "serving", name) is None:
        print("1/4 training and serving the model on the plant's first months", flush=True)
        if run(RunRequest(scenario=DEMO_SCENARIO, work_dir=work_dir, no_hpo=True)) != 0:
            return EXIT_ERROR
    state = running_server(work_dir / "serving", name)
    if state is None:  # it stopped after training, or serving it failed
        print(f"the model server for {name} is not running (see {work_dir / 'serving'})", file=sys.stderr)
        return EXIT_ERROR
    print(f"2/4 replaying the plant's next months, with wear injected, against {state['url']}", flush=True)
    aged = write_aged_plant(work_dir / "demo-data" / "aged-plant")
    info = load_model_info(state["model_uri"])
    windows = sensor_windows(pd.read_csv(aged["sensors"]), info["features"], info["window"])
    print(f"    {replay_windows(state['url'], name, windows)} requests answered", flush=True)
    time.sleep(3)  # the server writes payload logs in the background every 2 s
    print("3/4 monitoring", flush=True)
    check = MonitorRequest(
        scenario=DEMO_SCENARIO,
        data=str(aged["sensors"].parent),
        config=_demo_policy_config(work_dir),
        work_dir=work_dir,
        days=1,
        no_hpo=True,
    )
    if monitor(check) != 0:
        return EXIT_ERROR
    pending = RetrainState(str(work_dir / "monitor"), name).requests("pending")
    if not pending:
        print("no approval request: nothing to approve (see the decision above)")
        return 0
    print(f"4/4 an operator approves {pending[-1].id}; the model is retrained on the aged plant", flush=True)
    approval = DecisionRequest(
        request_id=pending[-1].id,
        approve=True,
        by="demo-operator",
        note="wear confirmed on site",
        config=check.config,
        work_dir=work_dir,
    )
    return decide(approval)


def _demo_policy_config(work_dir: Path) -> str:
    """A config for the demo: approval mode, no cooldown (the demo model was just trained)."""
    from shopfloor.common.storage import atomic_write_bytes

    path = work_dir / "demo-data" / "drift-demo.yaml"
    atomic_write_bytes(path, b"monitor:\n  window_days: 1\n  retrain: {mode: approval, cooldown_hours: 0}\n")
    return str(path)
