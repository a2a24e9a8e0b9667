"""How much the KFP local runner adds to each step, as a ratio of the step's own compute time.

Runs the predictive-maintenance pipeline on `kfp.local` set up as `shopfloor run` sets it up (deploy target
local, the search's study in a SQLite file under the work dir) twice, side by side: with a fresh interpreter per
step (as KFP's SubprocessRunner starts them; ``SHOPFLOOR_FRESH_STEP_PROCESSES=1``) and with warm step processes
(each step a fork of a zygote that imported the libraries once: ``shopfloor.app.warm_steps``, the default); and
then, in the same process and on the same data, every step's own ``@dsl.component`` body called directly
(``component.python_func``) with artifacts wired as the pipeline wires them: ingest, label, (with the search on:
hpo-setup, hpo-worker x workers, hpo-select), train, evaluate, explain, and, when the model is blessed, publish
and deploy. Each of the three has its own model store, serving folder and study, so none finds another's champion
or server. Every module the bodies import, and the libraries our modules
import inside functions (TensorFlow, matplotlib, ...), is imported before the in-process side is timed (warm
imports), so its times are the steps' compute; overhead = step wall time on the runner minus the same body
in-process (process start, imports, TensorFlow's per-process start-up, artifact (de)serialization, executor
bookkeeping), for each way of starting steps.

The search is off on every side by default (as ``shopfloor run --no-hpo``, which runs the pipeline without its
search stage), so the trials' training, whose time depends on pruning and the time budget rather than on the
runner, does not dilute the ratio.
``--search`` turns it on for every side (each with its own fresh study).

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
# how the runner starts steps: a fresh interpreter each (KFP's own way), or a fork of the warm zygote (the default)
WAYS = {"fresh": "a fresh interpreter per step", "warm": "warm step processes"}


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


def print_table(fresh: dict[str, float], warm: dict[str, float], direct: dict[str, float]) -> tuple[float, float]:
    """Per step and over all: seconds on the runner both ways and in-process, and each way's overhead/compute.

    Every side holds per step name the time of all its calls: the search workers (in parallel on the runner, one
    after the other in-process) count as one line with their times added up. Returns the two overall ratios.
    """
    print(f"{'':<20}{'runner s':^20}{'':<14}{'overhead/compute':^28}")
    print(f"{'step':<20}{'fresh':>10}{'warm':>10}{'in-process s':>14}{'fresh':>14}{'warm':>14}")

    def line(name: str, cold: float, hot: float, compute: float) -> tuple[float, float]:
        fresh_ratio, warm_ratio = ((wall - compute) / compute if compute > 0 else float("inf") for wall in (cold, hot))
        print(f"{name:<20}{cold:>10.2f}{hot:>10.2f}{compute:>14.2f}{fresh_ratio:>14.2f}{warm_ratio:>14.2f}")
        return fresh_ratio, warm_ratio

    totals = [0.0, 0.0, 0.0]
    for step, compute in direct.items():
        line(step, fresh[step], warm[step], compute)
        totals = [totals[0] + fresh[step], totals[1] + warm[step], totals[2] + compute]
    return line("all steps", *totals)


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
        direct_config = local_config(config, root / "direct", args.search)
        runs, noop = {}, {}
        try:
            for way in WAYS:
                fresh = way == "fresh"
                noop[way] = run_locally(noop_chain, {}, root / f"noop-{way}", console=quiet, fresh_processes=fresh)
                side_config = local_config(config, root / way, args.search)
                runs[way] = run_locally(
                    scenario.pipeline_for(side_config),
                    scenario.arguments(side_config, str(root / way / "store")),
                    root / way,
                    console=quiet,
                    fresh_processes=fresh,
                )
            direct = in_process_seconds(
                scenario.arguments(direct_config, str(root / "direct" / "store")), root / "direct" / "steps"
            )
        finally:
            for side in (*WAYS, "direct"):
                stop_server(root / side / "serving", config.model_name)

    for way, what in WAYS.items():
        seconds = noop[way].step_seconds
        print(f"no-op step on the local runner, {what}: {sum(seconds.values()) / len(seconds):.2f} s each", end="")
        print(f" ({len(seconds)} steps)")
    search = "on" if args.search else "off (as --no-hpo: the pipeline without its search stage)"
    print(f"hyperparameter search: {search}; {config.hpo.workers} search workers\n")
    fresh_ratio, warm_ratio = print_table(runs["fresh"].step_seconds, runs["warm"].step_seconds, direct)
    print("\nwhole local run (orchestration included): ", end="")
    print(", ".join(f"{way} {run.seconds:.2f} s" for way, run in runs.items()))
    print(f"overhead/compute over all steps: fresh {fresh_ratio:.2f}, warm {warm_ratio:.2f}")
    if not args.short:
        verdict = "met" if warm_ratio <= TARGET_RATIO else "MISSED"
        print(f"target overhead/compute <= {TARGET_RATIO:.2f} over all steps (warm, the default): {verdict}")


if __name__ == "__main__":
    main()
