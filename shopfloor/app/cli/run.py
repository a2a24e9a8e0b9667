"""``shopfloor run``: a scenario pipeline end to end on the KFP local runner, then where its outputs are."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from shopfloor.app.cli.shared import (
    DEFAULT_WORK_DIR,
    EXIT_GATE_FAILED,
    Subcommands,
    add_data_options,
    data_base,
    model_store_uri,
)
from shopfloor.common.storage import read_json
from shopfloor.contracts.model_store import ModelStore
from shopfloor.families.scenarios import load_config

if TYPE_CHECKING:
    from shopfloor.families.scenarios import ScenarioConfig

__all__ = ["RunRequest", "add_parsers", "run"]


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """What `shopfloor run` needs: the scenario, its config and data, and the folders it writes into.

    The fields keep the names (and order) of the retrain arguments the monitor saves, so saved files stay readable.
    """

    scenario: str
    data: str | None = None
    config: str | None = None
    work_dir: Path = Path(DEFAULT_WORK_DIR)
    model_store: str | None = None
    no_hpo: bool = False
    sites: tuple[str, ...] = ()  # a retrain of named sites: only their per-site models are fitted again

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunRequest:
        """The request a parsed `shopfloor run` command line asks for."""
        return cls(
            scenario=args.scenario,
            data=args.data,
            config=args.config,
            work_dir=Path(args.work_dir),
            model_store=args.model_store,
            no_hpo=args.no_hpo,
        )

    def to_json(self) -> dict:
        """The request as JSON values, saved by the monitor so a later approval can start the same run."""
        return {**dataclasses.asdict(self), "work_dir": str(self.work_dir)}

    @classmethod
    def from_json(cls, saved: dict) -> RunRequest:
        """The request `to_json` saved (the work dir comes back as a path)."""
        return cls(**{**saved, "work_dir": Path(saved["work_dir"]), "sites": tuple(saved.get("sites", ()))})


def add_parsers(commands: Subcommands) -> None:
    """Add `shopfloor run` to the command line."""
    run_ = commands.add_parser("run", help="run a scenario pipeline on the KFP local runner")
    add_data_options(run_)
    run_.add_argument(
        "--model-store",
        help="where blessed models are published, a folder or s3:// prefix (default: <work-dir>/model-store)",
    )
    run_.add_argument("--no-hpo", action="store_true", help="skip the hyperparameter search (quick runs)")
    run_.set_defaults(make_request=RunRequest.from_args, execute=run)


def git_commit() -> str:
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


def local_config(config: ScenarioConfig, work_dir: Path, no_hpo: bool) -> ScenarioConfig:
    """The config with this machine's deploy target and search storage: a local run serves and searches here."""
    local_deploy = {
        "target": "local",
        "local_state_dir": str(work_dir / "serving"),
        "payload_log_uri": config.deploy.payload_log_uri or str(work_dir / "payload-logs"),
    }
    config = config.model_copy(update={"deploy": config.deploy.model_copy(update=local_deploy)})
    if hasattr(config, "hpo"):  # scenarios with a hyperparameter search keep its study on this machine
        (work_dir / "hpo").mkdir(parents=True, exist_ok=True)
        local_hpo: dict[str, object] = {
            "storage": config.hpo.storage
            or os.environ.get("SHOPFLOOR_OPTUNA_STORAGE")
            or f"sqlite:///{work_dir / 'hpo' / 'studies.db'}"
        }
        if no_hpo:
            local_hpo["enabled"] = False
        config = config.model_copy(update={"hpo": config.hpo.model_copy(update=local_hpo)})
    return config


def sites_retrain_config(config: ScenarioConfig, sites: tuple[str, ...], store: str) -> ScenarioConfig:
    """The config of a retrain the monitor started for named sites: only their site models are fitted again.

    The other sites keep the published version's models (``fleet.retrain_only`` / ``keep_models_from``). Under the
    global strategy there are no site models: the fleet retrains as a whole, and this says so.
    """
    from shopfloor.common.storage import join_uri
    from shopfloor.families.predictive_maintenance.strategies import sites_retrain

    fleet = getattr(config, "fleet", None)
    latest = ModelStore(store).latest(config.model_name) if sites and fleet is not None else None
    retrain = sites_retrain(fleet, list(sites), join_uri(latest.uri, "model")) if latest and fleet else None
    if retrain is None or latest is None:
        if sites:
            print(f"retrain for {', '.join(sites)}: no site models to keep, every site retrains", file=sys.stderr)
        return config
    print(f"retrain for {', '.join(sites)}: the other sites keep the models of {latest.version}", file=sys.stderr)
    return config.model_copy(update={"fleet": retrain})


def run(request: RunRequest) -> int:
    """Run a scenario pipeline end to end on the local runner and say where its outputs are (one run per work dir)."""
    from shopfloor.app.work_dir import exclusive_work_dir

    work_dir = request.work_dir.resolve()
    config = load_config(request.config, request.scenario)  # a config typo is reported before any data is read
    with exclusive_work_dir(work_dir, f"run {request.scenario}"):
        return _run_holding_the_work_dir(request, work_dir, config)


def _run_holding_the_work_dir(request: RunRequest, work_dir: Path, config: ScenarioConfig) -> int:
    """The run itself, once the work dir is this run's."""
    from shopfloor.app.local_runner import run_locally
    from shopfloor.pipelines.scenarios import SCENARIOS

    scenario = SCENARIOS[request.scenario]
    config = config.resolve_data(data_base(scenario, request.data, request.config, work_dir))
    os.environ.setdefault("SHOPFLOOR_GIT_COMMIT", git_commit())
    store = model_store_uri(work_dir, request.model_store)
    config = local_config(config, work_dir, request.no_hpo)
    config = sites_retrain_config(config, request.sites, store)
    print(f"Running {scenario.name} on the KFP local runner (work dir {work_dir})", file=sys.stderr)
    pipeline = scenario.pipeline_for(config)  # a search that is off costs no steps
    pipeline_run = run_locally(pipeline, scenario.arguments(config, model_store_uri=store), work_dir)
    evaluate_dir = Path(pipeline_run.outputs["report"]).parent
    blessing = read_json(evaluate_dir / "blessing")
    print(f"\nRun {pipeline_run.name} finished in {pipeline_run.seconds:.1f} s")
    print(f"  metrics: {headline(blessing['metrics'], Path(pipeline_run.outputs['model']))}")
    for check in blessing["gate"]["checks"]:
        verdict = "pass" if check["passed"] else "FAIL"
        print(f"  gate {check['metric']}: {check['value']:.4g} {check['op']} {check['threshold']}  {verdict}")
    titles = {
        "report": ("report (HTML)", ".html"),
        "model_card": ("model card", ".md"),
        "explanation": ("explanations", ".html"),
        "search_report": ("search report", ".html"),
        "model": ("model", ""),
    }
    for output, (title, suffix) in titles.items():
        if output in pipeline_run.outputs:
            print(f"  {title + ':':<15}{openable(Path(pipeline_run.outputs[output]), suffix)}")
    print(f"  log:           {pipeline_run.log}")
    if not blessing["blessed"]:
        if blessing["gate"].get("reason"):  # e.g. the sites below their own minimums, by name
            print(f"  why: {blessing['gate']['reason']}")
        print("Quality gate FAILED: the model was not published.")
        return EXIT_GATE_FAILED
    latest = ModelStore(store).require_latest(config.model_name)
    print(f"  published:     {latest.uri}")
    run_root = Path(pipeline_run.outputs["model"]).parents[1]
    print_endpoint(work_dir / "serving", config.model_name, run_root, config)
    return 0


def headline(metrics: dict[str, float], model_dir: Path) -> str:
    """The test metrics the model's family puts first (``ModelFamily.headline_metrics``), as one line."""
    from shopfloor.contracts.model_artifact import load_model_info
    from shopfloor.families.registry import family

    names = family(load_model_info(model_dir)["model_type"]).headline_metrics
    return ", ".join(f"{name} {metrics[name]:.4g}" for name in names if name in metrics) or "none"


def openable(path: Path, suffix: str) -> Path:
    """An artifact under a name a browser or editor opens by its suffix (a hard link beside KFP's file)."""
    if not suffix or not path.is_file():
        return path
    named = path.with_name(path.name + suffix)
    if not named.exists():
        try:
            os.link(path, named)
        except OSError:  # a file system without hard links: print KFP's own path
            return path
    return named


def example_requests(run_root: Path, prefix: Path, config: ScenarioConfig) -> dict[str, Path]:
    """Request bodies from the run's own data: a positive and a quiet window, or a defective and a good part."""
    import pandas as pd

    from shopfloor.common.storage import read_bytes
    from shopfloor.contracts.windows import load_windows
    from shopfloor.families.visual_inspection.config import VisualInspectionConfig
    from shopfloor.serving.examples import write_example_requests, write_image_requests

    windows = next(run_root.glob("label*/windows"), None)
    if windows is not None or not isinstance(config, VisualInspectionConfig):
        return write_example_requests(load_windows(str(windows)), prefix)
    frame = pd.read_parquet(run_root / "label-images" / "labelled").sort_values("path")
    labelled = frame[frame["label"].notna()]
    ok = labelled["label"] == config.data.ok_class
    picks = [*labelled[~ok]["uri"].head(1), *labelled[ok]["uri"].head(1)]
    return write_image_requests([read_bytes(uri) for uri in picks], prefix)


def print_endpoint(serving_dir: Path, model_name: str, run_root: Path, config: ScenarioConfig) -> None:
    """Say where the model is served, with ready-to-paste curl commands on the run's own held-out data."""
    from shopfloor.components.deploy.local_target import OPERATOR_TOKEN_FILE, running_server

    state = running_server(serving_dir, model_name)
    if state is None:
        return
    requests = example_requests(run_root, serving_dir / "requests" / model_name, config)
    url = state["url"]
    print(f"\nServing {model_name} {state['model_version']} at {url} (stop: shopfloor stop {model_name})")
    json_header = "-H 'content-type: application/json'"
    print(f"  V1: curl -s {json_header} -d @{requests['v1']} {url}/v1/models/{model_name}:predict")
    print(f"  V2: curl -s {json_header} -d @{requests['v2']} {url}/v2/models/{model_name}/infer")
    print(f"  explain: curl -s {json_header} -d @{requests['v1']} {url}/v1/models/{model_name}:explain")
    from shopfloor.components.deploy.deploy import served_sites

    for site in served_sites(state["model_uri"]):  # a fleet: each site's own model (or the global one) by name
        print(f"  {site}: curl -s {json_header} -d @{requests['v1']} {url}/v1/models/{model_name}-{site}:predict")
    if config.scenario == "visual-inspection":
        token = f'-H "authorization: Bearer $(cat {serving_dir.resolve() / OPERATOR_TOKEN_FILE})"'
        print(
            f'  feedback: curl -s {json_header} {token} -d \'{{"verdict": "right", "image_sha256": "..."}}\' '
            f"{url}/v1/models/{model_name}/feedback"
        )
