"""Start a retraining run of a registered pipeline through the KFP API, from inside the cluster.

KFP has no native trigger from monitoring to training (kubeflow/pipelines #12834): the monitoring pipeline's
last step calls the KFP API itself, as its service account (``kfp.Client()`` in a pod picks up the projected
service-account token; ``infra/kfp/retrain-rbac.yaml`` grants it exactly run creation). The training pipeline
is the one the GitOps repo registered (compiled YAML applied as a KFP pipeline); its newest version runs.
"""

from __future__ import annotations

from shopfloor.common.errors import ShopfloorError

__all__ = ["start_retraining_run"]


def _latest_version_id(client, pipeline_id: str) -> str | None:
    """The newest version of a registered pipeline."""
    response = client.list_pipeline_versions(pipeline_id, page_size=1, sort_by="created_at desc")
    versions = response.pipeline_versions or []
    return versions[0].pipeline_version_id if versions else None


def start_retraining_run(
    pipeline_name: str, experiment: str, arguments: dict, run_name: str, client=None, namespace: str | None = None
) -> str:
    """Create a run of the newest version of ``pipeline_name``; returns the run id."""
    import kfp

    client = client or kfp.Client(namespace=namespace or "kubeflow")
    pipeline_id = client.get_pipeline_id(pipeline_name)
    if pipeline_id is None:
        raise ShopfloorError(
            "KFP API",
            f"no registered pipeline named '{pipeline_name}'",
            field="pipeline_name",
            expected="the training pipeline applied from the GitOps repo",
        )
    version_id = _latest_version_id(client, pipeline_id)
    experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    run = client.run_pipeline(
        experiment_id=experiment_id, job_name=run_name, pipeline_id=pipeline_id, version_id=version_id, params=arguments
    )
    return run.run_id
