"""Deploy logic: pick the target the config names and hand it one ``DeploymentRequest``.

This is the only place the runtime matters: ``kserve`` creates or patches an InferenceService through the
Kubernetes API (in-cluster credentials), ``local`` starts our model server on this machine. An ``edge-*``
runtime is checked against the published version first: only a version with a TFLite export can be served by
the edge runtime, and its image (``edge_image`` of the serving image) answers on the cluster.
"""

from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath

from shopfloor.common.config import DeployConfig
from shopfloor.common.errors import ShopfloorError
from shopfloor.components._image import SERVING_IMAGE, edge_image
from shopfloor.components.deploy.target import EDGE_RUNTIMES, DeploymentRequest, DeployTarget, Endpoint

__all__ = [
    "check_edge_runtime",
    "deploy_model",
    "deployment_request",
    "endpoint_markdown",
    "make_target",
    "predictor_image",
]


def predictor_image(runtime: str, image: str) -> str:
    """The image that answers predict: the edge runtime's for an ``edge-*`` runtime, else the serving image."""
    return edge_image(image) if runtime in EDGE_RUNTIMES else image


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
    """The request for a published model version (``<store>/<model>/<version>``), served by ``image``.

    ``image`` is the serving image; an ``edge-*`` runtime's predictor runs the edge image named after it.
    """
    return DeploymentRequest(
        model_name=model_name,
        model_uri=model_uri,
        image=predictor_image(config.runtime, image),
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
    check_edge_runtime(model_uri, config)
    served = make_target(config).deploy(deployment_request(model_uri, model_name, config, image))
    return dataclasses.replace(served, sites=served_sites(model_uri))


def check_edge_runtime(model_uri: str, config: DeployConfig) -> None:
    """Refuse an ``edge-*`` runtime for a version the edge runtime cannot serve, before anything is deployed.

    The edge runtime serves the TFLite export the train step wrote, and only a network is exported: a version a
    classical challenger answers (``engine`` in ``shopfloor_model.json`` other than ``keras``) has none. A
    fleet's per-site models are served by the full server alone (one edge runtime serves one model).

    Raises:
        ShopfloorError: One line naming ``deploy.runtime`` and why.
    """
    if config.runtime not in EDGE_RUNTIMES:
        return
    from shopfloor.common.storage import join_uri, read_json
    from shopfloor.contracts.edge import EDGE_DIR, EDGE_INFO
    from shopfloor.contracts.model_artifact import MODEL_INFO

    info = read_json(join_uri(model_uri, "model", MODEL_INFO))
    engine = str(info.get("engine", "keras"))
    why = ""
    if engine != "keras":
        why = f"the classical challenger ({engine}) answers this version, and only networks have an edge export"
    elif (info.get("fleet") or {}).get("sites"):
        why = "this version serves a fleet's sites, which only the full server answers by name"
    elif not _has_edge_export(model_uri):
        why = f"this version has no edge export (no variant in model/{EDGE_DIR}/{EDGE_INFO})"
    if why:
        raise ShopfloorError(
            model_uri, f"{config.runtime} cannot serve it: {why}", field="deploy.runtime", expected="runtime keras"
        )


def _has_edge_export(model_uri: str) -> bool:
    """Whether a published version's edge record lists at least one TFLite variant the edge runtime can load."""
    from shopfloor.common.storage import exists, join_uri, read_json
    from shopfloor.contracts.edge import EDGE_DIR, EDGE_INFO

    record = join_uri(model_uri, "model", EDGE_DIR, EDGE_INFO)
    return exists(record) and bool(read_json(record).get("variants"))


def served_sites(model_uri: str) -> tuple[str, ...]:
    """The sites a published version answers for by name (``fleet.sites`` of its model description; none without).

    The server loads one model per site from the same version (``shopfloor.serving.server.load_site_models``), so
    the deploy step only names them: one local server, or one InferenceService, serves the whole fleet.
    """
    from shopfloor.common.storage import join_uri, read_json
    from shopfloor.contracts.model_artifact import MODEL_INFO, site_endpoints

    return tuple(e.site for e in site_endpoints(read_json(join_uri(model_uri, "model", MODEL_INFO))))


def endpoint_markdown(served: Endpoint, config: DeployConfig, image: str) -> str:
    """The endpoint card for the dashboard: where the model answers, which version and runtime, how to call it."""
    target = f"KServe InferenceService in `{config.namespace}`" if served.target == "kserve" else "local model server"
    shown_image = predictor_image(config.runtime, image)
    rows = [
        ("model", f"`{served.model_name}`"),
        ("version", f"`{served.model_version}`"),
        ("target", target),
        ("runtime", f"`{config.runtime}`" + (", explainer on" if config.explainer else "")),
        ("image", f"`{shown_image}`" if served.target == "kserve" else "this machine's Python"),
        ("V1 predict", served.v1_predict_url),
        ("V1 explain", served.v1_explain_url),
        ("V2 infer", served.v2_infer_url),
    ]
    if config.runtime in EDGE_RUNTIMES:  # the edge runtime has no explain route (and no explainer is deployed)
        rows = [row for row in rows if row[0] != "V1 explain"]
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
