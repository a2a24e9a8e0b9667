"""The search score does not reward overfitting: a train/validation gap beyond the tolerance costs score."""

from __future__ import annotations

import optuna
import pytest

from shopfloor.common.config import HpoConfig
from shopfloor.components.hpo.search import (
    SEARCH_SCORE,
    TRAIN_SCORE,
    OverfitPenalty,
    overfit_callback,
    pruning_callback,
)


def test_an_overfitting_trial_scores_below_one_with_the_same_validation_score() -> None:
    config = HpoConfig()
    penalty = OverfitPenalty(config.overfit_penalty, config.overfit_tolerance)
    overfit = penalty.score(validation=0.80, train=0.97)  # the 4-block CNN of issue 15
    holds = penalty.score(validation=0.80, train=0.83)
    assert holds == 0.80, "a gap within the tolerance costs nothing"
    assert overfit == pytest.approx(0.80 - 0.5 * (0.17 - 0.05)) and overfit < holds
    assert penalty.score(validation=0.80, train=0.60) == 0.80, "training worse than validation is no overfitting"
    assert OverfitPenalty(weight=0.0).score(0.80, 0.97) == 0.80, "weight 0: the plain validation score"


def _epochs(
    train_scores: list[float], validation_scores: list[float], penalty: OverfitPenalty
) -> tuple[optuna.trial.FrozenTrial, dict]:
    """Run the overfit and pruning callbacks over epochs as ``make_objective`` chains them: the trial, its best logs."""
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    scores = iter(train_scores)
    overfit = overfit_callback("val_score", lambda model: next(scores), penalty)
    pruning = pruning_callback(trial, SEARCH_SCORE)
    for epoch, validation in enumerate(validation_scores):
        logs = {"val_score": validation}
        overfit.on_epoch_end(epoch, logs)
        pruning.on_epoch_end(epoch, logs)
    study.tell(trial, pruning.best)
    return study.trials[0], pruning.best_logs


def test_the_search_picks_the_epoch_and_trial_that_hold() -> None:
    penalty = OverfitPenalty()
    # one trial memorizes its training data from epoch 2 on; the other reaches the same validation score honestly
    memorizing, best = _epochs([0.85, 0.99, 1.00], [0.80, 0.84, 0.84], penalty)
    holding, _ = _epochs([0.82, 0.86, 0.87], [0.80, 0.83, 0.84], penalty)
    assert holding.value == pytest.approx(0.84) and memorizing.value < holding.value
    assert best["epoch"] == 1 and best[TRAIN_SCORE] == 0.85, "its best epoch is the one before it memorized"
    assert memorizing.intermediate_values[3] == memorizing.value, "the pruner sees the same penalized running best"


def test_without_a_training_score_the_search_scores_validation() -> None:
    logs = {"val_score": 0.7}
    overfit_callback("val_score", None, OverfitPenalty()).on_epoch_end(0, logs)
    assert logs == {"val_score": 0.7, SEARCH_SCORE: 0.7}
