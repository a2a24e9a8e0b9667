"""The stage every training pipeline shares: search, train, evaluate, then publish and deploy if blessed.

A pipeline brings its own ingest and label steps (what its data needs) and hands the labelled data to this stage
with the model family's registry key; the steps ask the registry for the family, so a new family reuses the stage
unchanged.
"""

from __future__ import annotations

import dataclasses

from kfp.dsl import PipelineTask
from kfp.dsl.pipeline_channel import PipelineChannel

from shopfloor.components.evaluate.component import evaluate
from shopfloor.components.train.component import train
from shopfloor.pipelines.release import release_if_blessed
from shopfloor.pipelines.search import search_stage

__all__ = ["TrainingTasks", "search_train_release"]


@dataclasses.dataclass(frozen=True)
class TrainingTasks:
    """The tasks of the stage, for the pipeline's outputs and its per-task settings."""

    setup: PipelineTask
    searching: PipelineTask
    selected: PipelineTask
    trained: PipelineTask
    evaluated: PipelineTask
    published: PipelineTask
    served: PipelineTask

    def all(self) -> tuple[PipelineTask, ...]:
        """Every task of the stage, in run order."""
        return tuple(getattr(self, field.name) for field in dataclasses.fields(self))


def search_train_release(
    family: str,
    data: PipelineChannel,
    profile: PipelineChannel,
    *,
    hpo: dict,
    hyperparameters: dict,
    hpo_workers: list,
    data_schema: dict,
    split: dict,
    gate: dict,
    edge: dict,
    model_name: str,
    model_store_uri: str,
    deployment: dict,
    train_display_name: str = "train",
) -> TrainingTasks:
    """Add the search, train and evaluate tasks of ``family`` on ``data``, and the release under the gate."""
    setup, searching, selected = search_stage(data, hpo, hyperparameters, data_schema, split, hpo_workers, model_name)
    trained = train(
        data=data,
        hyperparameters=selected.outputs["best_hyperparameters"],
        family=family,
        data_schema=data_schema,
        split=split,
        gate=gate,
        edge=edge,
    ).set_display_name(train_display_name)
    trained.set_cpu_limit("4").set_memory_limit("8G")
    evaluated = evaluate(
        data=data,
        model=trained.outputs["model"],
        history=trained.outputs["history"],
        profile=profile,
        family=family,
        model_name=model_name,
        data_schema=data_schema,
        split=split,
        gate=gate,
        model_store_uri=model_store_uri,
    ).set_display_name("evaluate")
    published, served = release_if_blessed(
        evaluated, trained.outputs["model"], profile, model_store_uri, model_name, deployment
    )
    return TrainingTasks(setup, searching, selected, trained, evaluated, published, served)
