"""The ``shopfloor`` command line: run a scenario on one machine, compile pipelines, make demo data.

Exit codes: 0 success; 1 bad input or a failed step (one line on stderr naming file, field and expectation);
2 bad command line; 3 the run finished but the model failed the quality gate (nothing was published).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from components.common.config import load_config
from components.common.errors import ShopfloorError
from components.common.storage import join_uri, read_json

__all__ = ["main"]

EXIT_ERROR = 1
EXIT_GATE_FAILED = 3


def _git_commit() -> str:
    """The source checkout's commit, recorded in model cards; empty outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _data_base(args: argparse.Namespace, scenario, work_dir: Path) -> str:  # noqa: ANN001
    """Folder that relative data paths resolve against: --data, else the config's folder, else demo data."""
    if args.data:
        if not str(args.data).startswith("s3://") and not Path(args.data).is_dir():
            raise ShopfloorError(
                str(args.data),
                "data folder not found",
                field="--data",
                expected="a folder (or s3:// prefix) holding the files the config names",
            )
        return str(args.data)
    if args.config:
        return str(Path(args.config).resolve().parent)
    demo = work_dir / "demo-data" / scenario.name
    if not demo.is_dir():
        print(f"Generating demo data into {demo}", file=sys.stderr)
        scenario.write_demo_data(demo)
    return str(demo)


def _command_run(args: argparse.Namespace) -> int:
    """Run a scenario pipeline end to end on the local runner and say where its outputs are."""
    from pipelines.local_runner import run_locally
    from pipelines.scenarios import SCENARIOS

    scenario = SCENARIOS[args.scenario]
    work_dir = Path(args.work_dir).resolve()
    config = load_config(args.config).resolve_data(_data_base(args, scenario, work_dir))
    os.environ.setdefault("SHOPFLOOR_GIT_COMMIT", _git_commit())
    store = args.model_store or str(work_dir / "model-store")
    serving_dir = work_dir / "serving"
    local_deploy = {
        "target": "local",
        "local_state_dir": str(serving_dir),
        "payload_log_uri": config.deploy.payload_log_uri or str(work_dir / "payload-logs"),
    }
    (work_dir / "hpo").mkdir(parents=True, exist_ok=True)
    local_hpo = {
        "storage": config.hpo.storage
        or os.environ.get("SHOPFLOOR_OPTUNA_STORAGE")
        or f"sqlite:///{work_dir / 'hpo' / 'studies.db'}"
    }
    if args.no_hpo:
        local_hpo["enabled"] = False
    config = config.model_copy(
        update={"deploy": config.deploy.model_copy(update=local_deploy), "hpo": config.hpo.model_copy(update=local_hpo)}
    )
    print(f"Running {scenario.name} on the KFP local runner (work dir {work_dir})", file=sys.stderr)
    run = run_locally(scenario.pipeline, scenario.arguments(config, model_store_uri=store), work_dir)
    evaluate_dir = Path(run.outputs["report"]).parent
    blessing = read_json(evaluate_dir / "blessing")
    print(f"\nRun {run.name} finished in {run.seconds:.1f} s")
    for check in blessing["gate"]["checks"]:
        verdict = "pass" if check["passed"] else "FAIL"
        print(f"  gate {check['metric']}: {check['value']:.4g} {check['op']} {check['threshold']}  {verdict}")
    print(f"  report (HTML): {run.outputs['report']}")
    print(f"  model card:    {run.outputs['model_card']}")
    print(f"  explanations:  {run.outputs['explanation']}")
    print(f"  search report: {run.outputs['search_report']}")
    print(f"  model:         {run.outputs['model']}")
    print(f"  log:           {run.log}")
    if not blessing["blessed"]:
        print("Quality gate FAILED: the model was not published.")
        return EXIT_GATE_FAILED
    latest = read_json(join_uri(store, config.model_name, "latest.json"))
    print(f"  published:     {latest['uri']}")
    _print_endpoint(serving_dir, config.model_name, Path(run.outputs["model"]).parents[1] / "label" / "windows")
    return 0


def _print_endpoint(serving_dir: Path, model_name: str, windows_dir: Path) -> None:
    """Say where the model is served, with ready-to-paste curl commands on a real held-out window."""
    from components.deploy.local_target import running_server
    from components.label.labeling import load_windows
    from serving.examples import write_example_requests

    state = running_server(serving_dir, model_name)
    if state is None:
        return
    requests = write_example_requests(load_windows(str(windows_dir)), serving_dir / "requests" / model_name)
    url = state["url"]
    print(f"\nServing {model_name} {state['model_version']} at {url} (stop: shopfloor stop {model_name})")
    json_header = "-H 'content-type: application/json'"
    print(f"  V1: curl -s {json_header} -d @{requests['v1']} {url}/v1/models/{model_name}:predict")
    print(f"  V2: curl -s {json_header} -d @{requests['v2']} {url}/v2/models/{model_name}/infer")
    print(f"  explain: curl -s {json_header} -d @{requests['v1']} {url}/v1/models/{model_name}:explain")


def _command_compile(args: argparse.Namespace) -> int:
    """Write (or with --check, verify) the compiled YAML of every scenario."""
    from pipelines.compile import compile_all, stale_files

    output_dir = Path(args.output_dir)
    if args.check:
        stale = stale_files(output_dir)
        for path in stale:
            print(f"{path}: out of date; run 'shopfloor compile'", file=sys.stderr)
        return EXIT_ERROR if stale else 0
    for path in compile_all(output_dir):
        print(path)
    return 0


def _command_demo_data(args: argparse.Namespace) -> int:
    """Write a scenario's demo data set."""
    from pipelines.demo.plant import PlantDataSpec, write_plant_data

    try:
        spec = PlantDataSpec(seed=args.seed, sites=args.sites, assets_per_site=args.assets_per_site, days=args.days)
    except ValueError as exc:
        raise ShopfloorError("demo-data", str(exc)) from None
    for name, path in write_plant_data(Path(args.output), spec).items():
        print(f"{name}: {path}")
    return 0


def _command_validate(args: argparse.Namespace) -> int:
    """Check a config and its data without running anything."""
    from components.ingest.ingest import ingest
    from pipelines.scenarios import SCENARIOS

    scenario = SCENARIOS[args.scenario]
    config = load_config(args.config).resolve_data(_data_base(args, scenario, Path(args.work_dir).resolve()))
    result = ingest(config.data.sensors, config.data.events, config.data)
    print(
        f"ok: {len(result.sensors)} readings of {result.profile['assets']} assets, features "
        f"{', '.join(result.features)}; {len(result.events)} events"
    )
    return 0


def _command_serve(args: argparse.Namespace) -> int:
    """Serve a published model (path or s3://) in the foreground until Ctrl-C."""
    from serving.server import main as serve

    argv = [
        "--model-uri",
        args.model_uri,
        "--model-name",
        args.name,
        "--host",
        args.host,
        "--http-port",
        str(args.port),
    ]
    if args.payload_log:
        argv += ["--payload-log-uri", args.payload_log]
    return serve(argv)


def _command_stop(args: argparse.Namespace) -> int:
    """Stop the model server a local run started."""
    from components.deploy.local_target import stop_server

    stopped = stop_server(Path(args.work_dir).resolve() / "serving", args.name)
    print(f"stopped {args.name}" if stopped else f"{args.name} was not running", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    from pipelines.compile import COMPILED_DIR
    from pipelines.scenarios import SCENARIOS

    parser = argparse.ArgumentParser(prog="shopfloor", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def data_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("scenario", choices=sorted(SCENARIOS))
        command.add_argument(
            "--data",
            help="folder or s3:// prefix the config's data paths are relative to "
            "(default: the config's folder, or generated demo data)",
        )
        command.add_argument("--config", help="scenario config YAML (default: built-in defaults)")
        command.add_argument("--work-dir", default="shopfloor-runs", help="pipeline root, model store and logs")

    run = commands.add_parser("run", help="run a scenario pipeline on the KFP local runner")
    data_options(run)
    run.add_argument(
        "--model-store",
        help="where blessed models are published, a folder or s3:// prefix (default: <work-dir>/model-store)",
    )
    run.add_argument("--no-hpo", action="store_true", help="skip the hyperparameter search (quick runs)")
    run.set_defaults(handler=_command_run)

    validate = commands.add_parser("validate", help="check a config and its data, run nothing")
    data_options(validate)
    validate.set_defaults(handler=_command_validate)

    serve = commands.add_parser("serve", help="serve a published model on this machine (KServe V1 and V2)")
    serve.add_argument("model_uri", help="published model version (or model folder), a path or s3:// URI")
    serve.add_argument("--name", default="predictive-maintenance", help="model name in the URLs")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--payload-log", help="folder or s3:// prefix for request/response logs")
    serve.set_defaults(handler=_command_serve)

    stop = commands.add_parser("stop", help="stop the model server a local run started")
    stop.add_argument("name", nargs="?", default="predictive-maintenance")
    stop.add_argument("--work-dir", default="shopfloor-runs")
    stop.set_defaults(handler=_command_stop)

    compile_ = commands.add_parser("compile", help="compile every scenario pipeline to YAML")
    compile_.add_argument("--output-dir", default=str(COMPILED_DIR))
    compile_.add_argument("--check", action="store_true", help="fail if the YAML on disk is out of date")
    compile_.set_defaults(handler=_command_compile)

    demo = commands.add_parser("demo-data", help="write the predictive-maintenance demo data set")
    demo.add_argument("output", help="folder to write sensors.csv and events.csv into")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--sites", type=int, default=3)
    demo.add_argument("--assets-per-site", type=int, default=8)
    demo.add_argument("--days", type=int, default=90)
    demo.set_defaults(handler=_command_demo_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``shopfloor`` console script."""
    args = _parser().parse_args(argv)
    try:
        return args.handler(args)
    except ShopfloorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
