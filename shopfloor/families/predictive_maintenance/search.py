"""The failure/RUL window model's search problem: its space over the labelled windows, scored by validation PR-AUC."""

from __future__ import annotations

import keras_tuner as kt

from shopfloor.common.config import HpoConfig, validated
from shopfloor.common.errors import DataValidationError
from shopfloor.families.predictive_maintenance.config import ModelConfig
from shopfloor.families.search import SearchProblem, training_sample

__all__ = [
    "PM_MONITOR",
    "problem_at",
    "builder_for",
    "window_problem",
]


PM_MONITOR = "val_failure_pr_auc"


def builder_for(windows, base: ModelConfig, config: HpoConfig, source: str = "hpo config"):
    """The window model's builder for this data; refuses a space or data that cannot work, before any training."""
    from shopfloor.families.predictive_maintenance.hypermodel import PredictiveMaintenanceHyperModel
    from shopfloor.families.shared import feature_statistics

    train, validation = windows.part("train"), windows.part("validation")
    if train.failure.sum() == 0 or validation.failure.size == 0:
        raise DataValidationError(
            "windows",
            "training split has no failures or validation split is empty",
            field="labeling",
            expected="failures in training and a non-empty validation split",
        )
    mean, std = feature_statistics(train.x)
    builder = PredictiveMaintenanceHyperModel(
        window=train.x.shape[1],
        features=train.x.shape[2],
        mean=mean,
        std=std,
        rul_cap_hours=float(windows.info["rul_cap_hours"]),
        base=base,
    )
    return builder


def window_problem(windows, builder: kt.HyperModel) -> SearchProblem:
    """Failure/RUL windows: maximize the validation failure PR-AUC (rare failures: precision matters)."""
    train, validation = windows.part("train"), windows.part("validation")
    sample = training_sample(len(train.x))
    sample_x = train.x[sample]
    sample_y = {"failure": train.failure[sample].astype("float32"), "rul": train.rul[sample]}

    def train_score(model) -> float:
        """The validation monitor's metric (Keras' PR-AUC of failure) on the training sample."""
        scores = model.evaluate(sample_x, sample_y, batch_size=4096, verbose=0, return_dict=True)
        return float(scores[PM_MONITOR.removeprefix("val_")])

    return SearchProblem(
        builder=builder,
        x=train.x,
        y={"failure": train.failure.astype("float32"), "rul": train.rul},
        validation_data=(validation.x, {"failure": validation.failure.astype("float32"), "rul": validation.rul}),
        monitor=PM_MONITOR,
        label="validation PR-AUC",
        train_score=train_score,
    )


def problem_at(path: str, hyperparameters: dict, data_schema: dict, split: dict, config: HpoConfig) -> SearchProblem:
    """The predictive-maintenance problem from a labelled-windows artifact (already split; the schema is not needed)."""
    from shopfloor.contracts.windows import load_windows

    windows = load_windows(path)
    base = validated(ModelConfig, hyperparameters, "pipeline parameter hyperparameters")
    return window_problem(windows, builder_for(windows, base, config))
