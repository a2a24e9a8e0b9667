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
    import uuid

    from shopfloor.common.config import HpoConfig, validated
    from shopfloor.common.progress import report_progress
    from shopfloor.common.storage import write_json

    config = validated(HpoConfig, hpo, "pipeline parameter hpo")
    if not config.enabled:
        report_progress("search disabled: training with the given hyperparameters")
        write_json(study.path, {"name": ""})
        return
    # only a search needs the model builders (keras-tuner, so TensorFlow): a disabled one starts in a second
    from shopfloor.components.hpo.problems import load_problem
    from shopfloor.components.hpo.search import create_study, open_storage, storage_url

    problem = load_problem(config, data.path, hyperparameters, data_schema, split)
    name = f"{config.builder}-{uuid.uuid4().hex[:12]}"
    create_study(open_storage(storage_url(config)), name, config.trials, problem.label, problem.first_params)
    write_json(study.path, {"name": name})
    study.metadata["name"] = name
    report_progress(f"study {name}: {config.trials} trials maximizing {problem.label}")


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
    import time

    from shopfloor.common.config import HpoConfig, validated
    from shopfloor.common.storage import read_json

    study_name = read_json(study.path)["name"]
    if not study_name:
        return 0
    from shopfloor.components.hpo.problems import load_problem  # TensorFlow, only when there is a search
    from shopfloor.components.hpo.search import load_study, make_objective, open_storage, run_worker, storage_url

    config = validated(HpoConfig, hpo, "pipeline parameter hpo")
    problem = load_problem(config, data.path, hyperparameters, data_schema, split)
    shared = load_study(open_storage(storage_url(config)), study_name, config.seed + int(worker))
    deadline = time.time() + config.timeout_s
    return run_worker(shared, make_objective(problem, config.max_epochs, config.seed), deadline)


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
    from shopfloor.common.config import HpoConfig, validated
    from shopfloor.common.plots import html_page
    from shopfloor.common.progress import report_progress
    from shopfloor.common.storage import atomic_write_bytes, read_json, write_json

    config = validated(HpoConfig, hpo, "pipeline parameter hpo")
    study_name = read_json(study.path)["name"]
    if not study_name:
        write_json(best_hyperparameters.path, hyperparameters)
        disabled = html_page("hyperparameter search", "<p>Hyperparameter search disabled for this run.</p>")
        atomic_write_bytes(report.path, disabled.encode())
        search_metrics.log_metric("trials", 0)
        return
    from shopfloor.components.hpo.problems import load_problem  # TensorFlow, only when there was a search
    from shopfloor.components.hpo.report import render_hpo_report
    from shopfloor.components.hpo.search import best_model_config, load_study, open_storage, storage_url, summarize

    shared = load_study(open_storage(storage_url(config)), study_name, config.seed)
    summary = summarize(shared)
    problem = load_problem(config, data.path, hyperparameters, data_schema, split)
    chosen = best_model_config(summary.best_params, problem.builder)
    write_json(best_hyperparameters.path, chosen.model_dump())
    best_hyperparameters.metadata.update({"study": study_name, "best_value": summary.best_value})
    atomic_write_bytes(report.path, render_hpo_report(shared, summary, chosen.model_dump(), model_name).encode())
    search_metrics.log_metric(f"best_{problem.monitor}", round(summary.best_value, 6))
    for state, count in summary.by_state.items():
        search_metrics.log_metric(f"trials_{state.lower()}", count)
    report_progress(f"best {problem.label} {summary.best_value:.3f}: {summary.best_params}")
