"""``shopfloor submit`` and ``shopfloor schedule``: a scenario's run, or a RecurringRun, on a Kubeflow cluster."""

from __future__ import annotations

import argparse
import dataclasses

from shopfloor.app.cli.shared import EXIT_ERROR, Subcommands

__all__ = ["ScheduleRequest", "SubmitRequest", "add_parsers", "schedule", "submit"]


@dataclasses.dataclass(frozen=True)
class SubmitRequest:
    """A run of a scenario's pipeline on the cluster: config and data, where to send it, and whether to wait."""

    scenario: str
    config: str | None = None
    data: str | None = None
    model_store: str | None = None
    host: str | None = None
    namespace: str | None = None
    experiment: str = "shopfloor"
    no_cache: bool = False
    wait: bool = False
    timeout_s: float = 4 * 3600

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SubmitRequest:
        """The request a parsed `shopfloor submit` command line asks for."""
        return cls(
            scenario=args.scenario,
            config=args.config,
            data=args.data,
            model_store=args.model_store,
            host=args.host,
            namespace=args.namespace,
            experiment=args.experiment,
            no_cache=args.no_cache,
            wait=args.wait,
            timeout_s=args.timeout,
        )


@dataclasses.dataclass(frozen=True)
class ScheduleRequest:
    """A RecurringRun of a scenario's pipeline or of the monitoring loop over one scenario's model."""

    pipeline: str
    cron: str
    config: str | None = None
    scenario: str = "predictive-maintenance"
    data: str | None = None
    model_store: str | None = None
    host: str | None = None
    namespace: str | None = None
    experiment: str = "shopfloor"
    service_account: str = "shopfloor-retrainer"
    name: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ScheduleRequest:
        """The request a parsed `shopfloor schedule` command line asks for."""
        return cls(
            pipeline=args.pipeline,
            cron=args.cron,
            config=args.config,
            scenario=args.scenario,
            data=args.data,
            model_store=args.model_store,
            host=args.host,
            namespace=args.namespace,
            experiment=args.experiment,
            service_account=args.service_account,
            name=args.name,
        )


def _add_cluster_options(command: argparse.ArgumentParser) -> None:
    """Options that say what to send and where: config, data, model store, API host, namespace, experiment."""
    command.add_argument("--config", help="scenario config YAML (default: built-in defaults)")
    command.add_argument("--data", help="s3:// prefix the config's data paths are relative to")
    command.add_argument("--model-store", help="s3:// model store (default: the pipeline's)")
    command.add_argument(
        "--host", help="Pipelines API (default: $KF_PIPELINES_ENDPOINT, else Kubeflow's in-cluster service)"
    )
    command.add_argument("--namespace", help="profile namespace (default: $SHOPFLOOR_NAMESPACE, the pod's, kubeflow)")
    command.add_argument("--experiment", default="shopfloor")


def add_parsers(commands: Subcommands) -> None:
    """Add `shopfloor submit` and `shopfloor schedule` to the command line."""
    from shopfloor.pipelines.scenarios import SCENARIOS

    submit_ = commands.add_parser("submit", help="start a scenario's pipeline on a Kubeflow cluster")
    submit_.add_argument("scenario", choices=sorted(SCENARIOS))
    _add_cluster_options(submit_)
    submit_.add_argument("--no-cache", action="store_true", help="run every step, whatever its caching")
    submit_.add_argument("--wait", action="store_true", help="wait for the run to end; its state sets the exit code")
    submit_.add_argument("--timeout", type=float, default=4 * 3600, help="seconds --wait waits (default 4 h)")
    submit_.set_defaults(make_request=SubmitRequest.from_args, execute=submit)

    schedule_ = commands.add_parser("schedule", help="create a RecurringRun of a pipeline on a Kubeflow cluster")
    schedule_.add_argument("pipeline", choices=[*sorted(SCENARIOS), "monitoring"])
    schedule_.add_argument("--cron", required=True, help="six fields, seconds first, e.g. '0 0 * * * *' (hourly)")
    schedule_.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default="predictive-maintenance",
        help="monitoring: the scenario whose model it watches and retrains",
    )
    _add_cluster_options(schedule_)
    schedule_.add_argument("--service-account", default="shopfloor-retrainer", help="what the runs run as")
    schedule_.add_argument("--name", help="the RecurringRun's name (default: <model>-<pipeline>)")
    schedule_.set_defaults(make_request=ScheduleRequest.from_args, execute=schedule)


def submit(request: SubmitRequest) -> int:
    """Submit the run; print its id and dashboard link; with --wait, exit 0 only if it succeeded."""
    from shopfloor.app import kubeflow

    started = kubeflow.submit(
        request.scenario,
        request.config,
        data=request.data,
        model_store_uri=request.model_store,
        host=request.host,
        namespace=request.namespace,
        experiment=request.experiment,
        enable_caching=False if request.no_cache else None,
    )
    print(f"run {started.run_id} in {started.connection.namespace}: {started.url}")
    if not request.wait:
        return 0
    finished = kubeflow.wait(started, timeout_s=request.timeout_s)
    print(f"run {finished.run_id}: {finished.state}")
    return 0 if finished.succeeded else EXIT_ERROR


def schedule(request: ScheduleRequest) -> int:
    """Create the RecurringRun and print its id."""
    from shopfloor.app import kubeflow

    created = kubeflow.schedule(
        request.pipeline,
        request.cron,
        request.config,
        scenario=request.scenario,
        data=request.data,
        model_store_uri=request.model_store,
        host=request.host,
        namespace=request.namespace,
        experiment=request.experiment,
        service_account=request.service_account,
        name=request.name,
    )
    print(f"recurring run {created.recurring_run_id} ({created.name}): {created.cron}")
    return 0
