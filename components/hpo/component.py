"""KFP wrappers for the search: setup (study + tickets), parallel workers, select (best configuration).

Each step reads the data artifact the way ``hpo.builder``'s model family needs (``shopfloor.components.hpo.problems``):
labelled windows for predictive maintenance, the labelled image manifest (read with ``data_schema`` = the image
schema and ``split``) for visual inspection. On a cluster the workers are parallel tasks of a ``dsl.ParallelFor``
sharing one study in PostgreSQL or MySQL (URL from the Secret ``shopfloor-optuna``); on one machine they share a
SQLite file. The logic is ``shopfloor.components.hpo.search``.
"""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Output

from shopfloor.components._image import IMAGE

__all__ = ["hpo_select", "hpo_setup", "hpo_worker"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def hpo_setup(
    data: Input[Dataset], hpo: dict, hyperparameters: dict, data_schema: dict, split: dict, study: Output[Artifact]
):
    """Check the budget, the builder and that its space fits the data, then create the study and its tickets.

    Args:
        data: labelled windows, or a labelled image manifest (train and validation splits are searched on).
        hpo: enabled, builder, trials, timeout_s, max_epochs, storage, seed (``HpoConfig``).
        hyperparameters: the model section; searched values override it.
        data_schema: the data's schema (for images: classes, ok_class, image_size, color_mode, as the train step).
        split: how images are split (``ImageSplitConfig``); {} for windows (split at labeling).
        study: JSON ``{"name": ...}`` of the new study (unique per run); name "" when the search is disabled.
            An artifact, not a string output: kfp 2.17's local runner hands a ParallelFor body the loop item in
            place of another task's output parameter, while artifacts arrive intact.
    """
    from shopfloor.common.storage import write_json
    from shopfloor.components.hpo.steps import run_hpo_setup

    name = run_hpo_setup(hpo, data.path, hyperparameters, data_schema, split)
    write_json(study.path, {"name": name})
    if name:
        study.metadata["name"] = name


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def hpo_worker(
    data: Input[Dataset],
    hpo: dict,
    hyperparameters: dict,
    data_schema: dict,
    split: dict,
    study: Input[Artifact],
    worker: int,
) -> int:
    """Run the study's trials until none is left (or the time budget ends), alongside the other workers.

    Args:
        data: labelled windows, or a labelled image manifest.
        hpo: the search settings (``HpoConfig``).
        hyperparameters: the model section.
        data_schema: the data's schema (as for setup).
        split: the image split (as for setup).
        study: the study created by setup (name "" = search disabled: nothing to do).
        worker: this worker's index (seeds its sampler).

    Returns:
        How many trials this worker ran.
    """
    from shopfloor.common.storage import read_json
    from shopfloor.components.hpo.steps import run_hpo_worker

    name = read_json(study.path)["name"]
    return run_hpo_worker(name, hpo, data.path, hyperparameters, data_schema, split, worker)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def hpo_select(
    data: Input[Dataset],
    hpo: dict,
    hyperparameters: dict,
    data_schema: dict,
    split: dict,
    study: Input[Artifact],
    model_name: str,
    best_hyperparameters: Output[Artifact],
    search_metrics: Output[Metrics],
    report: Output[HTML],
):
    """Read the best trial and hand its configuration to training, with a report of the search.

    Args:
        data: labelled windows, or a labelled image manifest.
        hpo: the search settings (``HpoConfig``).
        hyperparameters: the model section; the best trial's values override it.
        data_schema: the data's schema (as for setup).
        split: the image split (as for setup).
        study: the study created by setup (name "" = search disabled: the model section is passed on as given).
        model_name: name shown in the report.
        best_hyperparameters: JSON of the full model config the train step uses.
        search_metrics: the best validation score (``best_<monitor>``) and trial counts.
        report: HTML with optimization history, parameter importances and parallel coordinates.
    """
    from shopfloor.common.storage import atomic_write_bytes, read_json, write_json
    from shopfloor.components.hpo.steps import run_hpo_select

    name = read_json(study.path)["name"]
    chosen = run_hpo_select(name, hpo, data.path, hyperparameters, data_schema, split, model_name)
    write_json(best_hyperparameters.path, chosen.hyperparameters)
    best_hyperparameters.metadata.update(chosen.metadata)
    atomic_write_bytes(report.path, chosen.report.encode())
    for metric, value in chosen.metrics.items():
        search_metrics.log_metric(metric, value)
