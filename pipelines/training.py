"""The stage every training pipeline shares: search, train, evaluate and explain, then publish and deploy if blessed.

A pipeline brings its own ingest and label steps (what its data needs) and hands the labelled data to this stage
with the model family's registry key; the steps ask the registry for the family, so a new family reuses the stage
unchanged. Sensor pipelines share their ingest and label steps too (``sensor_training``).
"""

import dataclasses
from typing import NamedTuple

from kfp.dsl import HTML, Markdown, Model, PipelineTask
from kfp.dsl.pipeline_channel import PipelineChannel

from shopfloor.components.evaluate.component import evaluate
from shopfloor.components.explain.component import explain
from shopfloor.components.ingest.component import fingerprint_sources, ingest
from shopfloor.components.label.component import label
from shopfloor.components.train.component import train
from shopfloor.pipelines.caching import apply_caching_policy
from shopfloor.pipelines.cluster import with_step_secrets
from shopfloor.pipelines.release import release_if_blessed
from shopfloor.pipelines.search import search_stage

__all__ = [
    "SearchedOutputs",
    "SensorTraining",
    "TrainingOutputs",
    "TrainingTasks",
    "outputs_type",
    "search_train_release",
    "sensor_training",
    "stage_outputs",
]


@dataclasses.dataclass(frozen=True)
class TrainingTasks:
    """The tasks of the stage, for the pipeline's outputs and its per-task settings (no search tasks: None)."""

    setup: PipelineTask | None
    searching: PipelineTask | None
    selected: PipelineTask | None
    trained: PipelineTask
    evaluated: PipelineTask
    explained: PipelineTask
    published: PipelineTask
    served: PipelineTask

    def all(self) -> tuple[PipelineTask, ...]:
        """Every task of the stage, in run order."""
        found = (getattr(self, field.name) for field in dataclasses.fields(self))
        return tuple(task for task in found if task is not None)


class TrainingOutputs(NamedTuple):
    """What a pipeline without a search stage returns: the model, evaluation report, model card, explanations."""

    model: Model
    report: HTML
    model_card: Markdown
    explanation: HTML


class SearchedOutputs(NamedTuple):
    """What a pipeline with its search stage returns: the same, and the search's report."""

    model: Model
    report: HTML
    model_card: Markdown
    explanation: HTML
    search_report: HTML


def outputs_type(search: bool) -> type[TrainingOutputs] | type[SearchedOutputs]:
    """The return type of a training pipeline, with or without its search stage."""
    return SearchedOutputs if search else TrainingOutputs


def stage_outputs(stage: TrainingTasks) -> TrainingOutputs | SearchedOutputs:
    """A training pipeline's outputs from its stage's tasks."""
    released = TrainingOutputs(
        model=stage.trained.outputs["model"],
        report=stage.evaluated.outputs["report"],
        model_card=stage.evaluated.outputs["model_card"],
        explanation=stage.explained.outputs["report"],
    )
    if stage.selected is None:
        return released
    return SearchedOutputs(*released, search_report=stage.selected.outputs["report"])


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
    alerts: dict,
    train_display_name: str = "train",
    search: bool = True,
) -> TrainingTasks:
    """Add the search, train and evaluate tasks of ``family`` on ``data``, and the release under the gate.

    ``search=False`` leaves the search stage out: the model trains with ``hyperparameters`` as given (what a run
    whose search is off needs; on the local runner the three search steps would only pass them through).
    """
    setup = searching = selected = None
    searched = {}
    if search:
        setup, searching, selected = search_stage(
            data, hpo, hyperparameters, data_schema, split, hpo_workers, model_name
        )
        searched = {"searched": selected.outputs["best_hyperparameters"]}
    trained = train(
        data=data,
        hyperparameters=hyperparameters,
        **searched,
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
        alerts=alerts,
    ).set_display_name("evaluate")
    explained = explain(
        data=data,
        model=trained.outputs["model"],
        family=family,
        model_name=model_name,
        data_schema=data_schema,
        split=split,
        gate=gate,
        model_store_uri=model_store_uri,
    ).set_display_name("explain")
    published, served = release_if_blessed(
        evaluated, trained.outputs["model"], profile, model_store_uri, model_name, deployment, alerts
    )
    return TrainingTasks(setup, searching, selected, trained, evaluated, explained, published, served)


@dataclasses.dataclass(frozen=True)
class SensorTraining:
    """The tasks of a sensor pipeline: its fingerprint, ingest and label steps, then the shared stage."""

    fingerprinted: PipelineTask
    ingested: PipelineTask
    labelled: PipelineTask
    stage: TrainingTasks


def sensor_training(
    family: str,
    sensors_uri: str,
    events_uri: str,
    *,
    data_schema: dict,
    labeling: dict,
    hpo: dict,
    hyperparameters: dict,
    hpo_workers: list,
    gate: dict,
    model_name: str,
    model_store_uri: str,
    deployment: dict,
    alerts: dict,
    label_display_name: str = "label",
    train_display_name: str = "train",
    search: bool = True,
) -> SensorTraining:
    """A whole sensor pipeline for ``family``: ingest, label into windows, then the shared stage.

    Every task gets S3 access and its caching from the policy table; ingest is keyed on the sources' fingerprint.
    """
    fingerprinted = fingerprint_sources(data_uri=sensors_uri, other_uri=events_uri, more_uris=[])
    fingerprinted.set_display_name("fingerprint-sources")
    ingested = ingest(
        sensors_uri=sensors_uri,
        events_uri=events_uri,
        data_schema=data_schema,
        sources_fingerprint=fingerprinted.output,
    ).set_display_name("ingest")
    labelled = label(
        sensors=ingested.outputs["sensors"],
        events=ingested.outputs["events"],
        family=family,
        data_schema=data_schema,
        labeling=labeling,
    ).set_display_name(label_display_name)
    stage = search_train_release(
        family,
        labelled.outputs["windows"],
        ingested.outputs["profile"],
        hpo=hpo,
        hyperparameters=hyperparameters,
        hpo_workers=hpo_workers,
        data_schema=data_schema,
        split={},
        gate=gate,
        edge={},
        model_name=model_name,
        model_store_uri=model_store_uri,
        deployment=deployment,
        alerts=alerts,
        train_display_name=train_display_name,
        search=search,
    )
    tasks = (fingerprinted, ingested, labelled, *stage.all())
    apply_caching_policy(*tasks)
    for task in tasks:
        with_step_secrets(task)  # MinIO and the plant's credentials; no Secret value enters the YAML
    return SensorTraining(fingerprinted, ingested, labelled, stage)
