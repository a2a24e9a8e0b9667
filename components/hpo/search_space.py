"""The bridge between keras-tuner's ``hp`` API and Optuna.

A builder declares its search space once, with ``hp.Int``, ``hp.Float``, ``hp.Choice``, ``hp.Boolean``,
``hp.Fixed`` and ``hp.conditional_scope``. Under keras-tuner it gets a ``keras_tuner.HyperParameters``; under
Optuna it gets ``OptunaHyperParameters``, the same class whose registration asks the trial for a value instead
of taking the default. Conditional hyperparameters are suggested only when active, which is exactly Optuna's
define-by-run search space. ``to_distribution``/``from_distribution`` map each kind both ways.
"""

from __future__ import annotations

import keras_tuner as kt
import optuna
from keras_tuner.src.engine.hyperparameters import hp_types
from keras_tuner.src.engine.hyperparameters.hyperparameter import HyperParameter

__all__ = ["OptunaHyperParameters", "UnsupportedSpace", "from_distribution", "suggest", "to_distribution"]


class UnsupportedSpace(ValueError):
    """A keras-tuner hyperparameter with no Optuna equivalent (e.g. reverse-log sampling)."""


# The distributions a keras-tuner hyperparameter maps to.
_Distribution = (
    optuna.distributions.CategoricalDistribution
    | optuna.distributions.IntDistribution
    | optuna.distributions.FloatDistribution
)


def _log(hp: HyperParameter, name: str) -> bool:
    """Whether a numeric hyperparameter samples on a log scale."""
    if hp.sampling == "reverse_log":
        raise UnsupportedSpace(
            f"hyperparameter '{name}': reverse_log sampling has no Optuna equivalent (expected linear or log)"
        )
    return hp.sampling == "log"


def to_distribution(hp: HyperParameter) -> _Distribution:
    """The Optuna distribution equivalent to one keras-tuner hyperparameter."""
    if isinstance(hp, hp_types.Boolean):
        return optuna.distributions.CategoricalDistribution([False, True])
    if isinstance(hp, hp_types.Fixed):
        return optuna.distributions.CategoricalDistribution([hp.value])
    if isinstance(hp, hp_types.Choice):
        return optuna.distributions.CategoricalDistribution(list(hp.values))
    if isinstance(hp, hp_types.Int):
        log = _log(hp, hp.name)
        if log and hp.step not in (None, 1):
            raise UnsupportedSpace(f"hyperparameter '{hp.name}': a step with log sampling (expected one of them)")
        return optuna.distributions.IntDistribution(
            hp.min_value, hp.max_value, log=log, step=1 if log else hp.step or 1
        )
    if isinstance(hp, hp_types.Float):
        log = _log(hp, hp.name)
        if log and hp.step is not None:
            raise UnsupportedSpace(f"hyperparameter '{hp.name}': a step with log sampling (expected one of them)")
        return optuna.distributions.FloatDistribution(hp.min_value, hp.max_value, log=log, step=hp.step)
    raise UnsupportedSpace(f"hyperparameter '{hp.name}': {type(hp).__name__} is not supported")


def from_distribution(name: str, distribution: optuna.distributions.BaseDistribution):
    """The keras-tuner hyperparameter equivalent to one Optuna distribution (the way back)."""
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        choices = list(distribution.choices)
        if choices == [False, True]:
            return hp_types.Boolean(name)
        if len(choices) == 1:
            return hp_types.Fixed(name, choices[0])
        return hp_types.Choice(name, choices)
    if isinstance(distribution, optuna.distributions.IntDistribution):
        return hp_types.Int(
            name,
            distribution.low,
            distribution.high,
            step=None if distribution.log else distribution.step,
            sampling="log" if distribution.log else "linear",
        )
    if isinstance(distribution, optuna.distributions.FloatDistribution):
        return hp_types.Float(
            name,
            distribution.low,
            distribution.high,
            step=distribution.step,
            sampling="log" if distribution.log else "linear",
        )
    raise UnsupportedSpace(f"hyperparameter '{name}': {type(distribution).__name__} is not supported")


def suggest(trial: optuna.trial.BaseTrial, hp: HyperParameter) -> object:
    """Ask the trial for a value of one keras-tuner hyperparameter."""
    distribution = to_distribution(hp)
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return trial.suggest_categorical(hp.name, distribution.choices)
    if isinstance(distribution, optuna.distributions.IntDistribution):
        return trial.suggest_int(
            hp.name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
        )
    return trial.suggest_float(
        hp.name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
    )


class OptunaHyperParameters(kt.HyperParameters):
    """keras-tuner's ``HyperParameters`` whose values come from an Optuna trial, conditions included."""

    def __init__(self, trial: optuna.trial.BaseTrial):
        super().__init__()
        self.trial = trial

    def _register(self, hyperparameter, overwrite: bool = False):
        """Register the hyperparameter as keras-tuner does; if active, its value is the trial's suggestion."""
        hp = hyperparameter.__class__.from_config(hyperparameter.get_config())
        self._validate_name(hp.name)
        self._hps[hp.name].append(hp)
        self._space.append(hp)
        if not self.is_active(hp):
            return None
        if overwrite or hp.name not in self.values:
            self.values[hp.name] = suggest(self.trial, hp)
        return self.values[hp.name]
