"""Start a retraining run of a registered pipeline through the KFP API, from inside the cluster.

KFP has no native trigger from monitoring to training (kubeflow/pipelines #12834): the monitoring pipeline's
last step calls the KFP API itself, as Kubeflow documents in-cluster access (``shopfloor.common.kfp_api``): the
``ml-pipeline`` service in ``kubeflow`` unless a host is configured, the projected service-account token that the
PodDefault selected by the task's ``access-ml-pipeline`` label mounts, and the profile namespace passed per call
(``infra/kfp/retrain-rbac.yaml`` grants the account what this needs). The training pipeline is the one the GitOps
repo registered (compiled YAML applied as a KFP pipeline); its newest version runs, with the caching its compiled
tasks declare.
"""

from __future__ import annotations

from shopfloor.common.errors import ShopfloorError
from shopfloor.common.kfp_api import kfp_client, resolve_connection

__all__ = ["retrain_arguments", "start_retraining_run"]


def retrain_arguments(arguments: dict, sites: list[str], model_store_uri: str, model_name: str) -> dict:
    """The training run's arguments for a retrain of named sites: with site models, only theirs are refitted.

    The fleet section travels in ``data_schema`` (key ``fleet``); a retrain of some sites sets its
    ``retrain_only`` and ``keep_models_from`` (the published version's model folder), as ``shopfloor run`` does.
    Unchanged without sites, without site models, or with nothing published.
    """
    from shopfloor.common.storage import join_uri
    from shopfloor.contracts.model_store import ModelStore
    from shopfloor.families.predictive_maintenance.strategies import fleet_config, sites_retrain

    schema = arguments.get("data_schema") or {}
    if not sites or "fleet" not in schema:
        return arguments
    latest = ModelStore(model_store_uri).latest(model_name)
    retrain = sites_retrain(fleet_config(schema), list(sites), join_uri(latest.uri, "model")) if latest else None
    if retrain is None:
        return arguments
    return {**arguments, "data_schema": {**schema, "fleet": retrain.model_dump(mode="json")}}


def _latest_version_id(client, pipeline_id: str) -> str | None:
    """The newest version of a registered pipeline."""
    response = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
    versions = response.pipeline_versions or []
    return versions[0].pipeline_version_id if versions else None


def start_retraining_run(
    pipeline_name: str,
    experiment: str,
    arguments: dict,
    run_name: str,
    namespace: str | None = None,
    host: str | None = None,
) -> str:
    """Create a run of the newest version of ``pipeline_name`` in ``namespace``; returns the run id.

    ``host`` '' or None: ``$KF_PIPELINES_ENDPOINT``, else the in-cluster Pipelines API.
    """
    connection = resolve_connection(host or None, namespace or None)
    client = kfp_client(connection)
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        raise ShopfloorError(
            "KFP API",
            f"no registered pipeline named '{pipeline_name}'",
            field="pipeline_name",
            expected="the training pipeline applied from the GitOps repo",
        )
    version_id = _latest_version_id(client, pipeline_id)
    experiment_id = client.create_experiment(experiment, namespace=connection.namespace).experiment_id
    run = client.run_pipeline(
        experiment_id=experiment_id, job_name=run_name, pipeline_id=pipeline_id, version_id=version_id, params=arguments
    )
    return run.run_id
