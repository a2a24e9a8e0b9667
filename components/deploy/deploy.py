"""Deploy logic: pick the target the config names and hand it one ``DeploymentRequest``.

This is the only place the runtime matters: ``kserve`` creates or patches an InferenceService through the
Kubernetes API (in-cluster credentials), ``local`` starts our model server on this machine.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath

from shopfloor.common.config import DeployConfig
from shopfloor.common.errors import ShopfloorError
from shopfloor.components._image import SERVING_IMAGE
from shopfloor.components.deploy.target import DeploymentRequest, DeployTarget, Endpoint

__all__ = ["deploy_model", "deployment_request", "endpoint_markdown", "make_target"]


def make_target(config: DeployConfig) -> DeployTarget:
    """The deploy target the config names."""
    if config.target == "local":
        from shopfloor.components.deploy.local_target import LocalServerTarget

        if not config.local_state_dir:
            raise ShopfloorError(
                "deploy config",
                "local target needs a state folder",
                field="local_state_dir",
                expected="a folder for server state and logs",
            )
        return LocalServerTarget(config.local_state_dir)
    from shopfloor.components.deploy.kserve_target import KServeTarget

    return KServeTarget.from_cluster()


def deployment_request(
    model_uri: str, model_name: str, config: DeployConfig, image: str = SERVING_IMAGE
) -> DeploymentRequest:
    """The request for a published model version (``<store>/<model>/<version>``), served by ``image``."""
    return DeploymentRequest(
        model_name=model_name,
        model_uri=model_uri,
        image=image,
        model_version=PurePosixPath(model_uri.rstrip("/")).name,
        namespace=config.namespace,
        service_account=config.service_account,
        canary_traffic_percent=config.canary_traffic_percent,
        payload_log_uri=config.payload_log_uri,
        ready_timeout_s=config.ready_timeout_s,
        explainer=config.explainer,
        runtime=config.runtime,
    )


def deploy_model(model_uri: str, model_name: str, config: DeployConfig, image: str = SERVING_IMAGE) -> Endpoint:
    """Deploy a published model version to the configured target and return where it answers (sites included)."""
    served = make_target(config).deploy(deployment_request(model_uri, model_name, config, image))
    return dataclasses.replace(served, sites=served_sites(model_uri))


def served_sites(model_uri: str) -> tuple[str, ...]:
    """The sites a published version answers for by name (``fleet.sites`` of its model description; none without).

    The server loads one model per site from the same version (``shopfloor.serving.server.load_site_models``), so
    the deploy step only names them: one local server, or one InferenceService, serves the whole fleet.
    """
    from shopfloor.common.storage import join_uri, read_json
    from shopfloor.contracts.model_artifact import MODEL_INFO

    info = read_json(join_uri(model_uri, "model", MODEL_INFO))
    return tuple(str(site) for site in (info.get("fleet") or {}).get("sites", []))


def endpoint_markdown(served: Endpoint, config: DeployConfig, image: str) -> str:
    """The endpoint card for the dashboard: where the model answers, which version and runtime, how to call it."""
    target = f"KServe InferenceService in `{config.namespace}`" if served.target == "kserve" else "local model server"
    rows = [
        ("model", f"`{served.model_name}`"),
        ("version", f"`{served.model_version}`"),
        ("target", target),
        ("runtime", f"`{config.runtime}`" + (", explainer on" if config.explainer else "")),
        ("image", f"`{image}`" if served.target == "kserve" else "this machine's Python"),
        ("V1 predict", served.v1_predict_url),
        ("V1 explain", served.v1_explain_url),
        ("V2 infer", served.v2_infer_url),
    ]
    lines = [f"# {served.model_name} is serving", "", "| | |", "| --- | --- |"]
    rows += [(f"site `{site}` V1 predict", url) for site, url in served.site_predict_urls().items()]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += [
        "",
        "```sh",
        f"curl -s {served.url}/v2/models/{served.model_name}  # metadata: inputs and outputs",
        f"curl -s -H 'content-type: application/json' -d @request.json {served.v1_predict_url}",
        "```",
    ]
    return "\n".join(lines) + "\n"
