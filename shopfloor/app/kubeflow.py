"""Submit and schedule shopfloor's pipelines on a Kubeflow cluster, from a notebook or the CLI.

The same scenario configs as ``shopfloor run``: a config (a file, or a config object built in Python) becomes the
pipeline's typed arguments (dicts stay dicts), the pipeline is compiled in-process with the image it will run,
and ``kfp.Client`` creates the run or the RecurringRun in the profile namespace (``shopfloor.common.kfp_api``
finds the API and the token). A cluster reads data and the model store from ``s3://`` only, so a local path is
refused before anything is sent. After a run, ``run_results`` reads what it published: the gate's verdict, the
test metrics and where the model card and report are.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopfloor.common.errors import ConfigError, ShopfloorError
from shopfloor.common.kfp_api import KfpConnection, kfp_client, resolve_connection
from shopfloor.common.storage import is_s3_uri, join_uri, read_json
from shopfloor.contracts.model_store import ModelStore
from shopfloor.families.scenarios import ScenarioConfig, load_config

__all__ = [
    "FinishedRun",
    "PublishedResults",
    "ScheduledRun",
    "SubmittedRun",
    "run_results",
    "schedule",
    "submit",
    "wait",
]

DEFAULT_EXPERIMENT = "shopfloor"
MONITORING = "monitoring"
# the arguments that name data a step reads: a cluster can read only s3:// there
_DATA_ARGUMENTS = ("sensors_uri", "events_uri", "data_root", "annotations", "model_store_uri")


@dataclasses.dataclass(frozen=True)
class SubmittedRun:
    """A run the Pipelines API accepted: its id, where the dashboard shows it, and how it was reached."""

    run_id: str
    url: str
    experiment: str
    connection: KfpConnection


@dataclasses.dataclass(frozen=True)
class FinishedRun:
    """How a run ended (``SUCCEEDED``, ``FAILED``, ``CANCELED``...) and where the dashboard shows it."""

    run_id: str
    state: str
    url: str

    @property
    def succeeded(self) -> bool:
        """Whether every task of the run succeeded."""
        return self.state == "SUCCEEDED"


@dataclasses.dataclass(frozen=True)
class ScheduledRun:
    """A RecurringRun: its id, name and cron."""

    recurring_run_id: str
    name: str
    cron: str


@dataclasses.dataclass(frozen=True)
class PublishedResults:
    """What the model in production says about itself: version, gate, test metrics, and links to its documents."""

    model_name: str
    version: str
    blessed: bool
    metrics: dict[str, float]
    links: dict[str, str]


def _scenario_config(
    scenario: str, config: ScenarioConfig | str | os.PathLike | None, data: str | None
) -> ScenarioConfig:
    """The validated config of ``scenario``: as given, read from a file, or the defaults; data paths resolved.

    Relative data paths resolve against ``data``, else against the config file's folder.
    """
    if config is None or isinstance(config, str | os.PathLike):
        loaded = load_config(config, scenario)
        base = data or (str(Path(config).parent) if config is not None and not is_s3_uri(config) else None)
    else:
        loaded, base = config, data
    if loaded.scenario != scenario:
        raise ConfigError("config", f"a config for {loaded.scenario!r}, not {scenario!r}", field="scenario")
    return loaded.resolve_data(base) if base else loaded


def _require_s3(arguments: dict, source: str) -> None:
    """Refuse arguments that name local data: pods on the cluster read ``s3://`` only."""
    for name in _DATA_ARGUMENTS:
        values = arguments.get(name)
        for value in values if isinstance(values, list) else [values]:
            if value and not is_s3_uri(value):
                raise ConfigError(source, f"{value!r} is a local path", field=name, expected="an s3:// URI")


def _package(pipeline: Callable, folder: str) -> str:
    """Compile ``pipeline`` into ``folder`` (the image it runs is the one this process declares components with)."""
    from shopfloor.pipelines.compile import compile_pipeline

    path = Path(folder, "pipeline.yaml")
    path.write_bytes(compile_pipeline(pipeline))
    return str(path)


def _run_url(connection: KfpConnection, run_id: str) -> str:
    """The dashboard's page of a run."""
    return f"{connection.host}/#/runs/details/{run_id}"


def scenario_arguments(
    scenario: str,
    config: ScenarioConfig | str | os.PathLike | None = None,
    data: str | None = None,
    model_store_uri: str | None = None,
) -> dict[str, Any]:
    """The typed arguments of a scenario's pipeline for a config (file, object or defaults), checked for a cluster."""
    from shopfloor.pipelines.scenarios import SCENARIOS

    if scenario not in SCENARIOS:
        raise ConfigError("scenario", f"unknown scenario {scenario!r}", expected=", ".join(sorted(SCENARIOS)))
    resolved = _scenario_config(scenario, config, data)
    arguments = SCENARIOS[scenario].arguments(resolved, model_store_uri)
    _require_s3(arguments, str(config or f"{scenario} defaults"))
    return arguments


def submit(
    scenario: str,
    config: ScenarioConfig | str | os.PathLike | None = None,
    *,
    data: str | None = None,
    model_store_uri: str | None = None,
    host: str | None = None,
    namespace: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    enable_caching: bool | None = None,
    run_name: str | None = None,
) -> SubmittedRun:
    """Start one run of a scenario's training pipeline on the cluster; returns at once (``wait`` follows it).

    ``enable_caching`` None keeps each task's compiled caching (``pipelines/caching.py``); False turns it off.
    """
    from shopfloor.pipelines.scenarios import SCENARIOS

    arguments = scenario_arguments(scenario, config, data, model_store_uri)
    connection = resolve_connection(host, namespace)
    client = kfp_client(connection)
    with tempfile.TemporaryDirectory() as folder:
        started = client.create_run_from_pipeline_package(
            _package(SCENARIOS[scenario].pipeline, folder),
            arguments=arguments,
            run_name=run_name or f"{scenario}-{arguments['model_name']}",
            experiment_name=experiment,
            namespace=connection.namespace,
            enable_caching=enable_caching,
        )
    return SubmittedRun(started.run_id, _run_url(connection, started.run_id), experiment, connection)


def wait(run: SubmittedRun, timeout_s: float = 4 * 3600, poll_s: float = 10.0) -> FinishedRun:
    """Block until the run ends (or ``timeout_s`` passes: then a one-line error), and say how it ended."""
    client = kfp_client(run.connection)
    try:
        finished = client.wait_for_run_completion(run.run_id, timeout=timeout_s, sleep_duration=poll_s)
    except TimeoutError:
        raise ShopfloorError(
            f"run {run.run_id}", f"still running after {timeout_s:.0f} s", expected="a longer --timeout"
        ) from None
    return FinishedRun(run.run_id, str(finished.state), run.url)


def _monitoring_arguments(training_arguments: dict, scenario: str, namespace: str) -> dict[str, Any]:
    """The monitoring pipeline's arguments: the retrain it starts is ``scenario`` with ``training_arguments``."""
    from shopfloor.pipelines.predictive_maintenance import DEFAULT_MODEL_STORE

    return {
        "training_arguments": training_arguments,
        "model_name": training_arguments["model_name"],
        "model_store_uri": training_arguments.get("model_store_uri", DEFAULT_MODEL_STORE),
        "training_pipeline": scenario,
        "namespace": namespace,
    }


def schedule(
    pipeline: str,
    cron: str,
    config: ScenarioConfig | str | os.PathLike | None = None,
    *,
    scenario: str = "predictive-maintenance",
    data: str | None = None,
    model_store_uri: str | None = None,
    host: str | None = None,
    namespace: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    service_account: str = "shopfloor-retrainer",
    name: str | None = None,
    enable_caching: bool | None = None,
) -> ScheduledRun:
    """Create a RecurringRun of a scenario's pipeline, or of the monitoring loop over ``scenario``'s model.

    ``cron`` has KFP's six fields (seconds first), e.g. ``0 0 * * * *`` hourly; one run at a time, no catch-up.
    The monitoring pipeline runs as ``service_account`` (``infra/kfp/retrain-rbac.yaml``); the retrains it starts
    use ``config``'s training arguments.
    """
    from shopfloor.pipelines.monitoring import monitoring
    from shopfloor.pipelines.scenarios import SCENARIOS

    if len(cron.split()) != 6:
        raise ConfigError(
            "schedule",
            f"cron {cron!r} has {len(cron.split())} fields",
            field="cron",
            expected="six fields, seconds first (KFP), e.g. '0 0 * * * *' for hourly",
        )
    connection = resolve_connection(host, namespace)
    training = scenario_arguments(pipeline if pipeline != MONITORING else scenario, config, data, model_store_uri)
    if pipeline == MONITORING:
        target, arguments = monitoring, _monitoring_arguments(training, scenario, connection.namespace)
    else:
        target, arguments = SCENARIOS[pipeline].pipeline, training
    client = kfp_client(connection)
    experiment_id = client.create_experiment(experiment, namespace=connection.namespace).experiment_id
    job_name = name or f"{training['model_name']}-{pipeline}"
    with tempfile.TemporaryDirectory() as folder:
        created = client.create_recurring_run(
            experiment_id=experiment_id,
            job_name=job_name,
            cron_expression=cron,
            max_concurrency=1,
            no_catchup=True,
            params=arguments,
            pipeline_package_path=_package(target, folder),
            enable_caching=enable_caching,
            service_account=service_account,
        )
    return ScheduledRun(created.recurring_run_id, job_name, cron)


def run_results(model_name: str, model_store_uri: str) -> PublishedResults:
    """The version in production of ``model_name``: its gate, test metrics, and where its documents are."""
    published = ModelStore(model_store_uri).require_latest(model_name)
    blessing = read_json(join_uri(published.uri, "blessing.json"))
    links = {
        "model_card": join_uri(published.uri, "MODEL_CARD.md"),
        "blessing": join_uri(published.uri, "blessing.json"),
        "model": join_uri(published.uri, "model"),
    }
    metrics = {name: float(value) for name, value in blessing.get("metrics", {}).items()}
    return PublishedResults(model_name, published.version, bool(blessing.get("blessed")), metrics, links)
