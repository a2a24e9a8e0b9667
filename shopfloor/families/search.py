"""What a hyperparameter study searches: a family's builder, the arrays each trial fits on, and its score.

Each family makes its ``SearchProblem`` from the step's data artifact; the search itself only sees this.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras_tuner as kt

__all__ = [
    "TRAIN_SAMPLE",
    "SearchProblem",
    "space_defaults",
    "training_sample",
]

TRAIN_SAMPLE = 2048  # training items a trial scores each epoch to measure its train/validation gap


@dataclasses.dataclass(frozen=True)
class SearchProblem:
    """One study's work: the builder, the arrays each trial fits and validates on, and the score maximized.

    ``monitor`` is the per-epoch value the pruner and the objective read from Keras' logs; ``epoch_score``, when
    set, computes it from the model at each epoch's end (a score Keras has no metric for). ``first_params`` are
    enqueued as the first trial, so the search starts from the configured model instead of a random one.
    ``train_score``, when set, is the same score on (a sample of) the training data, the model in inference mode:
    the search penalizes a trial whose training score runs ahead of its validation score (overfitting).
    """

    builder: kt.HyperModel
    x: np.ndarray
    y: object
    validation_data: tuple
    monitor: str
    label: str
    fit_options: dict = dataclasses.field(default_factory=dict)
    epoch_score: Callable[[object], float] | None = None
    first_params: dict | None = None
    train_score: Callable[[object], float] | None = None


def space_defaults(builder: kt.HyperModel) -> dict:
    """The values a builder's space takes by default (keras-tuner's ``hp`` defaults), as trial parameters."""
    import keras_tuner as kt  # at run time; the module-level name is for annotations only

    hp = kt.HyperParameters()
    builder.space(hp)
    return dict(hp.values)


def training_sample(size: int, limit: int = TRAIN_SAMPLE, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``limit`` of ``size`` training items, the same for every trial (a fixed seed).

    Scoring the training data each epoch costs a prediction pass; a fixed sample bounds it on large data and keeps
    the trials comparable.
    """
    if size <= limit:
        return np.arange(size)
    return np.sort(np.random.default_rng(seed).choice(size, limit, replace=False))
