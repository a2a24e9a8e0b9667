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

from shopfloor.common.config import load_config
from shopfloor.common.errors import ShopfloorError
from shopfloor.common.storage import join_uri, read_json

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
    from shopfloor.app.local_runner import run_locally
    from shopfloor.pipelines.scenarios import SCENARIOS

    scenario = SCENARIOS[args.scenario]
    work_dir = Path(args.work_dir).resolve()
    config = load_config(args.config, scenario.name).resolve_data(_data_base(args, scenario, work_dir))
    os.environ.setdefault("SHOPFLOOR_GIT_COMMIT", _git_commit())
    store = args.model_store or str(work_dir / "model-store")
    serving_dir = work_dir / "serving"
    local_deploy = {
        "target": "local",
        "local_state_dir": str(serving_dir),
        "payload_log_uri": config.deploy.payload_log_uri or str(work_dir / "payload-logs"),
    }
    config = config.model_copy(update={"deploy": config.deploy.model_copy(update=local_deploy)})
    if hasattr(config, "hpo"):  # scenarios with a hyperparameter search keep its study on this machine
        (work_dir / "hpo").mkdir(parents=True, exist_ok=True)
        local_hpo = {
            "storage": config.hpo.storage
            or os.environ.get("SHOPFLOOR_OPTUNA_STORAGE")
            or f"sqlite:///{work_dir / 'hpo' / 'studies.db'}"
        }
        if args.no_hpo:
            local_hpo["enabled"] = False
        config = config.model_copy(update={"hpo": config.hpo.model_copy(update=local_hpo)})
    print(f"Running {scenario.name} on the KFP local runner (work dir {work_dir})", file=sys.stderr)
    run = run_locally(scenario.pipeline, scenario.arguments(config, model_store_uri=store), work_dir)
    evaluate_dir = Path(run.outputs["report"]).parent
    blessing = read_json(evaluate_dir / "blessing")
    print(f"\nRun {run.name} finished in {run.seconds:.1f} s")
    for check in blessing["gate"]["checks"]:
        verdict = "pass" if check["passed"] else "FAIL"
        print(f"  gate {check['metric']}: {check['value']:.4g} {check['op']} {check['threshold']}  {verdict}")
    titles = {
        "report": "report (HTML)",
        "model_card": "model card",
        "explanation": "explanations",
        "search_report": "search report",
        "model": "model",
    }
    for output, title in titles.items():
        if output in run.outputs:
            print(f"  {title + ':':<15}{run.outputs[output]}")
    print(f"  log:           {run.log}")
    if not blessing["blessed"]:
        print("Quality gate FAILED: the model was not published.")
        return EXIT_GATE_FAILED
    latest = read_json(join_uri(store, config.model_name, "latest.json"))
    print(f"  published:     {latest['uri']}")
    _print_endpoint(serving_dir, config.model_name, Path(run.outputs["model"]).parents[1], config)
    return 0


def _example_requests(run_root: Path, prefix: Path, config) -> dict[str, Path]:  # noqa: ANN001
    """Request bodies from the run's own data: a positive and a quiet window, or a defective and a good part."""
    import pandas as pd

    from shopfloor.common.storage import read_bytes
    from shopfloor.components.label.labeling import load_windows
    from shopfloor.serving.examples import write_example_requests, write_image_requests

    windows = next(run_root.glob("label*/windows"), None)
    if windows is not None:
        return write_example_requests(load_windows(str(windows)), prefix)
    frame = pd.read_parquet(run_root / "label-images" / "labelled").sort_values("path")
    labelled = frame[frame["label"].notna()]
    ok = labelled["label"] == config.data.ok_class
    picks = [*labelled[~ok]["uri"].head(1), *labelled[ok]["uri"].head(1)]
    return write_image_requests([read_bytes(uri) for uri in picks], prefix)


def _print_endpoint(serving_dir: Path, model_name: str, run_root: Path, config) -> None:  # noqa: ANN001
    """Say where the model is served, with ready-to-paste curl commands on the run's own held-out data."""
    from shopfloor.components.deploy.local_target import running_server

    state = running_server(serving_dir, model_name)
    if state is None:
        return
    requests = _example_requests(run_root, serving_dir / "requests" / model_name, config)
    url = state["url"]
    print(f"\nServing {model_name} {state['model_version']} at {url} (stop: shopfloor stop {model_name})")
    json_header = "-H 'content-type: application/json'"
    print(f"  V1: curl -s {json_header} -d @{requests['v1']} {url}/v1/models/{model_name}:predict")
    print(f"  V2: curl -s {json_header} -d @{requests['v2']} {url}/v2/models/{model_name}/infer")
    print(f"  explain: curl -s {json_header} -d @{requests['v1']} {url}/v1/models/{model_name}:explain")


def _command_feedback(args: argparse.Namespace) -> int:
    """Record an operator's verdict on an explained image, in the model store the next run reads."""
    from shopfloor.common.model_artifact import load_model_info
    from shopfloor.common.storage import read_bytes, sha256_hex
    from shopfloor.components.label.feedback import new_feedback, record_feedback

    store = args.model_store or str(Path(args.work_dir).resolve() / "model-store")
    latest = read_json(join_uri(store, args.model, "latest.json"))
    classes = load_model_info(latest["uri"])["classes"]
    image = read_bytes(args.image)
    record = new_feedback(
        args.model,
        latest["version"],
        sha256_hex(image),
        args.verdict,
        args.by,
        classes,
        corrected_label=args.label,
        note=args.note or "",
        path=Path(args.image).name,
    )
    print(f"{record.id}: {record.verdict}" + (f" -> {record.corrected_label}" if record.corrected_label else ""))
    print(f"  stored: {record_feedback(store, record)} (the next run's labeling and explain report use it)")
    return 0


def _command_compile(args: argparse.Namespace) -> int:
    """Write (or with --check, verify) the compiled YAML of every scenario."""
    from shopfloor.pipelines.compile import compile_all, stale_files

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
    from shopfloor.demo.plant import PlantDataSpec, write_plant_data

    try:
        spec = PlantDataSpec(seed=args.seed, sites=args.sites, assets_per_site=args.assets_per_site, days=args.days)
    except ValueError as exc:
        raise ShopfloorError("demo-data", str(exc)) from None
    for name, path in write_plant_data(Path(args.output), spec).items():
        print(f"{name}: {path}")
    return 0


def _command_validate(args: argparse.Namespace) -> int:
    """Check a config and its data without running anything."""
    from shopfloor.components.ingest.ingest import ingest
    from shopfloor.pipelines.scenarios import SCENARIOS

    scenario = SCENARIOS[args.scenario]
    config = load_config(args.config, scenario.name).resolve_data(
        _data_base(args, scenario, Path(args.work_dir).resolve())
    )
    if scenario.name == "visual-inspection":
        from shopfloor.components.ingest.images import ingest_images

        found = ingest_images(config.data_root, config.data)
        print(f"ok: {len(found.manifest)} images, {found.profile['class_counts']}; {len(found.skipped)} skipped")
        return 0
    result = ingest(config.data.sensors, config.data.events, config.data)
    print(
        f"ok: {len(result.sensors)} readings of {result.profile['assets']} assets, features "
        f"{', '.join(result.features)}; {len(result.events)} events"
    )
    return 0


def _retrain_arguments(args: argparse.Namespace) -> argparse.Namespace:
    """The `shopfloor run` arguments a retrain uses: the monitor's data, config and folders."""
    return argparse.Namespace(
        scenario=args.scenario,
        data=args.data,
        config=args.config,
        work_dir=args.work_dir,
        model_store=args.model_store,
        no_hpo=args.no_hpo,
    )


def _monitor_paths(args: argparse.Namespace, model_name: str) -> tuple[str, str, str]:
    """Model store, payload logs and monitor state of a local setup (the folders `shopfloor run` uses)."""
    work_dir = Path(args.work_dir).resolve()
    store = args.model_store or str(work_dir / "model-store")
    logs = args.payload_log or str(work_dir / "payload-logs")
    return store, logs, getattr(args, "state_uri", None) or str(work_dir / "monitor")


def _command_monitor(args: argparse.Namespace) -> int:
    """Compare the served model's recent payloads with its training data and act on the retrain policy."""
    import datetime as dt

    from shopfloor.common.storage import atomic_write_bytes, write_json
    from shopfloor.components.monitor.monitor import run_monitoring
    from shopfloor.components.monitor.policy import RetrainState

    config = load_config(args.config, args.scenario)
    store, logs, state_root = _monitor_paths(args, config.model_name)
    run = run_monitoring(
        store, logs, state_root, config.model_name, config.monitor, args.days, args.labels or "", args.batch or ""
    )
    decision = run.decision
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    report = Path(state_root, config.model_name, "reports", f"{stamp}.html")
    atomic_write_bytes(report, run.report_html.encode())
    write_json(join_uri(state_root, config.model_name, "retrain-arguments.json"), vars(_retrain_arguments(args)))
    print(f"{config.model_name} {run.reference.model_version}: {run.result.summary}")
    print(f"decision: {decision.action} - {decision.reason}")
    print(f"report (HTML): {report}")
    if decision.action == "request-approval":
        print(
            f"approve: shopfloor approve {decision.request_id} --by NAME --note WHY   "
            f"(or: shopfloor reject {decision.request_id} --by NAME --note WHY)"
        )
    if decision.action == "retrain":
        print("retraining now (policy: auto)")
        RetrainState(state_root, config.model_name).record_run(decision.request_id)
        return _command_run(_retrain_arguments(args))
    return 0


def _command_decide(args: argparse.Namespace) -> int:
    """Approve (and start) or reject a pending retrain request, recording who and why."""
    from shopfloor.components.monitor.policy import RetrainState, can_start

    config = load_config(args.config)
    _, _, state_root = _monitor_paths(args, config.model_name)
    state = RetrainState(state_root, config.model_name)
    request = state.decide(args.request_id, approve=args.command == "approve", by=args.by, note=args.note)
    print(f"{request.id}: {request.status} by {request.decided_by} ({request.note})")
    if args.command == "reject":
        return 0
    if args.state_uri:  # the cluster's monitor state: its next scheduled run starts the retrain through KFP
        print("the next monitoring run starts the retrain (cooldown and runs-per-day limits apply)")
        return 0
    allowed, why = can_start(config.monitor.retrain, state)
    if not allowed:
        print(f"not starting yet: {why}")
        return 0
    saved = read_json(join_uri(state_root, config.model_name, "retrain-arguments.json"))
    state.record_run(request.id)
    return _command_run(argparse.Namespace(**saved))


def _command_demo_drift(args: argparse.Namespace) -> int:
    """Serve a model, replay an ageing plant against it, detect drift, approve, retrain: on one machine."""
    import time

    import pandas as pd

    from shopfloor.common.model_artifact import load_model_info
    from shopfloor.components.deploy.local_target import running_server
    from shopfloor.components.monitor.policy import RetrainState
    from shopfloor.demo.drift import replay_windows, sensor_windows, write_aged_plant

    work_dir = Path(args.work_dir).resolve()
    base = argparse.Namespace(
        scenario="predictive-maintenance",
        data=None,
        config=None,
        work_dir=str(work_dir),
        model_store=None,
        no_hpo=True,
        payload_log=None,
        days=1,
        labels=None,
        batch=None,
    )
    name = load_config(None).model_name
    if running_server(work_dir / "serving", name) is None:
        print("1/4 training and serving the model on the plant's first months", flush=True)
        if _command_run(base) != 0:
            return EXIT_ERROR
    state = running_server(work_dir / "serving", name)
    print(f"2/4 replaying the plant's next months, with wear injected, against {state['url']}", flush=True)
    aged = write_aged_plant(work_dir / "demo-data" / "aged-plant")
    info = load_model_info(state["model_uri"])
    windows = sensor_windows(pd.read_csv(aged["sensors"]), info["features"], info["window"])
    print(f"    {replay_windows(state['url'], name, windows)} requests answered", flush=True)
    time.sleep(3)  # the server writes payload logs in the background every 2 s
    print("3/4 monitoring", flush=True)
    monitor_args = argparse.Namespace(**{**vars(base), "data": str(aged["sensors"].parent)})
    monitor_args.config = _demo_policy_config(work_dir)
    if _command_monitor(monitor_args) != 0:
        return EXIT_ERROR
    pending = RetrainState(str(work_dir / "monitor"), name).requests("pending")
    if not pending:
        print("no approval request: nothing to approve (see the decision above)")
        return 0
    print(f"4/4 an operator approves {pending[-1].id}; the model is retrained on the aged plant", flush=True)
    decision = argparse.Namespace(
        command="approve",
        request_id=pending[-1].id,
        by="demo-operator",
        note="wear confirmed on site",
        config=monitor_args.config,
        work_dir=str(work_dir),
        model_store=None,
        payload_log=None,
        state_uri=None,
    )
    return _command_decide(decision)


def _demo_policy_config(work_dir: Path) -> str:
    """A config for the demo: approval mode, no cooldown (the demo model was just trained)."""
    from shopfloor.common.storage import atomic_write_bytes

    path = work_dir / "demo-data" / "drift-demo.yaml"
    atomic_write_bytes(path, b"monitor:\n  window_days: 1\n  retrain: {mode: approval, cooldown_hours: 0}\n")
    return str(path)


def _command_serve(args: argparse.Namespace) -> int:
    """Serve a published model (path or s3://) in the foreground until Ctrl-C."""
    from shopfloor.serving.server import main as serve

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
    from shopfloor.components.deploy.local_target import stop_server

    stopped = stop_server(Path(args.work_dir).resolve() / "serving", args.name)
    print(f"stopped {args.name}" if stopped else f"{args.name} was not running", file=sys.stderr)
    return 0


def _parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    from shopfloor.pipelines.compile import COMPILED_DIR
    from shopfloor.pipelines.scenarios import SCENARIOS

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

    monitor = commands.add_parser("monitor", help="check the served model's payloads for drift; apply the policy")
    data_options(monitor)
    monitor.add_argument("--days", type=int, help="days of payload logs (default: the config's monitor.window_days)")
    monitor.add_argument("--payload-log", help="payload log folder or s3:// prefix (default: <work-dir>/payload-logs)")
    monitor.add_argument("--model-store", help="model store (default: <work-dir>/model-store)")
    monitor.add_argument(
        "--batch", help="compare a new data batch (sensor table, CSV/Parquet, path or s3://) instead of payload logs"
    )
    monitor.add_argument(
        "--labels",
        help="what really happened to served windows (CSV/Parquet: request_id, index, label), a path or s3:// URI",
    )
    monitor.add_argument("--no-hpo", action="store_true", help="a retrain skips the hyperparameter search")
    monitor.set_defaults(handler=_command_monitor)

    for verb in ("approve", "reject"):
        decision = commands.add_parser(verb, help=f"{verb} a pending retrain request (recorded with who and why)")
        decision.add_argument("request_id")
        decision.add_argument("--by", required=True, help="who decides")
        decision.add_argument("--note", required=True, help="why (kept with the request)")
        decision.add_argument("--config", help="scenario config (default: built-in defaults)")
        decision.add_argument("--work-dir", default="shopfloor-runs")
        decision.add_argument(
            "--state-uri",
            help="the monitor's state on a cluster (the monitoring pipeline's state_uri, e.g. "
            "s3://mlpipeline/shopfloor/monitor): the decision is recorded there and the next monitoring run acts",
        )
        decision.add_argument("--model-store", help=argparse.SUPPRESS)
        decision.add_argument("--payload-log", help=argparse.SUPPRESS)
        decision.set_defaults(handler=_command_decide)

    feedback = commands.add_parser("feedback", help="mark an image model's explanation as right or wrong")
    feedback.add_argument("image", help="the image file the explanation was about (path or s3://)")
    feedback.add_argument("--verdict", required=True, choices=["right", "wrong-region", "wrong-label"])
    feedback.add_argument("--label", help="the right class (required with --verdict wrong-label)")
    feedback.add_argument("--by", required=True, help="who gives the feedback")
    feedback.add_argument("--note", help="what was wrong (kept with the feedback)")
    feedback.add_argument("--model", default="visual-inspection", help="model name in the store")
    feedback.add_argument("--work-dir", default="shopfloor-runs")
    feedback.add_argument("--model-store", help="model store (default: <work-dir>/model-store)")
    feedback.set_defaults(handler=_command_feedback)

    compile_ = commands.add_parser("compile", help="compile every scenario pipeline to YAML")
    compile_.add_argument("--output-dir", default=str(COMPILED_DIR))
    compile_.add_argument("--check", action="store_true", help="fail if the YAML on disk is out of date")
    compile_.set_defaults(handler=_command_compile)

    drift = commands.add_parser("demo-drift", help="serve, replay an ageing plant, detect drift, approve, retrain")
    drift.add_argument("--work-dir", default="shopfloor-runs")
    drift.set_defaults(handler=_command_demo_drift)

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
