"""The search stage the training pipelines share: setup, parallel workers over one Optuna study, then select."""

from kfp import dsl, kubernetes
from kfp.dsl import PipelineTask
from kfp.dsl.pipeline_channel import PipelineChannel

from shopfloor.components.hpo.component import hpo_select, hpo_setup, hpo_worker

__all__ = ["OPTUNA_SECRET", "search_stage"]

OPTUNA_SECRET = "shopfloor-optuna"


def search_stage(
    data: PipelineChannel,
    hpo: dict,
    hyperparameters: dict,
    data_schema: dict,
    split: dict,
    hpo_workers: list,
    model_name: str,
) -> tuple[PipelineTask, PipelineTask, PipelineTask]:
    """Add hpo-setup, a ``ParallelFor`` of hpo-workers and hpo-select; returns the three tasks (select last).

    The shared study's URL reaches the tasks from the Secret ``shopfloor-optuna`` (optional: a config's own
    ``hpo.storage`` or a disabled search needs none), never through the YAML.
    """
    setup = hpo_setup(data=data, hpo=hpo, hyperparameters=hyperparameters, data_schema=data_schema, split=split)
    setup.set_display_name("hpo-setup")
    with dsl.ParallelFor(hpo_workers, name="hpo-workers") as worker:
        searching = hpo_worker(
            data=data,
            hpo=hpo,
            hyperparameters=hyperparameters,
            data_schema=data_schema,
            split=split,
            study=setup.outputs["study"],
            worker=worker,
        ).set_display_name("hpo-worker")
        searching.set_retry(2).set_cpu_limit("2").set_memory_limit("4G")
    selected = hpo_select(
        data=data,
        hpo=hpo,
        hyperparameters=hyperparameters,
        data_schema=data_schema,
        split=split,
        study=setup.outputs["study"],
        model_name=model_name,
    ).after(searching)
    selected.set_display_name("hpo-select")
    for task in (setup, searching, selected):
        kubernetes.use_secret_as_env(
            task, secret_name=OPTUNA_SECRET, secret_key_to_env={"url": "SHOPFLOOR_OPTUNA_STORAGE"}, optional=True
        )
    return setup, searching, selected
