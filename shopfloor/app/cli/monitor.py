"""``shopfloor monitor``, ``approve`` and ``reject``: drift checks on the served model and the retrains they start.

A monitor run saves the `shopfloor run` a retrain would use (``retrain-arguments.json`` in the monitor state), so
an approval given later, from another shell, starts the same run. In a fleet the decision names the sites that
drifted or degraded and the retrain is for those sites' models; an approval starts the sites its request named.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
from pathlib import Path
from typing import TYPE_CHECKING

from shopfloor.app.cli.run import RunRequest, run
from shopfloor.app.cli.shared import (
    DEFAULT_WORK_DIR,
    Subcommands,
    add_data_options,
    data_base,
    model_store_uri,
    monitor_state_uri,
    payload_log_uri,
)
from shopfloor.common.storage import join_uri, read_json
from shopfloor.families.scenarios import load_config

if TYPE_CHECKING:
    from shopfloor.common.config import DataConfig

__all__ = [
    "DecisionRequest",
    "MonitorRequest",
    "add_parsers",
    "decide",
    "for_sites",
    "monitor",
    "newest_readings",
    "save_retrain",
    "saved_retrain",
]

RETRAIN_ARGUMENTS = "retrain-arguments.json"


@dataclasses.dataclass(frozen=True)
class MonitorRequest:
    """Which served model to check, against which logs or batch, and how a retrain it starts would run."""

    scenario: str
    data: str | None = None
    config: str | None = None
    work_dir: Path = Path(DEFAULT_WORK_DIR)
    model_store: str | None = None
    payload_log: str | None = None
    days: int | None = None
    labels: str | None = None
    batch: str | None = None
    no_hpo: bool = False
    from_source: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> MonitorRequest:
        """The request a parsed `shopfloor monitor` command line asks for."""
        return cls(
            scenario=args.scenario,
            data=args.data,
            config=args.config,
            work_dir=Path(args.work_dir),
            model_store=args.model_store,
            payload_log=args.payload_log,
            days=args.days,
            labels=args.labels,
            batch=args.batch,
            no_hpo=args.no_hpo,
            from_source=args.from_source,
        )

    def retrain_request(self, sites: tuple[str, ...] = ()) -> RunRequest:
        """The `shopfloor run` a retrain starts: this monitor's scenario, data, config and folders, for ``sites``.

        ``sites`` are the decision's (the sites that drifted or degraded): only their per-site models retrain;
        () retrains the fleet as a whole.
        """
        return RunRequest(
            scenario=self.scenario,
            data=self.data,
            config=self.config,
            work_dir=self.work_dir,
            model_store=self.model_store,
            no_hpo=self.no_hpo,
            sites=tuple(sites),
        )


@dataclasses.dataclass(frozen=True)
class DecisionRequest:
    """An operator's answer to a pending retrain request: approve or reject, by whom and why."""

    request_id: str
    approve: bool
    by: str
    note: str
    config: str | None = None
    work_dir: Path = Path(DEFAULT_WORK_DIR)
    state_uri: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DecisionRequest:
        """The request a parsed `shopfloor approve` or `shopfloor reject` command line asks for."""
        return cls(
            request_id=args.request_id,
            approve=args.command == "approve",
            by=args.by,
            note=args.note,
            config=args.config,
            work_dir=Path(args.work_dir),
            state_uri=args.state_uri,
        )


def add_parsers(commands: Subcommands) -> None:
    """Add `shopfloor monitor`, `approve` and `reject` to the command line."""
    monitor_ = commands.add_parser("monitor", help="check the served model's payloads for drift; apply the policy")
    add_data_options(monitor_)
    monitor_.add_argument("--days", type=int, help="days of payload logs (default: the config's monitor.window_days)")
    monitor_.add_argument("--payload-log", help="payload log folder or s3:// prefix (default: <work-dir>/payload-logs)")
    monitor_.add_argument("--model-store", help="model store (default: <work-dir>/model-store)")
    monitor_.add_argument(
        "--batch", help="compare a new data batch (sensor table, CSV/Parquet, path or s3://) instead of payload logs"
    )
    monitor_.add_argument(
        "--labels",
        help="what really happened to served windows (CSV/Parquet: request_id, index, label), a path or s3:// URI",
    )
    monitor_.add_argument(
        "--from-source",
        action="store_true",
        help="compare the newest --days (default: monitor.window_days) of the config's sensor source (a file, SQL, "
        "MQTT, OPC UA ...) instead of payload logs: what a retrain would read",
    )
    monitor_.add_argument("--no-hpo", action="store_true", help="a retrain skips the hyperparameter search")
    monitor_.set_defaults(make_request=MonitorRequest.from_args, execute=monitor)

    for verb in ("approve", "reject"):
        decision = commands.add_parser(verb, help=f"{verb} a pending retrain request (recorded with who and why)")
        decision.add_argument("request_id")
        decision.add_argument("--by", required=True, help="who decides")
        decision.add_argument("--note", required=True, help="why (kept with the request)")
        decision.add_argument("--config", help="scenario config (default: built-in defaults)")
        decision.add_argument("--work-dir", default=DEFAULT_WORK_DIR)
        decision.add_argument(
            "--state-uri",
            help="the monitor's state on a cluster (the monitoring pipeline's state_uri, e.g. "
            "s3://mlpipeline/shopfloor/monitor): the decision is recorded there and the next monitoring run acts",
        )
        # accepted and ignored, as before: the retrain uses the folders the monitor run saved
        decision.add_argument("--model-store", help=argparse.SUPPRESS)
        decision.add_argument("--payload-log", help=argparse.SUPPRESS)
        decision.set_defaults(make_request=DecisionRequest.from_args, execute=decide)


def for_sites(sites: tuple[str, ...]) -> str:
    """`` for sites a, b`` for a decision or request that names sites; '' for the fleet as a whole."""
    return f" for sites {', '.join(sites)}" if sites else ""


def save_retrain(state_root: str, model_name: str, request: RunRequest) -> None:
    """Keep the run a retrain starts, for an approval given later (`shopfloor approve` reads it back)."""
    from shopfloor.common.storage import write_json

    write_json(join_uri(state_root, model_name, RETRAIN_ARGUMENTS), request.to_json())


def saved_retrain(state_root: str, model_name: str) -> RunRequest:
    """The run the last monitor run saved for a retrain of ``model_name``."""
    return RunRequest.from_json(read_json(join_uri(state_root, model_name, RETRAIN_ARGUMENTS)))


def newest_readings(data: DataConfig, days: float, folder: Path) -> str:
    """The newest ``days`` of the sensor source, ingested as a run would read them, as a Parquet batch in ``folder``.

    The same source and mapping as training, so a monitor compares what a retrain would learn from.
    """
    from shopfloor.common.sources import TimeRange
    from shopfloor.common.storage import atomic_write_bytes
    from shopfloor.components.ingest.ingest import ingest

    recent = data.model_copy(update={"time_range": TimeRange(last_days=days)})
    sensors = ingest(recent.sensors, None, recent).sensors
    path = folder / "newest-readings.parquet"
    buffer = io.BytesIO()
    sensors.to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())
    return str(path)


def monitor(request: MonitorRequest) -> int:
    """Compare the served model's recent payloads with its training data and act on the retrain policy."""
    import datetime as dt

    from shopfloor.common.alerts import channel_name
    from shopfloor.common.storage import atomic_write_bytes
    from shopfloor.components.monitor.alerts import publish_monitor_events
    from shopfloor.components.monitor.metrics import publish_monitor_metrics, pushgateway_url
    from shopfloor.components.monitor.monitor import run_monitoring
    from shopfloor.components.monitor.policy import RetrainState

    config = load_config(request.config, request.scenario)
    store = model_store_uri(request.work_dir, request.model_store)
    logs = payload_log_uri(request.work_dir, request.payload_log)
    state_root = monitor_state_uri(request.work_dir)
    batch = request.batch or ""
    if request.from_source:
        from shopfloor.pipelines.scenarios import SCENARIOS

        base = data_base(SCENARIOS[request.scenario], request.data, request.config, request.work_dir)
        config = config.resolve_data(base)
        from shopfloor.common.config import DataConfig
        from shopfloor.common.errors import ShopfloorError

        if not isinstance(config.data, DataConfig):
            raise ShopfloorError("--from-source", "only sensor scenarios read a sensor source", expected="--batch")
        days = request.days or config.monitor.window_days
        batch = newest_readings(config.data, days, Path(state_root, config.model_name, "batches"))
    checked = run_monitoring(
        store,
        logs,
        state_root,
        config.model_name,
        config.monitor,
        request.days,
        request.labels or "",
        batch,
        config=config,
    )
    decision = checked.decision
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    report = Path(state_root, config.model_name, "reports", f"{stamp}.html")
    atomic_write_bytes(report, checked.report_html.encode())
    save_retrain(state_root, config.model_name, request.retrain_request(decision.sites))
    pushed = publish_monitor_metrics(checked, config.model_name, config.monitor.push_gateway)
    alerted = publish_monitor_events(checked, config.model_name, config.monitor.alerts)
    print(f"{config.model_name} {checked.reference.model_version}: {checked.result.summary}")
    print(f"decision: {decision.action}{for_sites(decision.sites)} - {decision.reason}")
    print(f"report (HTML): {report}")
    if pushed:
        print(f"metrics pushed to: {pushgateway_url(config.monitor.push_gateway)}")
    if alerted is not None:
        print(f"{alerted.type} event {alerted.id} sent to {channel_name(config.monitor.alerts)}")
    if decision.action == "request-approval":
        print(
            f"approve: shopfloor approve {decision.request_id} --by NAME --note WHY   "
            f"(or: shopfloor reject {decision.request_id} --by NAME --note WHY)"
        )
    if decision.action == "retrain":
        print("retraining now (policy: auto)")
        RetrainState(state_root, config.model_name).record_run(decision.request_id)
        return run(request.retrain_request(decision.sites))
    return 0


def decide(request: DecisionRequest) -> int:
    """Approve (and start) or reject a pending retrain request, recording who and why."""
    from shopfloor.components.monitor.alerts import publish_decided
    from shopfloor.components.monitor.policy import RetrainState, can_start

    config = load_config(request.config)
    state_root = monitor_state_uri(request.work_dir, request.state_uri)
    state = RetrainState(state_root, config.model_name)
    decided = state.decide(request.request_id, approve=request.approve, by=request.by, note=request.note)
    print(f"{decided.id}{for_sites(decided.sites)}: {decided.status} by {decided.decided_by} ({decided.note})")
    publish_decided(decided, config.monitor.alerts)  # when a channel is configured
    if not request.approve:
        return 0
    if request.state_uri:  # the cluster's monitor state: its next scheduled run starts the retrain through KFP
        print("the next monitoring run starts the retrain (cooldown and runs-per-day limits apply)")
        return 0
    allowed, why = can_start(config.monitor.retrain, state)
    if not allowed:
        print(f"not starting yet: {why}")
        return 0
    # the sites of this request, not of the latest monitor run (which saved the rest of the run)
    retrain = dataclasses.replace(saved_retrain(state_root, config.model_name), sites=decided.sites)
    state.record_run(decided.id)
    return run(retrain)
