"""What a study searches: the model family named by ``hpo.builder`` makes its ``SearchProblem`` from the data.

Each family reads the step's input artifact the way it needs (labelled windows, or the labelled image manifest
with its schema and split) and refuses a space or data that cannot work before any trial trains. The search
itself (``shopfloor.components.hpo.search``) only sees a ``SearchProblem``.
"""

from __future__ import annotations

from shopfloor.common.config import HpoConfig
from shopfloor.families.base import StepInputs
from shopfloor.families.registry import family
from shopfloor.families.search import SearchProblem

__all__ = ["load_problem"]


def load_problem(config: HpoConfig, path: str, hyperparameters: dict, data_schema: dict, split: dict) -> SearchProblem:
    """The search problem of the family ``config.builder`` over the data artifact at ``path``."""
    inputs = StepInputs(data_schema=data_schema, split=split)
    return family(config.builder).search_problem(path, hyperparameters, inputs, config)
