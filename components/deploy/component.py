"""KFP wrapper for deploy: typed inputs and outputs only; the logic is ``shopfloor.components.deploy.deploy``."""

from kfp import dsl
from kfp.dsl import Artifact, Markdown, Output

from shopfloor.components._image import IMAGE

__all__ = ["deploy"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy(
    model_uri: str,
    model_name: str,
    deployment: dict,
    serving_image: str,
    endpoint: Output[Artifact],
    endpoint_card: Output[Markdown],
    alerts: dict = {},  # noqa: B006 - a KFP parameter default, never mutated
) -> str:
    """Serve a published, blessed model version: a KServe InferenceService, or a local model server.

    Args:
        model_uri: the published version (publish's output), a path or s3:// URI.
        model_name: the model name in the serving URLs.
        deployment: target (kserve|local), namespace, service_account, canary_traffic_percent, ready_timeout_s,
            explainer, payload_log_uri, local_state_dir (``DeployConfig``).
        serving_image: the image of the InferenceService's predictor and explainer: the image the pipeline was
            compiled with (``shopfloor compile --image``), so one image reference moves everything.
        endpoint: JSON with the base URL and the V1/V2 predict and explain URLs.
        endpoint_card: the endpoint as the dashboard shows it: URLs, version, runtime and a curl line.
        alerts: the channel a rolled-back deploy is published to as a ``rollback`` event (``AlertsConfig``, the
            config's ``monitor.alerts``); {} or kind none: no event.

    Returns:
        The base URL the model answers at.
    """
    from shopfloor.common.config import DeployConfig, validated
    from shopfloor.common.progress import report_progress
    from shopfloor.common.storage import atomic_write_bytes, write_json
    from shopfloor.components.deploy.deploy import deploy_model, endpoint_markdown

    config = validated(DeployConfig, deployment, "pipeline parameter deployment")
    from shopfloor.components.deploy.target import DeploymentFailed

    try:
        served = deploy_model(model_uri, model_name, config, serving_image)
    except DeploymentFailed as failed:
        if alerts:
            from shopfloor.common.config import AlertsConfig
            from shopfloor.contracts.events import publish_event, rollback_event

            version = model_uri.rstrip("/").rsplit("/", 1)[-1]
            channel = validated(AlertsConfig, alerts, "pipeline parameter alerts")
            publish_event(channel, rollback_event(model_name, version, str(failed)))
        raise
    write_json(endpoint.path, served.to_dict())
    atomic_write_bytes(endpoint_card.path, endpoint_markdown(served, config, serving_image).encode())
    endpoint.metadata.update(served.to_dict())
    report_progress(f"{served.model_name} {served.model_version} serving at {served.url} ({served.target})")
    return served.url
