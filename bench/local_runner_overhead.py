"""How much the KFP local runner adds to each step, as a ratio of the step's own compute time.

Runs the predictive-maintenance pipeline on `kfp.local` set up as `shopfloor run` sets it up (deploy target
local, the search's study in a SQLite file under the work dir) and then, in the same process and on the same
data, every step's own ``@dsl.component`` body called directly (``component.python_func``) with artifacts wired
as the pipeline wires them: ingest, label, (with the search on: hpo-setup, hpo-worker x workers, hpo-select), train,
evaluate, explain,
and, when the model is blessed, publish and deploy. Each side has its own model store, serving folder and study,
so neither finds the other's champion or server. Every module the bodies import, and the libraries our modules
import inside functions (TensorFlow, matplotlib, ...), is imported before the in-process side is timed (warm
imports), so its times are the steps' compute; overhead = step wall time on the runner minus the same body
in-process (process start, imports, TensorFlow's per-process start-up, artifact (de)serialization, executor
bookkeeping).

The search is off on both sides by default (as ``shopfloor run --no-hpo``, which runs the pipeline without its
search stage), so the trials' training, whose time depends on pruning and the time budget rather than on the
runner, does not dilute the ratio.
``--search`` turns it on for both sides (each with its own fresh study).

    python bench/local_runner_overhead.py [--days 90] [--search] [--short]

``--short`` runs a small plant (2 sites x 3 assets, 40 days) and one training epoch: same table, for CI.
"""

import argparse
import ast
import importlib
import inspect
import io
import tempfile
import textwrap
import time
from pathlib import Path

from kfp import dsl

from shopfloor.components._image import IMAGE

TARGET_RATIO = 0.5


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def noop() -> None:
    """A step that does nothing: its wall time is pure runner overhead."""


@dsl.pipeline(name="noop-chain")
def noop_chain():
    """Five no-op steps in sequence."""
    previous = noop()
    for _ in range(4):
        previous = noop().after(previous)


def local_config(config, root: Path, search: bool):
    """The config as ``shopfloor run`` adapts it for this machine: local deploy target, SQLite study.

    ``root`` holds the serving state, payload logs and study of one side of the comparison.
    """
    (root / "hpo").mkdir(parents=True, exist_ok=True)
    deploy = {
        "target": "local",
        "local_state_dir": str(root / "serving"),
        "payload_log_uri": str(root / "payload-logs"),
    }
    hpo = {"storage": f"sqlite:///{root / 'hpo' / 'studies.db'}", "enabled": search}
    return config.model_copy(
        update={
            "deploy": config.deploy.model_copy(update=deploy),
            "hpo": config.hpo.model_copy(update=hpo),
        }
    )


# libraries our modules import inside functions (only where used): the bodies' own imports do not warm them
LAZY_LIBRARIES = ("tensorflow", "keras", "matplotlib.pyplot", "sklearn.metrics", "scipy.stats", "optuna", "PIL.Image")


def warm_imports(components: list) -> None:
    """Import every module the components' bodies import, and the libraries ours import lazily.

    So in-process timings hold no import time: a runner step pays these imports in its fresh process, and that
    cost is part of the overhead being measured.
    """
    for library in LAZY_LIBRARIES:
        importlib.import_module(library)
    for component in components:
        tree = ast.parse(textwrap.dedent(inspect.getsource(component.python_func)))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                importlib.import_module(node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    importlib.import_module(alias.name)


class InProcess:
    """Calls step bodies directly, one output folder per step, and records each call's wall time."""

    def __init__(self, work: Path):
        self.work = work
        self.seconds: dict[str, float] = {}

    def output(self, kind: type, step: str, name: str):
        """An output artifact of ``step`` under the work folder, as the executor hands one to a body."""
        path = self.work / step / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return kind(name=name, uri=str(path), metadata={})

    def call(self, step: str, component, **arguments):
        """Run ``component``'s body with ``arguments``; its time is added to ``step``'s (loop iterations add up)."""
        start = time.perf_counter()
        result = component.python_func(**arguments)
        self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - start
        return result


def in_process_seconds(arguments: dict, work: Path) -> dict[str, float]:
    """Every step's body called in this process, wired as the pipeline wires them: the steps' own compute."""
    from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Markdown, Metrics, Model

    from shopfloor.components.deploy.component import deploy
    from shopfloor.components.evaluate.component import evaluate
    from shopfloor.components.explain.component import explain
    from shopfloor.components.hpo.component import hpo_select, hpo_setup, hpo_worker
    from shopfloor.components.ingest.component import fingerprint_sources, ingest
    from shopfloor.components.label.component import label
    from shopfloor.components.publish.component import publish
    from shopfloor.components.train.component import train

    warm_imports(
        [
            fingerprint_sources,
            ingest,
            label,
            hpo_setup,
            hpo_worker,
            hpo_select,
            train,
            evaluate,
            explain,
            publish,
            deploy,
        ]
    )
    run = InProcess(work)
    a = arguments
    out = run.output
    sensors, events = out(Dataset, "ingest", "sensors"), out(Dataset, "ingest", "events")
    profile = out(Artifact, "ingest", "profile")
    fingerprinted = run.call(
        "fingerprint-sources",
        fingerprint_sources,
        data_uri=a["sensors_uri"],
        other_uri=a["events_uri"],
        more_uris=[],
    )
    run.call(
        "ingest",
        ingest,
        sensors_uri=a["sensors_uri"],
        events_uri=a["events_uri"],
        data_schema=a["data_schema"],
        sensors=sensors,
        events=events,
        profile=profile,
        profile_summary=out(Markdown, "ingest", "profile_summary"),
        sources_fingerprint=fingerprinted,
    )
    windows = out(Dataset, "label", "windows")
    run.call(
        "label",
        label,
        sensors=sensors,
        events=events,
        family="predictive-maintenance",
        data_schema=a["data_schema"],
        labeling=a["labeling"],
        windows=windows,
        class_balance=out(Metrics, "label", "class_balance"),
    )
    searched = {}
    if a["hpo"]["enabled"]:  # the pipeline without its search stage has no search steps (as `shopfloor run`)
        search = {
            "data": windows,
            "hpo": a["hpo"],
            "hyperparameters": a["hyperparameters"],
            "data_schema": a["data_schema"],
            "split": {},
        }
        study = out(Artifact, "hpo-setup", "study")
        run.call("hpo-setup", hpo_setup, **search, study=study)
        for worker in a["hpo_workers"]:
            run.call("hpo-worker", hpo_worker, **search, study=study, worker=worker)
        best = out(Artifact, "hpo-select", "best_hyperparameters")
        run.call(
            "hpo-select",
            hpo_select,
            **search,
            study=study,
            model_name=a["model_name"],
            best_hyperparameters=best,
            search_metrics=out(Metrics, "hpo-select", "search_metrics"),
            report=out(HTML, "hpo-select", "report"),
        )
        searched = {"searched": best}
    model, history = out(Model, "train", "model"), out(Artifact, "train", "history")
    run.call(
        "train",
        train,
        data=windows,
        hyperparameters=a["hyperparameters"],
        **searched,
        family="predictive-maintenance",
        data_schema=a["data_schema"],
        split={},
        gate=a["gate"],
        edge={},
        model=model,
        history=history,
        training_metrics=out(Metrics, "train", "training_metrics"),
    )
    card, blessing = out(Markdown, "evaluate", "model_card"), out(Artifact, "evaluate", "blessing")
    blessed = run.call(
        "evaluate",
        evaluate,
        data=windows,
        model=model,
        history=history,
        profile=profile,
        family="predictive-maintenance",
        model_name=a["model_name"],
        data_schema=a["data_schema"],
        split={},
        gate=a["gate"],
        model_store_uri=a["model_store_uri"],
        metrics=out(Metrics, "evaluate", "metrics"),
        classification_metrics=out(ClassificationMetrics, "evaluate", "classification_metrics"),
        report=out(HTML, "evaluate", "report"),
        summary=out(Markdown, "evaluate", "summary"),
        model_card=card,
        blessing=blessing,
    )
    run.call(
        "explain",
        explain,
        data=windows,
        model=model,
        family="predictive-maintenance",
        model_name=a["model_name"],
        data_schema=a["data_schema"],
        split={},
        gate=a["gate"],
        model_store_uri=a["model_store_uri"],
        report=out(HTML, "explain", "report"),
        summary=out(Markdown, "explain", "summary"),
        importance=out(Metrics, "explain", "importance"),
    )
    if blessed:
        published = run.call(
            "publish",
            publish,
            model=model,
            model_card=card,
            blessing=blessing,
            profile=profile,
            model_store_uri=a["model_store_uri"],
            model_name=a["model_name"],
        )
        run.call(
            "deploy",
            deploy,
            model_uri=published,
            model_name=a["model_name"],
            deployment=a["deployment"],
            serving_image=IMAGE,
            endpoint=out(Artifact, "deploy", "endpoint"),
            endpoint_card=out(Markdown, "deploy", "endpoint_card"),
        )
    return run.seconds


def print_table(runner: dict[str, float], direct: dict[str, float]) -> float:
    """Print runner and in-process seconds, overhead and overhead/compute per step and over all; return the latter.

    Both sides hold per step name the time of all its calls: the search workers (in parallel on the runner, one
    after the other in-process) count as one line with their times added up.
    """
    print(f"{'step':<12}{'runner s':>10}{'in-process s':>14}{'overhead s':>12}{'overhead/compute':>18}")
    total_runner = total_direct = 0.0
    for step, compute in direct.items():
        wall = runner[step]
        total_runner, total_direct = total_runner + wall, total_direct + compute
        ratio = (wall - compute) / compute if compute > 0 else float("inf")
        print(f"{step:<12}{wall:>10.2f}{compute:>14.2f}{wall - compute:>12.2f}{ratio:>18.2f}")
    overall = (total_runner - total_direct) / total_direct
    print(f"{'all steps':<12}{total_runner:>10.2f}{total_direct:>14.2f}{total_runner - total_direct:>12.2f}", end="")
    print(f"{overall:>18.2f}")
    return overall


def main() -> None:
    """Measure both sides and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90, help="days of demo plant data")
    parser.add_argument("--search", action="store_true", help="run the hyperparameter search on both sides")
    parser.add_argument("--short", action="store_true", help="small plant, one epoch: a quick check that it runs")
    args = parser.parse_args()

    from shopfloor.app.local_runner import run_locally
    from shopfloor.components.deploy.local_target import stop_server
    from shopfloor.demo.plant import PlantDataSpec, write_plant_data
    from shopfloor.families.predictive_maintenance.config import PredictiveMaintenanceConfig
    from shopfloor.pipelines.scenarios import SCENARIOS

    scenario = SCENARIOS["predictive-maintenance"]

    spec = PlantDataSpec(sites=2, assets_per_site=3, days=40) if args.short else PlantDataSpec(days=args.days)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_plant_data(root / "data", spec)
        config = PredictiveMaintenanceConfig().resolve_data(root / "data")
        if args.short:
            config = config.model_copy(update={"model": config.model.model_copy(update={"epochs": 1})})
        quiet = io.StringIO()
        runner_config = local_config(config, root / "runner", args.search)
        direct_config = local_config(config, root / "direct", args.search)
        try:
            noop_run = run_locally(noop_chain, {}, root / "noop", console=quiet)
            run = run_locally(
                scenario.pipeline_for(runner_config),
                scenario.arguments(runner_config, str(root / "runner" / "store")),
                root / "runner",
                console=quiet,
            )
            direct = in_process_seconds(
                scenario.arguments(direct_config, str(root / "direct" / "store")), root / "direct" / "steps"
            )
        finally:
            for side in ("runner", "direct"):
                stop_server(root / side / "serving", config.model_name)

    noop_mean = sum(noop_run.step_seconds.values()) / len(noop_run.step_seconds)
    print(f"no-op step on the local runner: {noop_mean:.2f} s each ({len(noop_run.step_seconds)} steps)")
    search = "on" if args.search else "off (as --no-hpo: the pipeline without its search stage)"
    print(f"hyperparameter search: {search}; {config.hpo.workers} search workers\n")
    overall = print_table(run.step_seconds, direct)
    print(f"\nwhole local run (orchestration included): {run.seconds:.2f} s")
    if not args.short:
        verdict = "met" if overall <= TARGET_RATIO else "MISSED"
        print(f"target overhead/compute <= {TARGET_RATIO:.2f} over all steps: {verdict}")


if __name__ == "__main__":
    main()
