"""The anomaly detector's search problem: the autoencoder's space, scored by how well it ranks anomalies."""

from __future__ import annotations

import numpy as np

from shopfloor.common.config import HpoConfig, validated
from shopfloor.common.errors import SearchNotPossible
from shopfloor.families.anomaly_detection.config import AutoencoderConfig
from shopfloor.families.search import SearchProblem, space_defaults, training_sample

__all__ = [
    "ANOMALY_MONITOR",
    "problem_at",
    "anomaly_problem",
]


ANOMALY_MONITOR = "val_anomaly_pr_auc"


def anomaly_problem(windows, base: AutoencoderConfig, source: str = "hpo config") -> SearchProblem:
    """Anomaly windows: maximize the validation PR-AUC of the anomaly score, the autoencoder fit on normal windows.

    The reconstruction loss cannot rank configurations: a wider bottleneck reconstructs everything better, faults
    included. Only abnormal windows in the validation period show which configuration tells them apart; without
    them a search has nothing to go on (``SearchNotPossible``: the run trains the configured model unless the
    config demands a search) and the threshold falls back to a percentile.
    """
    from sklearn.metrics import average_precision_score

    from shopfloor.families.anomaly_detection.model import AutoencoderHyperModel, anomaly_scores, normal_windows

    validation = windows.part("validation")
    abnormal = int(validation.failure.sum())
    if abnormal == 0 or abnormal == validation.failure.size:
        raise SearchNotPossible(
            "windows",
            f"the validation part holds {abnormal} abnormal of {validation.failure.size} windows: "
            "nothing to score a search on",
            field="hpo",
            expected="abnormal and normal windows in the validation period for a search",
        )
    normal = normal_windows(windows)
    builder = AutoencoderHyperModel(normal.train.shape[1], normal.train.shape[2], normal.mean, normal.std, base)

    def score(model) -> float:
        return float(average_precision_score(validation.failure, anomaly_scores(model, validation.x)))

    # The same PR-AUC with training normal windows in place of the validation ones (as many, so the base rate is
    # the same): a model that memorized its training windows ranks the abnormal ones above those far better.
    abnormal_x = validation.x[validation.failure == 1]
    normal_count = int((validation.failure == 0).sum())
    train_normal = np.resize(
        normal.train[training_sample(len(normal.train), limit=normal_count)], (normal_count, *normal.train.shape[1:])
    )
    train_labels = np.r_[np.zeros(normal_count), np.ones(len(abnormal_x))]

    def train_score(model) -> float:
        errors = anomaly_scores(model, np.concatenate([train_normal, abnormal_x]))
        return float(average_precision_score(train_labels, errors))

    return SearchProblem(
        builder=builder,
        x=normal.train,
        y=normal.targets("train"),
        validation_data=(normal.validation, normal.targets("validation")),
        monitor=ANOMALY_MONITOR,
        label="validation PR-AUC of the anomaly score",
        epoch_score=score,
        first_params=space_defaults(builder),
        train_score=train_score,
    )


def problem_at(path: str, hyperparameters: dict, data_schema: dict, split: dict, config: HpoConfig) -> SearchProblem:
    """The anomaly-detection problem from windows labelled normal/abnormal (already split in time)."""
    from shopfloor.contracts.windows import load_windows

    base = validated(AutoencoderConfig, hyperparameters, "pipeline parameter hyperparameters")
    return anomaly_problem(load_windows(path), base)
