"""The keras-tuner <-> Optuna bridge, the builder's space, and the checks that run before any training."""

from __future__ import annotations

import keras_tuner as kt
import numpy as np
import optuna
import pytest
from keras_tuner.src.engine.hyperparameters import hp_types
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from shopfloor.common.config import HpoConfig
from shopfloor.common.errors import ConfigError, DataValidationError
from shopfloor.common.hyperparameters import fitting_kernels
from shopfloor.components.hpo.search import best_model_config, create_study, load_study, open_storage, summarize
from shopfloor.components.hpo.search_space import (
    OptunaHyperParameters,
    UnsupportedSpace,
    from_distribution,
    suggest,
    to_distribution,
)
from shopfloor.families.predictive_maintenance.config import LabelingConfig, ModelConfig, PredictiveMaintenanceConfig
from shopfloor.families.predictive_maintenance.search import builder_for, window_problem
from shopfloor.families.scenarios import parse_config

KINDS = [
    (hp_types.Int("a", 1, 9), IntDistribution(1, 9, step=1)),
    (hp_types.Int("b", 16, 128, step=16), IntDistribution(16, 128, step=16)),
    (hp_types.Int("c", 1, 1024, sampling="log"), IntDistribution(1, 1024, log=True)),
    (hp_types.Float("d", 0.0, 0.5), FloatDistribution(0.0, 0.5)),
    (hp_types.Float("e", 0.0, 0.5, step=0.1), FloatDistribution(0.0, 0.5, step=0.1)),
    (hp_types.Float("f", 1e-4, 1e-2, sampling="log"), FloatDistribution(1e-4, 1e-2, log=True)),
    (hp_types.Choice("g", [128, 256, 512]), CategoricalDistribution([128, 256, 512])),
    (hp_types.Choice("h", ["relu", "gelu"]), CategoricalDistribution(["relu", "gelu"])),
    (hp_types.Boolean("i"), CategoricalDistribution([False, True])),
    (hp_types.Fixed("j", 3), CategoricalDistribution([3])),
]


@pytest.mark.parametrize(("hp", "distribution"), KINDS, ids=[hp.name for hp, _ in KINDS])
def test_every_kind_maps_to_optuna_and_back(hp, distribution) -> None:
    assert to_distribution(hp) == distribution
    back = from_distribution(hp.name, distribution)
    assert type(back) is type(hp)
    assert to_distribution(back) == distribution


def test_spaces_optuna_cannot_express_are_refused_by_name() -> None:
    with pytest.raises(UnsupportedSpace, match="'r': reverse_log"):
        to_distribution(hp_types.Float("r", 0.1, 1.0, sampling="reverse_log"))
    with pytest.raises(UnsupportedSpace, match="'s': a step with log sampling"):
        to_distribution(hp_types.Float("s", 0.1, 1.0, step=2, sampling="log"))


def test_suggest_uses_the_trial_and_respects_bounds() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        trial = study.ask()
        for hp, _ in KINDS:
            value = suggest(trial, hp)
            assert (
                value in to_distribution(hp).choices
                if hasattr(to_distribution(hp), "choices")
                else (hp.min_value <= value <= hp.max_value)
            )
        study.tell(trial, 0.0)


def space(hp: kt.HyperParameters) -> tuple:
    kind = hp.Choice("kind", ["dense", "conv"])
    with hp.conditional_scope("kind", ["conv"]):
        kernel = hp.Choice("kernel", [3, 5])
    return kind, kernel, hp.Int("units", 8, 64, step=8)


def test_conditional_values_are_suggested_only_when_active() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        kind, kernel, units = space(OptunaHyperParameters(trial))
        assert ("kernel" in trial.params) == (kind == "conv")
        assert (kernel is None) == (kind == "dense")
        assert trial.params["units"] == units
        seen.add(kind)
        study.tell(trial, float(units))
    assert seen == {"dense", "conv"}
    # the same builder code runs under keras-tuner unchanged
    assert space(kt.HyperParameters()) == ("dense", None, 8)


def test_fixed_trial_values_flow_through_the_builder(trained_windows) -> None:
    builder = builder_for(trained_windows, ModelConfig(), HpoConfig())
    params = {
        "conv_filters": 0,
        "dense_layers": 2,
        "units_0": 32,
        "units_1": 48,
        "dropout": 0.2,
        "weight_decay": 0.1,
        "learning_rate": 0.003,
        "batch_size": 128,
    }
    config = builder.space(OptunaHyperParameters(optuna.trial.FixedTrial(params)))
    assert config.hidden_units == [32, 48] and config.conv_filters == 0 and config.batch_size == 128
    assert config.weight_decay == 0.1
    assert best_model_config(params, builder) == config, "the way back gives the same config"
    assert config.kernel_size == ModelConfig().kernel_size, "an inactive kernel size keeps the base value"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("hpo: {trials: 0}", "hpo.trials"),
        ("hpo: {timeout_s: -5}", "hpo.timeout_s"),
        ("hpo: {workers: 0}", "hpo.workers"),
        ("hpo: {builder: transformer}", "hpo.builder"),
        ("hpo: {builder: visual-inspection}", "hpo: .*builder 'visual-inspection' searches another scenario's model"),
    ],
)
def test_bad_budgets_fail_at_config_load(text: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        parse_config(text, "plant.yaml")


def test_a_short_window_narrows_the_space_instead_of_refusing_it(small_demo_data) -> None:
    # before: "kernel sizes [5, 7] are longer than the window of 4" although the configured model trains on it
    from shopfloor.components.ingest.ingest import ingest
    from shopfloor.families.predictive_maintenance.labelling import label_windows

    config = PredictiveMaintenanceConfig().resolve_data(small_demo_data)
    result = ingest(config.data.sensors, config.data.events, config.data)
    short = label_windows(
        result.sensors, result.events, result.features, ["failure"], LabelingConfig(window=4, test_fraction=0.34)
    )
    builder = builder_for(short, ModelConfig(), HpoConfig())
    hp = kt.HyperParameters()
    builder.space(hp)
    assert next(h for h in hp.space if h.name == "kernel_size").values == [3]
    assert fitting_kernels([3, 5, 7], 2) == [2] and fitting_kernels([3, 5, 7], 24) == [3, 5, 7]


def test_a_search_with_nothing_completed_is_an_error(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    create_study(open_storage(url), "empty", trials=2)
    with pytest.raises(Exception, match="no trial completed within the budget"):
        summarize(load_study(open_storage(url), "empty", seed=0))


@pytest.mark.slow  # 10-20 s of real training, search or load: runs with the whole suite
def test_real_objective_runs_and_prunes(trained_windows, tmp_path) -> None:
    from shopfloor.components.hpo.search import make_objective, run_worker

    url = f"sqlite:///{tmp_path / 'real.db'}"
    create_study(open_storage(url), "real", trials=3)
    study = load_study(open_storage(url), "real", seed=0)
    builder = builder_for(trained_windows, ModelConfig(), HpoConfig())
    objective = make_objective(window_problem(trained_windows, builder), max_epochs=2, seed=0)
    assert run_worker(study, objective, deadline=1e12) == 3
    summary = summarize(study)
    assert sum(summary.by_state.values()) == 3 and 0.0 <= summary.best_value <= 1.0
    assert set(summary.best_params) >= {"conv_filters", "dense_layers", "learning_rate", "batch_size"}


def test_pruning_reports_the_best_score_so_far_per_epoch_trained() -> None:
    from shopfloor.components.hpo.search import pruning_callback

    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    callback = pruning_callback(trial, "val_score")
    for epoch, score in enumerate([0.4, 0.6, 0.5]):
        callback.on_epoch_end(epoch, {"val_score": score})
    frozen = study.trials[0]
    assert frozen.intermediate_values == {1: 0.4, 2: 0.6, 3: 0.6}, "the running best (what the objective returns)"
    assert not callback.pruned


def test_a_worker_leaves_the_garbage_collector_as_it_found_it(tmp_path) -> None:
    import gc

    from shopfloor.components.hpo.search import run_worker

    url = f"sqlite:///{tmp_path / 'gc.db'}"
    create_study(open_storage(url), "gc", trials=2)
    frozen_during: list[int] = []

    def objective(trial: optuna.trial.Trial) -> float:
        frozen_during.append(gc.get_freeze_count())
        return trial.suggest_float("x", 0.0, 1.0)

    before = gc.get_freeze_count()
    assert run_worker(load_study(open_storage(url), "gc", seed=0), objective, deadline=1e12) == 2
    assert min(frozen_during) > before and gc.get_freeze_count() == before


def test_balanced_accuracy_weighs_every_class_alike() -> None:
    from shopfloor.families.visual_inspection.search import balanced_accuracy

    labels = np.array([0, 0, 0, 0, 0, 0, 1, 2])
    assert balanced_accuracy(labels, np.zeros(8, int)) == pytest.approx(1 / 3), "all-ok scores a third, not 75%"
    assert balanced_accuracy(labels, labels) == 1.0


@pytest.mark.slow  # 10-20 s of real training, search or load: runs with the whole suite
def test_the_image_search_starts_from_the_configured_cnn_and_hands_back_a_cnn_config(vision_trained, tmp_path) -> None:
    from shopfloor.components.hpo.search import make_objective, run_worker
    from shopfloor.families.visual_inspection.config import CnnConfig
    from shopfloor.families.visual_inspection.search import IMAGE_MONITOR, image_problem

    problem = image_problem(vision_trained.images, CnnConfig())
    assert problem.monitor == IMAGE_MONITOR and problem.fit_options["class_weight"]
    url = f"sqlite:///{tmp_path / 'images.db'}"
    create_study(open_storage(url), "images", trials=2, objective=problem.label, first_params=problem.first_params)
    study = load_study(open_storage(url), "images", seed=0)
    assert run_worker(study, make_objective(problem, max_epochs=2, seed=0), deadline=1e12) == 2
    first = study.trials[0]
    assert first.params == problem.first_params and best_model_config(first.params, problem.builder) == CnnConfig()
    from shopfloor.components.hpo.search import OverfitPenalty

    for trial in study.trials:  # scored on validation, less the penalty for its gap to the training score
        attrs = trial.user_attrs
        assert 0.0 <= attrs["train_score"] <= 1.0 and attrs["epoch"] in (1, 2)
        assert trial.value == pytest.approx(OverfitPenalty().score(attrs["validation_score"], attrs["train_score"]))
    summary = summarize(study)
    assert 0.0 < summary.best_value <= 1.0 and study.user_attrs["objective"] == "validation balanced accuracy"
    chosen = best_model_config(summary.best_params, problem.builder)
    assert isinstance(chosen, CnnConfig) and chosen.epochs == CnnConfig().epochs, "the schedule stays the model's"


def test_the_anomaly_search_scores_anomalies_and_refuses_a_validation_period_without_them(
    anomaly_windows, tmp_path
) -> None:
    import dataclasses

    from shopfloor.components.hpo.search import make_objective, run_worker
    from shopfloor.contracts.windows import SPLITS
    from shopfloor.families.anomaly_detection.config import AutoencoderConfig
    from shopfloor.families.anomaly_detection.search import ANOMALY_MONITOR, anomaly_problem

    problem = anomaly_problem(anomaly_windows, AutoencoderConfig())
    assert problem.monitor == ANOMALY_MONITOR and best_model_config(problem.first_params, problem.builder) == (
        AutoencoderConfig()
    )
    url = f"sqlite:///{tmp_path / 'anomaly.db'}"
    create_study(open_storage(url), "ad", trials=2, objective=problem.label, first_params=problem.first_params)
    study = load_study(open_storage(url), "ad", seed=0)
    assert run_worker(study, make_objective(problem, max_epochs=2, seed=0), deadline=1e12) == 2
    summary = summarize(study)
    assert 0.0 < summary.best_value <= 1.0 and study.trials[0].params == problem.first_params
    assert isinstance(best_model_config(summary.best_params, problem.builder), AutoencoderConfig)

    validation = anomaly_windows.part("validation")
    in_validation = anomaly_windows.split == SPLITS.index("validation")
    normal_only = dataclasses.replace(anomaly_windows, failure=np.where(in_validation, 0, anomaly_windows.failure))
    assert validation.failure.sum() > 0
    with pytest.raises(DataValidationError, match=r"hpo: the validation part holds 0 abnormal of \d+ windows"):
        anomaly_problem(normal_only, AutoencoderConfig())


@pytest.mark.parametrize(
    ("scenario", "builder", "trials"),
    [("predictive-maintenance", "predictive-maintenance", 8), ("anomaly-detection", "anomaly-detection", 8),
     ("visual-inspection", "visual-inspection", 6)],
)  # fmt: skip
def test_a_partial_hpo_section_overrides_the_scenarios_own_search_defaults(scenario, builder, trials) -> None:
    config = parse_config(f"scenario: {scenario}\nhpo: {{enabled: false, max_epochs: 3}}\n", "plant.yaml")
    assert (config.hpo.enabled, config.hpo.max_epochs) == (False, 3)
    assert (config.hpo.builder, config.hpo.trials) == (builder, trials)
