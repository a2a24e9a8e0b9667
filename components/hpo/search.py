"""The search: one Optuna study shared by parallel workers, with exactly the requested number of trials.

How trials are never lost or duplicated when workers run at once or one dies:
- The setup step (one process) creates the study and enqueues one *ticket* (a waiting trial) per requested
  trial. Workers only run tickets: Optuna hands each waiting trial to exactly one worker (its state change is
  atomic in the storage), and a trial the sampler would create beyond the tickets is recognized and closed as
  surplus without training.
- Workers record heartbeats; a trial whose worker died goes stale, is marked failed by the next worker to look,
  and ``RetryHeartbeatStaleTrialCallback`` enqueues it again with the same parameters, so someone finishes it. Workers
  keep polling while any trial is still running, so a stale one is always picked up.
What is searched (builder, data, score) is a ``shopfloor.components.hpo.problems.SearchProblem``.
Sampling and pruning (measured with ``bench/hpo_search.py`` against keras-tuner): multivariate TPE with a constant
liar for parallel workers; every trial trains from the same seed (common random numbers), so trials differ by their
hyperparameters, not by initialization luck; a percentile pruner stops only the bottom quarter, from epoch 2 on.
What a trial scores does not reward overfitting: each epoch's validation score loses ``hpo.overfit_penalty`` times
its gap below the same score on the training data beyond ``hpo.overfit_tolerance`` (``OverfitPenalty``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from collections.abc import Callable, Iterator

import optuna
from optuna.trial import TrialState

from shopfloor.common.config import HpoConfig
from shopfloor.common.errors import ConfigError, DataValidationError
from shopfloor.common.progress import report_progress
from shopfloor.components.hpo.search_space import OptunaHyperParameters
from shopfloor.families.search import SearchProblem

__all__ = [
    "OverfitPenalty",
    "SearchSummary",
    "best_model_config",
    "create_study",
    "is_ticket",
    "load_study",
    "make_objective",
    "open_storage",
    "overfit_callback",
    "run_worker",
    "storage_url",
    "summarize",
]

SURPLUS_ATTR = "shopfloor_surplus"
TICKET_ATTR = "shopfloor_ticket"
STARTUP_TRIALS = 4
VALIDATION_BATCH = 4096
SEARCH_SCORE = "search_score"  # the per-epoch value the pruner and the objective read (validation, penalized)
TRAIN_SCORE = "train_score"  # the problem's score on its training sample, in the same epoch's logs


class _Surplus(Exception):
    """A trial created beyond the tickets (two workers raced for the last one); closed without training."""


def storage_url(config: HpoConfig) -> str:
    """The storage URL: the config's, else ``SHOPFLOOR_OPTUNA_STORAGE`` (set from a Kubernetes Secret)."""
    import os

    url = config.storage or os.environ.get("SHOPFLOOR_OPTUNA_STORAGE", "")
    if not url:
        raise ConfigError(
            "hpo config",
            "no Optuna storage",
            field="hpo.storage",
            expected="a storage URL, or SHOPFLOOR_OPTUNA_STORAGE in the environment",
        )
    return url


def _redacted(url: str) -> str:
    """The storage URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    with contextlib.suppress(Exception):
        return make_url(url).render_as_string(hide_password=True)
    return "(unparsable URL)"


def open_storage(url: str, heartbeat_s: int = 5, grace_s: int = 20) -> optuna.storages.RDBStorage:
    """An RDB storage (SQLite, PostgreSQL, MySQL/MariaDB) with heartbeats and retry of stale trials."""
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=heartbeat_s,
                grace_period=grace_s,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
            )
    except Exception as exc:
        raise ConfigError(
            "hpo config",
            f"cannot open Optuna storage {_redacted(url)} ({type(exc).__name__})",
            field="hpo.storage",
            expected="a reachable database URL",
        ) from None


def create_study(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    trials: int,
    objective: str = "score",
    first_params: dict | None = None,
) -> None:
    """Create the study and its tickets: exactly ``trials`` waiting trials for the workers to run.

    ``objective`` names what is maximized (shown in progress and the report); ``first_params`` make the first
    ticket a fixed configuration (the configured model), the sampler chooses the others.
    """
    study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize")
    study.set_user_attr("requested_trials", trials)
    study.set_user_attr("objective", objective)
    for index in range(trials):
        params = first_params if index == 0 and first_params else {}
        study.enqueue_trial(params, user_attrs={TICKET_ATTR: True}, skip_if_exists=False)


def make_sampler(seed: int) -> optuna.samplers.BaseSampler:
    """TPE: multivariate and grouped (the space is conditional), a constant liar so parallel workers spread out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed, constant_liar=True, n_startup_trials=STARTUP_TRIALS, multivariate=True, group=True
        )


def make_pruner() -> optuna.pruners.BasePruner:
    """Stop a trial whose best-so-far PR-AUC is in the bottom quarter at the same epoch, from epoch 2 on.

    Only the bottom quarter: a trial's start-up (graph tracing, first epoch) costs about as much as its next three
    epochs, so stopping a trial early saves little, and slow starters (large batches: few steps per epoch) often
    finish among the best; the median pruner stopped them too. Hyperband/successive halving were no better here:
    with a dozen trials they keep almost only the early leader.
    """
    return optuna.pruners.PercentilePruner(75.0, n_startup_trials=3, n_warmup_steps=2)


def load_study(storage: optuna.storages.BaseStorage, study_name: str, seed: int) -> optuna.Study:
    """The shared study with this worker's sampler and the pruner."""
    return optuna.load_study(study_name=study_name, storage=storage, sampler=make_sampler(seed), pruner=make_pruner())


def is_ticket(trial: optuna.trial.BaseTrial | optuna.trial.FrozenTrial) -> bool:
    """Whether a trial is one of the study's tickets (enqueued by setup; a retry keeps its user attributes)."""
    return trial.user_attrs.get(TICKET_ATTR) is True


@dataclasses.dataclass(frozen=True)
class OverfitPenalty:
    """A trial's score that does not reward overfitting: validation minus ``weight`` x the gap beyond ``tolerance``.

    The gap is the problem's score on its training data minus the validation score (the same score, the model in
    inference mode). A configuration that memorizes the training data looks as good as it is lucky on a small
    validation split; the penalty prefers one that reaches the same validation score without the gap. ``weight`` 0
    scores plain validation.
    """

    weight: float = 0.5
    tolerance: float = 0.05

    def score(self, validation: float, train: float) -> float:
        """The penalized score of one epoch."""
        return validation - self.weight * max(0.0, train - validation - self.tolerance)


def overfit_callback(monitor: str, train_score: Callable[[object], float] | None, penalty: OverfitPenalty):
    """A Keras callback that adds ``train_score`` and the penalized ``search_score`` to each epoch's logs.

    Without a training score (or with weight 0) the search score is the validation score as it was.
    """
    import keras

    class _Overfit(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if logs is None:
                return
            validation = float(logs.get(monitor, 0.0))
            if train_score is None or penalty.weight == 0:
                logs[SEARCH_SCORE] = validation
                return
            train = float(train_score(self.model))
            logs[TRAIN_SCORE] = train
            logs[SEARCH_SCORE] = penalty.score(validation, train)

    return _Overfit()


def pruning_callback(trial: optuna.trial.Trial, monitor: str):
    """A Keras callback that reports the best validation score so far each epoch and stops a pruned trial.

    The reported value is the running maximum, the same quantity the objective returns (the best epoch), so the
    pruner compares like with like; the step is the number of epochs trained (the pruner's resource). The best
    epoch's logs are kept (``best_logs``) so the trial can record its validation and training scores.
    """
    import keras

    class _Pruning(keras.callbacks.Callback):
        pruned = False
        best = float("-inf")
        best_logs: dict = {}

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            value = float((logs or {}).get(monitor, 0.0))
            if value > self.best:
                self.best, self.best_logs = value, {"epoch": epoch + 1, **(logs or {})}
            trial.report(self.best, epoch + 1)
            if trial.should_prune():
                self.pruned = True
                self.model.stop_training = True

    return _Pruning()


def scoring_callback(monitor: str, score: Callable[[object], float]):
    """A Keras callback that adds ``monitor`` = ``score(model)`` to each epoch's logs, before the pruner reads them."""
    import keras

    class _Scoring(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if logs is not None:
                logs[monitor] = score(self.model)

    return _Scoring()


def make_objective(
    problem: SearchProblem, max_epochs: int, seed: int, penalty: OverfitPenalty | None = None
) -> Callable:
    """The objective: train the problem's model for one trial, return its best (penalized) validation score.

    The score of an epoch is ``penalty``'s (default: ``OverfitPenalty()``) of its validation and training scores;
    the trial records the best epoch's ``validation_score``, ``train_score`` and ``epoch`` as user attributes.

    Every trial starts from the same ``seed`` (common random numbers: same initialization stream, same shuffling),
    so two trials differ by their hyperparameters, not by initialization luck, which on the demo data moves PR-AUC as
    much as the hyperparameters do and misled TPE (bench, seeds 7 and 11, same sampler and pruner: best 0.813 and
    0.795 with one seed, 0.790 and 0.747 with per-trial seeds). A retried trial also reproduces the original.
    Validation runs in large batches (the metric is the same; fewer steps).
    """
    import keras

    builder = problem.builder
    validation_batch = max(1, min(len(problem.validation_data[0]), VALIDATION_BATCH))
    penalty = penalty if penalty is not None else OverfitPenalty()

    def objective(trial: optuna.trial.Trial) -> float:
        keras.backend.clear_session(free_memory=False)  # as keras-tuner does; run_worker collects the garbage
        hp = OptunaHyperParameters(trial)
        keras.utils.set_random_seed(seed)
        model = builder.build(hp)
        pruning = pruning_callback(trial, SEARCH_SCORE)
        scoring = [scoring_callback(problem.monitor, problem.epoch_score)] if problem.epoch_score else []
        scoring.append(overfit_callback(problem.monitor, problem.train_score, penalty))
        builder.fit(
            hp,
            model,
            problem.x,
            problem.y,
            validation_data=problem.validation_data,
            epochs=max_epochs,
            verbose=0,
            shuffle=True,
            validation_batch_size=validation_batch,
            callbacks=[*scoring, pruning],
            **problem.fit_options,
        )
        best = pruning.best_logs
        for name, key in (("validation_score", problem.monitor), ("train_score", TRAIN_SCORE), ("epoch", "epoch")):
            if key in best:
                trial.set_user_attr(name, int(best[key]) if name == "epoch" else float(best[key]))
        if pruning.pruned:
            raise optuna.TrialPruned
        return pruning.best

    return objective


def _progress(requested: int) -> Callable:
    """A study callback that reports each finished ticket on screen (and in the pod log)."""

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.user_attrs.get(SURPLUS_ATTR):
            return
        done = len([t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))])
        objective = study.user_attrs.get("objective", "score")
        value = f"{objective} {trial.value:.3f}" if trial.value is not None else trial.state.name.lower()
        best = ""
        with contextlib.suppress(ValueError):
            best = f", best {study.best_value:.3f}"
        report_progress(f"trial {done}/{requested}: {value}{best}")

    return report


def _tickets_only(objective: Callable) -> Callable:
    """Wrap an objective so a trial that is not a ticket (lost race for the last one) closes without running."""

    def guarded(trial: optuna.trial.Trial) -> float:
        if not is_ticket(trial):
            trial.set_user_attr(SURPLUS_ATTR, True)
            raise _Surplus
        return objective(trial)

    return guarded


def run_worker(study: optuna.Study, objective: Callable, deadline: float, poll_s: float = 1.0) -> int:
    """Run tickets until none is waiting or running (or the time budget ends); returns how many ran here."""
    requested = int(study.user_attrs.get("requested_trials", 0))
    objective = _tickets_only(objective)
    ran = 0
    with _frozen_heap():
        while time.time() < deadline:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            open_trials = study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))
            if any(t.state == TrialState.WAITING for t in open_trials):
                study.optimize(
                    objective, n_trials=1, catch=(_Surplus,), callbacks=[_progress(requested)], gc_after_trial=True
                )
                ran += 1
            elif open_trials:  # another worker is busy, or a dead one's trial will turn stale and be retried
                time.sleep(poll_s)
            else:
                break
    return ran


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """Freeze the objects alive before the trials (TensorFlow's modules: millions) out of the garbage collector.

    The collection after each trial then scans only what trials created: about 0.3 s less per trial on 2 cores
    (it walked every TensorFlow object each time). Unfrozen afterwards, so the process is left as it was.
    """
    import gc

    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def best_model_config(params: dict, builder):
    """The model config a trial's parameters choose (keras-tuner values -> the train step's config)."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    hp.values.update(params)
    return builder.space(hp)


@dataclasses.dataclass(frozen=True)
class SearchSummary:
    """What the search did: trials by state, the best value and parameters."""

    requested: int
    by_state: dict[str, int]
    retried: int
    surplus: int
    best_value: float
    best_params: dict


def _retry_of(trial: optuna.trial.FrozenTrial) -> int | None:
    """The number of the stale trial this one retries, if it is a retry."""
    return optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)


def summarize(study: optuna.Study) -> SearchSummary:
    """Count the study's trials and find the best; an empty search is an error, not a silent default."""
    tickets = [t for t in study.trials if not t.user_attrs.get(SURPLUS_ATTR)]
    by_state: dict[str, int] = {}
    for trial in tickets:
        by_state[trial.state.name] = by_state.get(trial.state.name, 0) + 1
    completed = [t for t in tickets if t.state == TrialState.COMPLETE]
    if not completed:
        raise DataValidationError(
            f"study {study.study_name}",
            "no trial completed within the budget",
            field="hpo",
            expected="a larger timeout_s or more max_epochs",
        )
    # (value, trial): a COMPLETE trial of a single-objective study always has its value
    valued = [(t.value, t) for t in completed if t.value is not None]
    best_value, best = max(valued, key=lambda pair: pair[0])
    return SearchSummary(
        requested=int(study.user_attrs.get("requested_trials", 0)),
        by_state=by_state,
        retried=len([t for t in tickets if _retry_of(t) is not None]),
        surplus=len(study.trials) - len(tickets),
        best_value=float(best_value),
        best_params=dict(best.params),
    )
