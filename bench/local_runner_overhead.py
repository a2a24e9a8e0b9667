"""How much the KFP local runner adds to each step, as a ratio of the step's own compute time.

Runs the predictive-maintenance pipeline on `kfp.local` (what `shopfloor run` does) and, in the same process
and on the same data, each step's logic called directly. Overhead = step wall time on the runner minus the
same work in-process (process start, imports, artifact (de)serialization, executor bookkeeping).

    python bench/local_runner_overhead.py [--days 90]
"""

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

from kfp import dsl

from shopfloor.components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def noop() -> None:
    """A step that does nothing: its wall time is pure runner overhead."""


@dsl.pipeline(name="noop-chain")
def noop_chain():
    """Five no-op steps in sequence."""
    previous = noop()
    for _ in range(4):
        previous = noop().after(previous)


def in_process_seconds(data: Path, work: Path) -> dict[str, float]:
    """Each step's logic called directly, with warm imports: the step's own compute time."""
    from shopfloor.common.config import PredictiveMaintenanceConfig
    from shopfloor.components.ingest.ingest import ingest, write_outputs
    from shopfloor.components.publish.publish import publish_model
    from shopfloor.contracts.model_artifact import load_keras_model, write_model
    from shopfloor.contracts.windows import load_windows, write_windows
    from shopfloor.families.predictive_maintenance.evaluation import evaluate_model
    from shopfloor.families.predictive_maintenance.labelling import label_windows
    from shopfloor.families.predictive_maintenance.model import train_model
    from shopfloor.families.predictive_maintenance.report import render_report
    from shopfloor.families.reporting import render_model_card

    config = PredictiveMaintenanceConfig().resolve_data(data)
    seconds = {}
    start = time.perf_counter()
    result = ingest(config.data.sensors, config.data.events, config.data)
    write_outputs(result, work / "sensors.parquet", work / "events.parquet", work / "profile.json")
    seconds["ingest"] = time.perf_counter() - start

    start = time.perf_counter()
    windows = label_windows(result.sensors, result.events, result.features, config.data.failure_values, config.labeling)
    write_windows(windows, str(work / "windows"))
    seconds["label"] = time.perf_counter() - start

    start = time.perf_counter()
    trained = train_model(load_windows(str(work / "windows")), config.model)
    write_model(trained, str(work / "model"))
    seconds["train"] = time.perf_counter() - start

    start = time.perf_counter()
    evaluation = evaluate_model(load_keras_model(work / "model"), load_windows(str(work / "windows")), config.gate)
    (work / "report.html").write_text(render_report(evaluation, trained.history, "bench"))
    (work / "card.md").write_text(
        render_model_card("bench", "v-bench", trained.info, result.profile, windows.info, evaluation)
    )
    (work / "blessing.json").write_text(json.dumps({"blessed": True, "model_version": "v-bench"}))
    seconds["evaluate"] = time.perf_counter() - start

    start = time.perf_counter()
    publish_model(str(work / "model"), str(work / "card.md"), str(work / "blessing.json"), str(work / "store"), "bench")
    seconds["publish"] = time.perf_counter() - start
    return seconds


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    args = parser.parse_args()

    from shopfloor.app.local_runner import run_locally
    from shopfloor.common.config import PredictiveMaintenanceConfig
    from shopfloor.demo.plant import PlantDataSpec, write_plant_data
    from shopfloor.pipelines.predictive_maintenance import pipeline_arguments, predictive_maintenance

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_plant_data(root / "data", PlantDataSpec(days=args.days))
        config = PredictiveMaintenanceConfig().resolve_data(root / "data")
        quiet = io.StringIO()
        noop_run = run_locally(noop_chain, {}, root / "noop", console=quiet)
        run = run_locally(
            predictive_maintenance, pipeline_arguments(config, str(root / "store")), root / "runner", console=quiet
        )
        (root / "direct").mkdir()
        direct = in_process_seconds(root / "data", root / "direct")

    noop_mean = sum(noop_run.step_seconds.values()) / len(noop_run.step_seconds)
    print(f"no-op step on the local runner: {noop_mean:.2f} s each ({len(noop_run.step_seconds)} steps)\n")
    print(f"{'step':<10}{'runner s':>10}{'in-process s':>14}{'overhead s':>12}{'overhead/compute':>18}")
    total_runner = total_direct = 0.0
    for step, compute in direct.items():
        wall = run.step_seconds[step]
        total_runner, total_direct = total_runner + wall, total_direct + compute
        print(f"{step:<10}{wall:>10.2f}{compute:>14.2f}{wall - compute:>12.2f}{(wall - compute) / compute:>18.2f}")
    overhead = total_runner - total_direct
    print(
        f"{'all steps':<10}{total_runner:>10.2f}{total_direct:>14.2f}{overhead:>12.2f}{overhead / total_direct:>18.2f}"
    )
    print(f"\nwhole local run (orchestration included): {run.seconds:.2f} s")


if __name__ == "__main__":
    main()
