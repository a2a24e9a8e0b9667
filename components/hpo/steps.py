"""The search's three steps as plain functions: setup (study and budget), one worker, select (the best config).

The KFP wrappers (``component.py``) only hand these their artifacts' paths and log what they return. Model
code (keras-tuner, so TensorFlow) is imported only when a search runs: a disabled search's steps take a second.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import TYPE_CHECKING

from shopfloor.common.config import HpoConfig, validated
from shopfloor.common.errors import SearchNotPossible

if TYPE_CHECKING:
    from shopfloor.families.search import SearchProblem
from shopfloor.common.plots import html_page
from shopfloor.common.progress import report_progress

__all__ = ["Selection", "run_hpo_select", "run_hpo_setup", "run_hpo_worker", "search_problem_or_none"]


@dataclasses.dataclass(frozen=True)
class Selection:
    """What select hands on: the full model config, the search's metrics and report, and the artifact's metadata."""

    hyperparameters: dict
    metrics: dict[str, float]
    report: str
    metadata: dict


def search_problem_or_none(
    config: HpoConfig, data_path: str, hyperparameters: dict, data_schema: dict, split: dict
) -> SearchProblem | None:
    """The search over the data, or None when it is off or the data gives it nothing to score (and it may skip).

    ``shopfloor validate`` asks the same, so it refuses exactly what this step would.
    """
    if not config.enabled:
        report_progress("search disabled: training with the given hyperparameters")
        return None
    from shopfloor.components.hpo.problems import load_problem

    try:
        return load_problem(config, data_path, hyperparameters, data_schema, split)
    except SearchNotPossible as reason:
        if config.required:  # the config demands a search: the run fails, saying why
            raise
        report_progress(f"search skipped, training the configured model: {reason}")
        return None


def run_hpo_setup(hpo: dict, data_path: str, hyperparameters: dict, data_schema: dict, split: dict) -> str:
    """Check the budget, the builder and that its space fits the data; create the study. Returns its name ('' = off)."""
    config = validated(HpoConfig, hpo, "pipeline parameter hpo")
    problem = search_problem_or_none(config, data_path, hyperparameters, data_schema, split)
    if problem is None:
        return ""
    from shopfloor.components.hpo.search import create_study, open_storage, storage_url

    name = f"{config.builder}-{uuid.uuid4().hex[:12]}"
    create_study(open_storage(storage_url(config)), name, config.trials, problem.label, problem.first_params)
    report_progress(f"study {name}: {config.trials} trials maximizing {problem.label}")
    return name


def run_hpo_worker(
    study_name: str, hpo: dict, data_path: str, hyperparameters: dict, data_schema: dict, split: dict, worker: int
) -> int:
    """Run the study's trials until none is left or the time budget ends; returns how many this worker ran."""
    if not study_name:
        return 0
    from shopfloor.components.hpo.problems import load_problem
    from shopfloor.components.hpo.search import (
        OverfitPenalty,
        load_study,
        make_objective,
        open_storage,
        run_worker,
        storage_url,
    )

    config = validated(HpoConfig, hpo, "pipeline parameter hpo")
    problem = load_problem(config, data_path, hyperparameters, data_schema, split)
    shared = load_study(open_storage(storage_url(config)), study_name, config.seed + int(worker))
    deadline = time.time() + config.timeout_s
    penalty = OverfitPenalty(config.overfit_penalty, config.overfit_tolerance)
    return run_worker(shared, make_objective(problem, config.max_epochs, config.seed, penalty), deadline)


def run_hpo_select(
    study_name: str, hpo: dict, data_path: str, hyperparameters: dict, data_schema: dict, split: dict, model_name: str
) -> Selection:
    """The best trial's configuration (or the given one when the search was off), with the search's report."""
    config = validated(HpoConfig, hpo, "pipeline parameter hpo")
    if not study_name:
        disabled = html_page("hyperparameter search", "<p>Hyperparameter search disabled for this run.</p>")
        return Selection(hyperparameters, {"trials": 0}, disabled, {})
    from shopfloor.components.hpo.problems import load_problem
    from shopfloor.components.hpo.report import render_hpo_report
    from shopfloor.components.hpo.search import best_model_config, load_study, open_storage, storage_url, summarize

    shared = load_study(open_storage(storage_url(config)), study_name, config.seed)
    summary = summarize(shared)
    problem = load_problem(config, data_path, hyperparameters, data_schema, split)
    chosen = best_model_config(summary.best_params, problem.builder).model_dump()
    metrics = {f"best_{problem.monitor}": round(summary.best_value, 6)}
    metrics.update({f"trials_{state.lower()}": count for state, count in summary.by_state.items()})
    report_progress(f"best {problem.label} {summary.best_value:.3f}: {summary.best_params}")
    return Selection(
        hyperparameters=chosen,
        metrics=metrics,
        report=render_hpo_report(shared, summary, chosen, model_name),
        metadata={"study": study_name, "best_value": summary.best_value},
    )
