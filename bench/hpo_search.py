"""Our Optuna search against keras-tuner's RandomSearch and Hyperband: best validation PR-AUC and wall time.

On one set of labelled demo windows, with the same builder (search space), trial budget, epochs and seed, runs
side by side, once per seed: our search (a fresh SQLite study, ``create_study`` tickets, one in-process
``run_worker``, exactly as the pipeline's setup and worker steps do), keras-tuner ``RandomSearch``
(``max_trials`` = the budget) and keras-tuner ``Hyperband`` (``max_epochs``, factor 3, one iteration; it decides
its own trial count). Every method is timed from its setup (study / tuner creation) to its last trial; each
finished trial is timestamped, so a best-so-far curve (time -> best score, complete trials only) shows when each
score was reached.

Fairness: one untimed warm-up fit first pays TensorFlow's one-time start-up costs, which would otherwise fall on
whichever method runs first; the methods' order rotates from seed to seed, so a change in the machine's load
(other work shares the cores) does not always hit the same method; each method's line shows the 1-minute load
average at its start and end.

The figure is time-to-equal-score: the time our search first reaches RandomSearch's best score, as a ratio of
RandomSearch's whole wall time (Hyperband likewise, as a second reference), per seed and its median over the
seeds (a seed where ours never reached the reference counts as infinity). Target: median <= 0.50.

    python bench/hpo_search.py [--days 90] [--trials 12] [--max-epochs 6] [--seeds 7 11 23] [--short]

``--short`` (a quick check that it runs, for CI): a small plant (2 sites x 3 assets, 40 days), 2 trials x 1
epoch, one seed; same tables, no verdict on the target.

(``TF_CPP_MIN_LOG_LEVEL=3`` in the environment also hides TensorFlow's start-up lines on stderr.)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import math
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

TARGET_RATIO = 0.50
METHODS = ("optuna", "RandomSearch", "Hyperband")


@dataclasses.dataclass
class SearchRun:
    """One method's result: trials run, wall time (s), (seconds from start, score) per complete trial, load."""

    method: str
    trials: int
    wall_s: float
    finished: list[tuple[float, float]]
    load: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def best(self) -> float:
        """The best score of any complete trial (NaN if none completed)."""
        return max((score for _, score in self.finished), default=float("nan"))

    def curve(self) -> list[tuple[float, float]]:
        """Best-so-far: (seconds, best score) at each trial that improved on the ones before."""
        points: list[tuple[float, float]] = []
        for seconds, score in sorted(self.finished):
            if not points or score > points[-1][1]:
                points.append((seconds, score))
        return points

    def time_to_reach(self, score: float) -> float | None:
        """Seconds until a complete trial first scored at least ``score``; None if none did."""
        return next((seconds for seconds, best in self.curve() if best >= score), None)


def quiet() -> None:
    """Silence Keras, Optuna and our progress lines (TF's C++ start-up lines need TF_CPP_MIN_LOG_LEVEL=3 set before)."""
    warnings.filterwarnings("ignore")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("shopfloor").setLevel(logging.WARNING)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)


def load_average() -> float:
    """The machine's 1-minute load average (other work shares the cores; it explains noisy wall times)."""
    return os.getloadavg()[0]


def labelled_windows(root: Path, plant):
    """Demo plant data -> ingest -> labelled windows, as the pipeline makes them."""
    from shopfloor.components.ingest.ingest import ingest
    from shopfloor.demo.plant import write_plant_data
    from shopfloor.families.predictive_maintenance.config import PredictiveMaintenanceConfig
    from shopfloor.families.predictive_maintenance.labelling import label_windows

    write_plant_data(root / "data", plant)
    config = PredictiveMaintenanceConfig().resolve_data(root / "data")
    result = ingest(config.data.sensors, config.data.events, config.data)
    return label_windows(result.sensors, result.events, result.features, config.data.failure_values, config.labeling)


def warm_up(windows, builder) -> None:
    """One untimed short fit, so TensorFlow's one-time start-up costs fall on no method's clock."""
    import keras
    import keras_tuner as kt

    train = windows.part("train")
    hp = kt.HyperParameters()
    model = builder.build(hp)
    head = slice(0, 512)
    targets = {"failure": train.failure[head].astype("float32"), "rul": train.rul[head]}
    builder.fit(hp, model, train.x[head], targets, validation_data=(train.x[head], targets), epochs=1, verbose=0)
    keras.backend.clear_session()


def optuna_search(windows, builder, trials: int, max_epochs: int, seed: int, work: Path) -> SearchRun:
    """Our search: a fresh SQLite study with ``trials`` tickets, run by one in-process worker."""
    import keras
    from optuna.trial import TrialState

    from shopfloor.components.hpo.search import create_study, load_study, make_objective, open_storage, run_worker
    from shopfloor.families.predictive_maintenance.search import window_problem

    keras.utils.set_random_seed(seed)
    started_at, start = datetime.datetime.now(), time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    storage = open_storage(f"sqlite:///{work / 'study.db'}")
    create_study(storage, "bench", trials)
    study = load_study(storage, "bench", seed)
    run_worker(study, make_objective(window_problem(windows, builder), max_epochs, seed), deadline=time.time() + 3600)
    wall = time.perf_counter() - start
    done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    finished = [
        ((t.datetime_complete - started_at).total_seconds(), float(t.value))
        for t in done
        if t.state == TrialState.COMPLETE
    ]
    pruned = len(done) - len(finished)
    return SearchRun(f"optuna ({pruned} pruned)", len(done), wall, finished)


def timed(tuner_class: type) -> type:
    """A keras-tuner tuner class that timestamps each trial's end and keeps its score."""

    class Timed(tuner_class):
        def __init__(self, *args, **kwargs) -> None:
            self.start = time.perf_counter()
            self.finished: list[tuple[float, float]] = []
            self.ended = 0
            super().__init__(*args, **kwargs)

        def on_trial_end(self, trial) -> None:
            super().on_trial_end(trial)
            self.ended += 1
            score = self.oracle.get_trial(trial.trial_id).score
            if score is not None:
                self.finished.append((time.perf_counter() - self.start, float(score)))

    return Timed


def keras_tuner_search(kind: str, windows, builder, trials: int, max_epochs: int, seed: int, work: Path) -> SearchRun:
    """keras-tuner's ``RandomSearch`` or ``Hyperband``, stock, on the same builder, splits, targets and epochs."""
    import keras
    import keras_tuner as kt

    from shopfloor.families.predictive_maintenance.search import PM_MONITOR

    train, validation = windows.part("train"), windows.part("validation")
    targets = {"failure": train.failure.astype("float32"), "rul": train.rul}
    validation_data = (validation.x, {"failure": validation.failure.astype("float32"), "rul": validation.rul})
    common = {
        "objective": kt.Objective(PM_MONITOR, direction="max"),
        "seed": seed,
        "executions_per_trial": 1,
        "directory": str(work),
        "project_name": f"{kind}-{seed}",
        "overwrite": True,
    }
    keras.utils.set_random_seed(seed)
    if kind == "RandomSearch":
        tuner = timed(kt.RandomSearch)(builder, max_trials=trials, **common)
    else:
        tuner = timed(kt.Hyperband)(builder, max_epochs=max_epochs, factor=3, hyperband_iterations=1, **common)
    tuner.search(train.x, targets, validation_data=validation_data, epochs=max_epochs, verbose=0, shuffle=True)
    wall = time.perf_counter() - tuner.start
    return SearchRun(f"keras-tuner {kind}", tuner.ended, wall, tuner.finished)


def run_method(method: str, windows, builder, budget: tuple[int, int, int], root: Path) -> SearchRun:
    """Run one method on the budget (trials, max_epochs, seed), noting the load average around it."""
    before = load_average()
    if method == "optuna":
        run = optuna_search(windows, builder, *budget, root / f"optuna-{budget[2]}")
    else:
        run = keras_tuner_search(method, windows, builder, *budget, root / "keras-tuner")
    run.load = (before, load_average())
    return run


def print_table(runs: list[SearchRun]) -> None:
    """Method, trials run, best validation PR-AUC, wall time and load, then each best-so-far curve."""
    print(f"{'method':<26}{'trials':>8}{'best val PR-AUC':>17}{'wall s':>10}{'load':>14}")
    for run in runs:
        load = f"{run.load[0]:.1f}->{run.load[1]:.1f}"
        print(f"{run.method:<26}{run.trials:>8}{run.best:>17.4f}{run.wall_s:>10.1f}{load:>14}")
    print("best-so-far (s -> best val PR-AUC, complete trials only):")
    for run in runs:
        points = ", ".join(f"{seconds:.0f}->{best:.4f}" for seconds, best in run.curve()) or "(no complete trial)"
        print(f"  {run.method}: {points}")


def time_to_equal(ours: SearchRun, reference: SearchRun) -> float:
    """Print the time our search took to reach ``reference``'s best, as a ratio of its wall time (inf: never)."""
    reached = ours.time_to_reach(reference.best)
    name = reference.method
    if reached is None:
        gap = ours.best - reference.best
        print(f"  vs {name}: never reached its best {reference.best:.4f} (ours {ours.best:.4f}, gap {gap:+.4f})")
        return math.inf
    ratio = reached / reference.wall_s
    print(
        f"  vs {name}: reached {reference.best:.4f} after {reached:.1f} s = {ratio:.2f} of its {reference.wall_s:.1f} s"
    )
    return ratio


def fmt_ratio(ratio: float) -> str:
    """A ratio for the summary ('never' for a reference our search did not reach)."""
    return "never" if math.isinf(ratio) else f"{ratio:.2f}"


def run_seed(windows, builder, budget: tuple[int, int, int], index: int, root: Path) -> dict[str, SearchRun]:
    """All three methods on one seed, in an order rotated by the seed's index; prints the table and ratios."""
    order = METHODS[index % len(METHODS) :] + METHODS[: index % len(METHODS)]
    runs = {method: run_method(method, windows, builder, budget, root) for method in order}
    print(f"--- seed {budget[2]} (order: {', '.join(order)})")
    print_table([runs[method] for method in METHODS])
    print("time-to-equal-score (our time to reach the reference's best / the reference's wall time):")
    return runs


def main() -> None:
    """Run the three searches per seed and print the tables, the per-seed ratios and the median (the figure)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90, help="days of demo plant data")
    parser.add_argument("--trials", type=int, default=12, help="trial budget (Optuna tickets, RandomSearch max_trials)")
    parser.add_argument("--max-epochs", type=int, default=6, help="epochs per trial (Hyperband's max_epochs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 23], help="one side-by-side run per seed")
    parser.add_argument("--short", action="store_true", help="small plant, 2 trials x 1 epoch, one seed (CI)")
    args = parser.parse_args()
    quiet()

    from shopfloor.common.config import HpoConfig
    from shopfloor.demo.plant import PlantDataSpec
    from shopfloor.families.predictive_maintenance.config import ModelConfig
    from shopfloor.families.predictive_maintenance.search import builder_for

    plant = PlantDataSpec(days=args.days)
    if args.short:
        plant = PlantDataSpec(sites=2, assets_per_site=3, days=40)
        args.trials, args.max_epochs, args.seeds = 2, 1, args.seeds[:1]

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        windows = labelled_windows(root, plant)
        builder = builder_for(windows, ModelConfig(), HpoConfig(seed=args.seeds[0]), source="bench")
        train, validation = windows.part("train"), windows.part("validation")
        print(
            f"windows: {len(train.x)} train / {len(validation.x)} validation, shape {tuple(train.x.shape[1:])}; "
            f"budget {args.trials} trials x {args.max_epochs} epochs; seeds {args.seeds}; "
            f"load {load_average():.1f}, {os.cpu_count()} cores\n"
        )
        warm_up(windows, builder)
        for index, seed in enumerate(args.seeds):
            runs = run_seed(windows, builder, (args.trials, args.max_epochs, seed), index, root)
            ours = runs["optuna"]
            ratios = (time_to_equal(ours, runs["RandomSearch"]), time_to_equal(ours, runs["Hyperband"]))
            rows.append((seed, runs, *ratios))
            print()

    print("summary (best val PR-AUC / wall s; ratio = our time to reach the reference's best / its wall time):")
    print(f"{'seed':>6}{'optuna':>16}{'RandomSearch':>16}{'Hyperband':>16}{'vs RS':>8}{'vs HB':>8}")
    for seed, runs, vs_random, vs_hyperband in rows:
        cells = "".join(f"{f'{runs[m].best:.4f} / {runs[m].wall_s:.1f}':>16}" for m in METHODS)
        print(f"{seed:>6}{cells}{fmt_ratio(vs_random):>8}{fmt_ratio(vs_hyperband):>8}")
    median_random = statistics.median(row[2] for row in rows)
    median_hyperband = statistics.median(row[3] for row in rows)
    print(f"{'median':>6}{'':>48}{fmt_ratio(median_random):>8}{fmt_ratio(median_hyperband):>8}")
    if not args.short:  # a 2-trial search says nothing about the target
        verdict = "met" if median_random <= TARGET_RATIO else "MISSED"
        print(f"\ntarget: median time-to-equal-score <= {TARGET_RATIO:.2f} of RandomSearch's wall time: {verdict}")


if __name__ == "__main__":
    main()
