"""The caching policy: which steps KFP may answer from its cache, and why; one table for every pipeline.

KFP caches a task by its inputs (parameters and input artifacts) and its container, so only a step whose outputs
follow from those inputs alone may be cached. A step that reads or writes state outside its inputs (a URI whose
content changes, the Optuna study, the model in production, the model store, a cluster) never is: a cached
answer would be the past. Ingest is cached because it takes the sources' content fingerprint (from the uncached
``fingerprint-sources`` step) as an input, so its cache key follows the data, not its URI; the steps after it
are then cached exactly as long as the data is the same. The local runner has no cache, so
``tests/pipelines/test_caching.py`` checks every compiled task against this table.
"""

from __future__ import annotations

from kfp.dsl import PipelineTask

__all__ = ["CACHING_POLICY", "apply_caching_policy"]

# component name -> (cached, why): README's caching table is this table
CACHING_POLICY: dict[str, tuple[bool, str]] = {
    "fingerprint-sources": (False, "reads the sources' current content: its whole purpose"),
    "ingest": (True, "keyed on the sources' fingerprint, so new data is a new key"),
    "ingest-images": (True, "keyed on the image folder's fingerprint"),
    "label": (True, "a function of the ingested tables and the labelling config"),
    "label-images": (False, "merges the label history and operator feedback in the model store"),
    "hpo-setup": (False, "creates a new study in the Optuna database"),
    "hpo-worker": (False, "runs trials into the shared study"),
    "hpo-select": (False, "reads the study's best trial"),
    "train": (True, "seeded: a function of the data and the hyperparameters"),
    "evaluate": (False, "compares with the model in production, which changes"),
    "explain": (False, "reads operator feedback from the model store"),
    "publish": (False, "writes a version into the model store and moves latest.json"),
    "deploy": (False, "changes the serving state (InferenceService or local server)"),
    "check-drift": (False, "reads the payload logs and the model in production as they are now"),
    "trigger-retraining": (False, "starts runs and records the policy's state"),
}


def apply_caching_policy(*tasks: PipelineTask) -> None:
    """Set each task's caching as the table says; a step missing from the table is an error at compile time."""
    for task in tasks:
        component = task.component_spec.name.replace("_", "-")
        if component not in CACHING_POLICY:
            raise KeyError(f"{component}: not in pipelines/caching.py CACHING_POLICY; say whether it may be cached")
        task.set_caching_options(CACHING_POLICY[component][0])
