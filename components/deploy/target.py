"""The one interface both deploy targets share: a request in, an endpoint out, or ``DeploymentFailed``.

``KServeTarget`` (cluster, ``shopfloor.components.deploy.kserve_target``) and the local target (one machine) implement
``DeployTarget``; the deploy step picks one and never branches on the runtime otherwise.
"""

from __future__ import annotations

import dataclasses
import re
import typing

from shopfloor.common.errors import ShopfloorError
from shopfloor.components._image import SERVING_IMAGE
from shopfloor.contracts.model_store import locate_version

__all__ = [
    "EDGE_RUNTIMES",
    "RUNTIMES",
    "DeployTarget",
    "DeploymentFailed",
    "DeploymentRequest",
    "EdgeSource",
    "Endpoint",
    "edge_arguments",
    "edge_source",
]

# keras and tflite-*: the full server (shopfloor.serving.server); edge-*: the edge runtime (shopfloor.edge), which
# serves the published TFLite export of every kind without TensorFlow, and has no explain route.
EDGE_RUNTIMES = ("edge-float32", "edge-int8")
RUNTIMES = ("keras", "tflite-float32", "tflite-int8", *EDGE_RUNTIMES)

# A Kubernetes name that is also a DNS-1035 label (what KServe requires of an InferenceService name).
_NAME_PATTERN = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


class DeploymentFailed(ShopfloorError):
    """The new version did not become ready; what was rolled back is in the message."""


@dataclasses.dataclass(frozen=True)
class DeploymentRequest:
    """What to serve and how: the model, where it lives, and the rollout settings.

    Attributes:
        model_name: Kubernetes name (lowercase letters, digits, '-'); also the KServe model name in URLs.
        model_uri: the published version (publish's ``<store>/<model>/<version>``) or its ``model/`` folder: an
            ``s3://`` URI on the cluster (downloaded by KServe's storage initializer), a local folder locally.
        model_version: the published version, e.g. ``v-1a2b3c4d5e6f``; recorded on the deployment.
        namespace: the Kubernetes namespace (a Kubeflow profile's namespace).
        service_account: its Secret holds the S3 credentials, with KServe's S3 annotations.
        image: the serving image.
        canary_traffic_percent: traffic share of a new version while an older one is serving; 100 = full rollout.
        payload_log_uri: where the predictor writes payload logs (env ``SHOPFLOOR_PAYLOAD_LOG_URI``); "" = off.
        ready_timeout_s: how long the new version may take to become ready before it is rolled back.
        explainer: also deploy the explainer component (never with an ``edge-*`` runtime: it cannot explain).
        runtime: what answers predict: ``keras``, or for image models a TFLite edge export (``tflite-float32``,
            ``tflite-int8``) the train step wrote, in the full server; the explainer always runs Keras (Grad-CAM
            needs gradients). ``edge-float32``/``edge-int8``: the edge runtime (``shopfloor.edge``, its own small
            image) answers predict from the TFLite export, any kind, reading the version from the model store.
    """

    model_name: str
    model_uri: str
    model_version: str
    namespace: str = "kubeflow-user-example-com"
    service_account: str = "shopfloor-s3"
    image: str = SERVING_IMAGE
    canary_traffic_percent: int = 10
    payload_log_uri: str = ""
    ready_timeout_s: float = 600.0
    explainer: bool = True
    runtime: str = "keras"

    def __post_init__(self) -> None:
        """Refuse a request a target could only fail on later, naming the field."""
        source = "deployment request"
        for field in ("model_name", "namespace"):
            value = getattr(self, field)
            if not isinstance(value, str) or not _NAME_PATTERN.fullmatch(value):
                raise ShopfloorError(
                    source,
                    f"{value!r} is not a valid Kubernetes name",
                    field=field,
                    expected="1-63 lowercase letters, digits or '-', starting with a letter, not ending with '-'",
                )
        for field in ("model_uri", "model_version", "service_account", "image"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value.strip():
                raise ShopfloorError(source, "must not be empty", field=field, expected="a non-empty string")
        percent = self.canary_traffic_percent
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 < percent <= 100:
            raise ShopfloorError(
                source, f"{percent!r} is out of range", field="canary_traffic_percent", expected="an int in 1..100"
            )
        if self.runtime not in RUNTIMES:
            raise ShopfloorError(
                source, f"{self.runtime!r} is not a runtime", field="runtime", expected=f"one of: {', '.join(RUNTIMES)}"
            )
        if self.runtime in EDGE_RUNTIMES and self.explainer:
            raise ShopfloorError(
                source,
                f"runtime {self.runtime} has no explain route",
                field="explainer",
                expected="explainer false with an edge runtime",
            )
        timeout = self.ready_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ShopfloorError(
                source, f"{self.ready_timeout_s!r} is not positive", field="ready_timeout_s", expected="seconds > 0"
            )


@dataclasses.dataclass(frozen=True)
class EdgeSource:
    """Where the edge runtime finds a published version: the store, the model's folder name in it, the version."""

    store_uri: str
    model: str
    version: str
    variant: str


def edge_arguments(source: EdgeSource, host: str, port: int, cache_dir: str) -> list[str]:
    """The ``shopfloor-edge`` arguments that serve exactly ``source``'s version on ``host:port``.

    ``--version`` pins it: the runtime never follows ``latest.json`` by itself, so a canary, a rollback or a
    local redeploy decides what serves, as with the full server.
    """
    return [
        "--model-store",
        source.store_uri,
        "--model",
        source.model,
        "--version",
        source.version,
        "--variant",
        source.variant,
        "--host",
        host,
        "--port",
        str(port),
        "--cache-dir",
        cache_dir,
    ]


def edge_source(request: DeploymentRequest) -> EdgeSource:
    """Split ``request.model_uri`` (``<store>/<model>/<version>`` or its ``model/``) into what ``shopfloor-edge`` reads.

    The edge runtime answers under its store name, so that name must be the request's model name: otherwise the
    routes would not be the ones the endpoint announces.

    Raises:
        ShopfloorError: If the URI is not a published version of ``request.model_name``, naming ``model_uri``.
    """
    located = locate_version(request.model_uri)
    if located is None or located.model_name != request.model_name:
        raise ShopfloorError(
            "deployment request",
            f"{request.model_uri!r} is not a published version of {request.model_name!r}",
            field="model_uri",
            expected=f"<store>/{request.model_name}/<version>: the edge runtime answers under the store's name",
        )
    return EdgeSource(
        store_uri=located.store.uri,
        model=located.model_name,
        version=located.version,
        variant=request.runtime.removeprefix("edge-"),
    )


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where a deployed model answers.

    Attributes:
        target: ``"kserve"`` or ``"local"``.
        url: base URL, e.g. ``http://pm.kubeflow-user-example-com.example.com`` or ``http://127.0.0.1:8123``.
        model_name: the model name in the URLs.
        model_version: the version now serving.
        sites: a fleet's sites, each answering at ``<model_name>-<site>`` on the same server (none otherwise).
    """

    target: str
    url: str
    model_name: str
    model_version: str
    sites: tuple[str, ...] = ()

    @property
    def v1_predict_url(self) -> str:
        """KServe V1 protocol predict URL."""
        return f"{self.url}/v1/models/{self.model_name}:predict"

    @property
    def v1_explain_url(self) -> str:
        """KServe V1 protocol explain URL."""
        return f"{self.url}/v1/models/{self.model_name}:explain"

    @property
    def v2_infer_url(self) -> str:
        """Open Inference Protocol (V2) infer URL."""
        return f"{self.url}/v2/models/{self.model_name}/infer"

    def site_predict_urls(self) -> dict[str, str]:
        """Each site's V1 predict URL: the site's own model (or the global one at its threshold), by name."""
        return {site: f"{self.url}/v1/models/{self.model_name}-{site}:predict" for site in self.sites}

    def to_dict(self) -> dict:
        """A JSON-able view with the three URLs (and each site's predict URL), for step outputs and reports."""
        return {
            **dataclasses.asdict(self),
            "sites": list(self.sites),
            "v1_predict_url": self.v1_predict_url,
            "v1_explain_url": self.v1_explain_url,
            "v2_infer_url": self.v2_infer_url,
            "site_predict_urls": self.site_predict_urls(),
        }


class DeployTarget(typing.Protocol):
    """Something that serves a model and says where: the cluster (KServe) or this machine."""

    def deploy(self, request: DeploymentRequest) -> Endpoint:
        """Serve ``request``'s model and return its endpoint, or raise ``DeploymentFailed`` after rolling back."""
        ...
