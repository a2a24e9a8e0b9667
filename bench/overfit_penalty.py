"""Does the search's overfit penalty pick models that hold up on held-out data? The same search with and without.

On small data a configuration that memorizes the training data can top the validation ranking by luck; the
search therefore scores each epoch as validation - ``hpo.overfit_penalty`` x max(0, train - validation -
``hpo.overfit_tolerance``) (``components/hpo/search.py``). This script measures what that changes, side by side in
one run, once per data set and seed: the family's search (a fresh SQLite study, ``create_study`` tickets, one
in-process ``run_worker``, as the pipeline's steps run it) with the penalty off (weight 0: plain validation) and on
(the default, 0.5 beyond 0.05), same data, seed, trial budget and epochs. Each arm's pick is then trained as the
train step trains it (full epochs, early stopping) and scored on the test part, which neither the search nor
training saw.

Data sets: predictive maintenance on the small fleet of ``bench/model_quality.py`` (2 sites x 4 assets, 60 days;
failure PR-AUC), and visual inspection on the real digit scans scikit-learn ships with only ``--keep`` (15 %) of
the training images, the small-data case where a CNN memorizes (balanced accuracy, the search's own score).

Printed per data set, seed and arm: the trials' median train - validation gap (how much the data overfits; only
the arm with the penalty scores the training data during the search, so the other prints n/a), the pick's search
score, validation score and gap, and the shipped model's train, validation and test scores. The figure: the test
score with the penalty / without, per seed and its median (1.00 where both arms pick the same configuration).

    python bench/overfit_penalty.py [--trials 12] [--max-epochs 8] [--seeds 7 11 23] [--keep 0.15] [--short]

``--short`` (CI): a smaller plant, 2 trials x 1 epoch, one seed, one training epoch; same tables, no verdict.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hpo_search import labelled_windows, load_average, quiet, warm_up

from shopfloor.common.config import HpoConfig
from shopfloor.families.search import SearchProblem

PARTS = ("train", "validation", "test")

ARMS = {"off": 0.0, "on": 0.5}  # penalty weight per arm; the tolerance is the config's default in both


@dataclasses.dataclass
class Case:
    """A data set to search on: its search problem, and how a pick is shipped and scored (train/validation/test)."""

    name: str
    problem: SearchProblem
    ship: Callable[[dict], dict[str, float]]
    metric: str


@dataclasses.dataclass
class Arm:
    """One search and its shipped pick: what the search saw and what the test part says."""

    name: str
    median_gap: float
    params: dict
    search_score: float
    validation: float
    gap: float
    shipped: dict[str, float]
    wall_s: float


def maintenance_case(root: Path, plant, base) -> Case:
    """The predictive-maintenance network on a demo plant, shipped by ``train_model``, scored by failure PR-AUC."""
    from sklearn.metrics import average_precision_score

    from shopfloor.common.config import HpoConfig
    from shopfloor.components.hpo.search import best_model_config
    from shopfloor.families.predictive_maintenance.evaluation import predict
    from shopfloor.families.predictive_maintenance.model import train_model
    from shopfloor.families.predictive_maintenance.search import builder_for, window_problem

    windows = labelled_windows(root, plant)
    builder = builder_for(windows, base, HpoConfig(), source="bench")
    warm_up(windows, builder)

    def ship(params: dict) -> dict[str, float]:
        model = train_model(windows, best_model_config(params, builder)).model
        return {
            part: float(average_precision_score(windows.part(part).failure, predict(model, windows.part(part).x)[0]))
            for part in PARTS
        }

    sizes = {part: len(windows.part(part).x) for part in PARTS}
    name = f"PM {plant.sites}x{plant.assets_per_site} assets, {plant.days} d, windows {sizes}"
    return Case(name, window_problem(windows, builder), ship, "failure PR-AUC")


def digits_case(root: Path, keep: float, base_epochs: int | None) -> Case:
    """The CNN on the real digit scans scikit-learn ships, with only ``keep`` of the training images (small data),
    shipped by ``train_vision_model``, scored by balanced accuracy (the search's score)."""
    import numpy as np
    import yaml

    from shopfloor.common.vision_config import ImageDataConfig, ImageSplitConfig
    from shopfloor.components.hpo.search import best_model_config
    from shopfloor.components.ingest.images import ingest_images
    from shopfloor.contracts.images import load_image_set
    from shopfloor.demo.real_images import DIGITS_CONFIG, write_digits_layout
    from shopfloor.families.visual_inspection.config import CnnConfig
    from shopfloor.families.visual_inspection.model import predict_probabilities, train_vision_model
    from shopfloor.families.visual_inspection.search import balanced_accuracy, image_problem

    folder = root / "digits"
    write_digits_layout(folder)
    section = yaml.safe_load(DIGITS_CONFIG)
    data = ImageDataConfig(**section["data"])
    images = load_image_set(ingest_images(str(folder), data).manifest, data, ImageSplitConfig(), root=str(folder))
    dropped = (images.split == "train") & (np.random.default_rng(0).random(len(images.split)) >= keep)
    images = images.select(~dropped)
    base = CnnConfig(**section["model"])
    if base_epochs is not None:
        base = base.model_copy(update={"epochs": base_epochs})
    problem = image_problem(images, base)

    def ship(params: dict) -> dict[str, float]:
        model = train_vision_model(images, best_model_config(params, problem.builder), 0.95).model
        scores = {}
        for part in PARTS:
            chosen = images.part(part)
            predicted = predict_probabilities(model, chosen.images).argmax(axis=1)
            scores[part] = balanced_accuracy(chosen.labels, predicted)
        return scores

    sizes = {part: len(images.part(part).labels) for part in PARTS}
    return Case(f"VI real digits, {keep:.0%} of the training images, {sizes}", problem, ship, "balanced accuracy")


def search_arm(name: str, weight: float, case: Case, budget: tuple[int, int, int], work: Path) -> Arm:
    """One search with the penalty at ``weight``, then its pick shipped and scored on every part."""
    from optuna.trial import TrialState

    from shopfloor.common.config import HpoConfig
    from shopfloor.components.hpo.search import (
        OverfitPenalty,
        create_study,
        load_study,
        make_objective,
        open_storage,
        run_worker,
        summarize,
    )

    trials, max_epochs, seed = budget
    started = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    storage = open_storage(f"sqlite:///{work / f'{name}-{seed}-{time.monotonic_ns()}.db'}")
    create_study(storage, "bench", trials)
    study = load_study(storage, "bench", seed)
    penalty = OverfitPenalty(weight, HpoConfig().overfit_tolerance)
    run_worker(study, make_objective(case.problem, max_epochs, seed, penalty), time.time() + 3600)
    gaps = [
        t.user_attrs["train_score"] - t.user_attrs["validation_score"]
        for t in study.trials
        if t.state == TrialState.COMPLETE and {"train_score", "validation_score"} <= set(t.user_attrs)
    ]
    summary = summarize(study)
    best = study.best_trial
    return Arm(
        name=name,
        median_gap=statistics.median(gaps) if gaps else float("nan"),
        params=summary.best_params,
        search_score=summary.best_value,
        validation=float(best.user_attrs.get("validation_score", float("nan"))),
        gap=float(best.user_attrs.get("train_score", float("nan"))) - float(best.user_attrs["validation_score"]),
        shipped=case.ship(summary.best_params),
        wall_s=time.perf_counter() - started,
    )


def print_seed(case: Case, seed: int, arms: list[Arm]) -> float:
    """One seed's table; returns the shipped model's test score with the penalty / without."""
    print(f"--- {case.name}: seed {seed} ({case.metric})")
    print(
        f"{'penalty':<9}{'trials gap':>11}{'pick score':>12}{'pick val':>10}{'pick gap':>10}"
        f"{'shipped train':>15}{'val':>8}{'test':>8}{'wall s':>9}"
    )
    for arm in arms:
        shipped = arm.shipped
        trials_gap = "n/a" if arm.median_gap != arm.median_gap else f"{arm.median_gap:.3f}"  # NaN: not scored
        pick_gap = "n/a" if arm.gap != arm.gap else f"{arm.gap:.3f}"
        print(
            f"{arm.name:<9}{trials_gap:>11}{arm.search_score:>12.3f}{arm.validation:>10.3f}{pick_gap:>10}"
            f"{shipped['train']:>15.3f}{shipped['validation']:>8.3f}{shipped['test']:>8.3f}{arm.wall_s:>9.1f}"
        )
    for arm in arms:
        print(f"  pick ({arm.name}): {arm.params}")
    off, on = arms
    ratio = on.shipped["test"] / off.shipped["test"] if off.shipped["test"] > 0 else float("nan")
    print(f"  test {case.metric} on / off: {ratio:.2f}" + (" (same pick)" if off.params == on.params else ""))
    return ratio


def main() -> None:
    """Both arms per case and seed, the tables and the median ratio per case (the figures)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12, help="trial budget of each search")
    parser.add_argument("--max-epochs", type=int, default=8, help="epochs per trial")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 23], help="one side-by-side run per seed")
    parser.add_argument("--keep", type=float, default=0.15, help="share of the digits' training images kept")
    parser.add_argument("--short", action="store_true", help="small data, 2 trials x 1 epoch, one seed (CI)")
    args = parser.parse_args()
    quiet()

    from shopfloor.demo.plant import PlantDataSpec
    from shopfloor.families.predictive_maintenance.config import ModelConfig

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        if args.short:
            args.trials, args.max_epochs, args.seeds = 2, 1, args.seeds[:1]
            plant = PlantDataSpec(sites=2, assets_per_site=3, days=40)
            cases = [maintenance_case(root, plant, ModelConfig(epochs=1)), digits_case(root, args.keep, 1)]
        else:
            plant = PlantDataSpec(sites=2, assets_per_site=4, days=60)
            cases = [maintenance_case(root, plant, ModelConfig()), digits_case(root, args.keep, None)]
        print(
            f"budget {args.trials} trials x {args.max_epochs} epochs per search; penalty weights {ARMS} (tolerance "
            f"{HpoConfig().overfit_tolerance}); seeds {args.seeds}; load {load_average():.1f}\n"
        )
        ratios: dict[str, list[float]] = {}
        for case in cases:
            for seed in args.seeds:
                budget = (args.trials, args.max_epochs, seed)
                arms = [search_arm(name, weight, case, budget, root) for name, weight in ARMS.items()]
                ratios.setdefault(case.name, []).append(print_seed(case, seed, arms))
                print()
    for name, found in ratios.items():
        print(
            f"{name}: test score with the penalty / without, per seed {', '.join(f'{r:.2f}' for r in found)}; "
            f"median {statistics.median(found):.2f}"
        )


if __name__ == "__main__":
    main()
