"""The cluster deploy target: one KServe InferenceService per model, rolled out as a canary, rolled back on failure.

The InferenceService (ISVC) runs our serving image as a *custom container* in both the predictor and the
explainer: ``python -m shopfloor.serving.server`` serves predict and explain from one process. How the pieces meet:

- **Model download.** A custom container has no ``storageUri`` field; KServe reads the ``STORAGE_URI`` env var
  of the ``kserve-container`` instead (``CustomPredictor/CustomExplainer.GetStorageUri`` upstream), injects its
  storage initializer, and downloads the model into ``/mnt/models`` with the S3 credentials of the service
  account's Secret (KServe's ``serving.kserve.io/s3-*`` annotations; see ``infra/kserve/base``).
- **Explainer arguments.** KServe appends ``--model_name NAME --predictor_host HOST --http_port 8080`` to a
  custom explainer's args; ``shopfloor.serving.server`` must accept (or ignore) them.
- **Deployment mode** is left to the cluster default (``inferenceservice-config``). ``canaryTrafficPercent`` is
  honoured in Serverless (Knative) mode; in RawDeployment mode KServe ignores it (kserve #5335), so there a new
  version takes all traffic once ready, and the rollback below is still what protects the plant.
- **Canary promotion.** A successful canary deploy returns with the new version at ``canary_traffic_percent``;
  deploying the same version again with ``canary_traffic_percent=100`` promotes it (the canary field is removed).
- **Edge runtime** (``runtime`` ``edge-float32``/``edge-int8``). The predictor runs the edge image
  (``python -m shopfloor.edge``, no TensorFlow) pinned to the deployed version (``--version``): it reads the
  version's edge files from the model store itself, with the S3 endpoint and keys of the Secret ``shopfloor-s3``
  as environment variables (no ``STORAGE_URI``, so no storage initializer and no Keras model downloaded), keeps
  its cache and payload spool on the scratch volume, and has no explainer (the runtime has no explain route).
- **Writes.** The predictor (not the explainer, which only explains) reads who may write from the Secret
  ``shopfloor-api-tokens`` (key ``tokens.yaml``, ``serving.auth``'s format; ``infra/kserve/base`` holds a template
  that grants nobody), mounted read-only, and writes operators' feedback to the model store the version was
  deployed from (``SHOPFLOOR_FEEDBACK_URI``: its download in ``/mnt/models`` does not say where that is), with the
  S3 keys of the Secret ``shopfloor-s3`` when the store or the payload log is on S3.

``deploy`` talks to the API server through ``kubernetes.client.CustomObjectsApi``, not ``kserve.KServeClient``:
the latter ignores a passed ``client_configuration`` for its API objects (it loads a kubeconfig or in-cluster
config into the global default and needs one to exist), and it turns every ``ApiException`` into a
``RuntimeError`` carrying only text, so 404 (create instead) and 409 (re-read and retry) cannot be told apart.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any, Literal

import kubernetes.client
import kubernetes.config
import urllib3.exceptions
from kserve import (
    V1beta1ExplainerSpec,
    V1beta1InferenceService,
    V1beta1InferenceServiceSpec,
    V1beta1PredictorSpec,
)
from kubernetes.client import (
    V1Capabilities,
    V1Container,
    V1ContainerPort,
    V1EmptyDirVolumeSource,
    V1EnvVar,
    V1EnvVarSource,
    V1HTTPGetAction,
    V1KeyToPath,
    V1ObjectMeta,
    V1Probe,
    V1ResourceRequirements,
    V1SeccompProfile,
    V1SecretKeySelector,
    V1SecretVolumeSource,
    V1SecurityContext,
    V1Volume,
    V1VolumeMount,
)
from kubernetes.client.exceptions import ApiException

from shopfloor.common.credentials import API_TOKENS_FILE_ENV
from shopfloor.common.errors import ShopfloorError
from shopfloor.common.progress import report_progress
from shopfloor.components.deploy.target import (
    EDGE_RUNTIMES,
    DeploymentFailed,
    DeploymentRequest,
    Endpoint,
    edge_arguments,
    edge_source,
)
from shopfloor.contracts.model_store import locate_version

__all__ = [
    "API_GROUP",
    "API_TOKENS_DIR",
    "API_TOKENS_KEY",
    "API_TOKENS_SECRET",
    "API_VERSION",
    "MODEL_MOUNT_PATH",
    "PLURAL",
    "S3_SECRET",
    "S3_SECRET_KEYS",
    "TERMINAL_REASONS",
    "VERSION_ANNOTATION",
    "KServeTarget",
    "Readiness",
    "build_inference_service",
    "inference_service_manifest",
    "merge_patch_between",
    "readiness",
]

API_GROUP = "serving.kserve.io"
API_VERSION = "v1beta1"
PLURAL = "inferenceservices"
VERSION_ANNOTATION = "shopfloor.io/model-version"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MODEL_MOUNT_PATH = "/mnt/models"
HTTP_PORT = 8080
# KServe puts these on the pods (prometheus.io/* too, for annotation-based discovery); Prometheus still needs a
# scrape config or a PodMonitor that selects them
METRICS_ANNOTATIONS = {
    "serving.kserve.io/enable-prometheus-scraping": "true",
    "prometheus.kserve.io/port": str(HTTP_PORT),
    "prometheus.kserve.io/path": "/metrics",
}
SCRATCH_VOLUME = "scratch"
STORAGE_URI_ENV = "STORAGE_URI"
# The edge predictor reads the store itself: the Secret and keys the pipeline steps get (pipelines/cluster.py's
# S3_SECRET and S3_KEYS; components may not import pipelines, and a test keeps the two equal).
S3_SECRET = "shopfloor-s3"
S3_SECRET_KEYS = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
EDGE_STATE = "/tmp/shopfloor-edge"  # on the scratch volume: the root filesystem is read-only
# Who may write to the predictor (operators' feedback): serving.auth's tokens file, from a Secret of its own
API_TOKENS_SECRET = "shopfloor-api-tokens"
API_TOKENS_VOLUME = "api-tokens"
API_TOKENS_DIR = "/var/run/secrets/shopfloor/api-tokens"
API_TOKENS_KEY = "tokens.yaml"
# Reasons with which a revision will not recover by waiting: roll back at once instead of at the timeout.
TERMINAL_REASONS = frozenset({"RevisionFailed", "ContainerCrashLoop"})
MAX_CONFLICT_RETRIES = 5
_REQUEST_TIMEOUT_S = 30
_MESSAGE_LIMIT = 240


def _env(request: DeploymentRequest, *, explainer: bool) -> list[V1EnvVar]:
    """The container env: where KServe downloads the model from, the version, and the predictor's writes.

    Only the predictor writes: payload logs (explain requests are not production traffic, and logging them too
    would count them twice in drift monitoring), operators' feedback to the version's model store, and the tokens
    file saying who may. What it writes to S3 takes the credentials from the S3 Secret (KServe's storage
    initializer has its own copy for the model download; the server process has none).
    """
    env = [
        V1EnvVar(name=STORAGE_URI_ENV, value=request.model_uri),
        V1EnvVar(name="SHOPFLOOR_MODEL_VERSION", value=request.model_version),
        V1EnvVar(name="HOME", value="/tmp"),  # Keras' and matplotlib's caches, on the scratch volume
    ]
    if explainer:
        return env
    located = locate_version(request.model_uri)
    writes_to = [request.payload_log_uri]
    if request.payload_log_uri:
        env.append(V1EnvVar(name="SHOPFLOOR_PAYLOAD_LOG_URI", value=request.payload_log_uri))
    if located is not None:
        env.append(V1EnvVar(name="SHOPFLOOR_FEEDBACK_URI", value=located.store.uri))
        writes_to.append(located.store.uri)
    env.append(V1EnvVar(name=API_TOKENS_FILE_ENV, value=f"{API_TOKENS_DIR}/{API_TOKENS_KEY}"))
    if any(uri.startswith("s3://") for uri in writes_to):
        env.extend(_secret_env(key) for key in S3_SECRET_KEYS)
    return env


def _container(request: DeploymentRequest, *, explainer: bool) -> V1Container:
    """The ``kserve-container`` running ``shopfloor.serving.server``; the explainer differs only by ``--explainer``.

    A TFLite runtime is the predictor's alone: the explainer keeps the Keras model, whose gradients Grad-CAM reads.
    """
    args = [
        "--model-dir",
        MODEL_MOUNT_PATH,
        "--model-name",
        request.model_name,
        "--host",
        "0.0.0.0",
        "--http-port",
        str(HTTP_PORT),
    ]
    if explainer:
        args.append("--explainer")
    else:  # the explainer replica answers :explain, so the predictor needs no explaining process of its own
        args += ["--explain-in", "thread"]
        if request.runtime != "keras":
            args += ["--runtime", request.runtime]
    return V1Container(
        name="kserve-container",
        image=request.image,
        command=["python", "-m", "shopfloor.serving.server"],
        args=args,
        env=_env(request, explainer=explainer),
        ports=[V1ContainerPort(name="http1", container_port=HTTP_PORT, protocol="TCP")],
        resources=V1ResourceRequirements(
            requests={"cpu": "1", "memory": "2Gi"},
            limits={"cpu": "2", "memory": "4Gi"},
        ),
        # live = the process answers at all; a model still loading is not ready, but must not be restarted
        readiness_probe=_ready_probe(f"/v2/models/{request.model_name}/ready", initial_delay_seconds=5),
        liveness_probe=_live_probe(initial_delay_seconds=30),
        security_context=_security_context(),
        # the root filesystem is read-only: scratch (downloads, Keras' and matplotlib's caches) goes to an emptyDir
        volume_mounts=[
            V1VolumeMount(name=SCRATCH_VOLUME, mount_path="/tmp"),
            *([] if explainer else [V1VolumeMount(name=API_TOKENS_VOLUME, mount_path=API_TOKENS_DIR, read_only=True)]),
        ],
    )


def _ready_probe(path: str, initial_delay_seconds: int) -> V1Probe:
    """Readiness on ``path``: traffic only once the model is loaded."""
    return V1Probe(
        http_get=V1HTTPGetAction(path=path, port=HTTP_PORT),
        initial_delay_seconds=initial_delay_seconds,
        period_seconds=10,
        failure_threshold=3,
    )


def _live_probe(initial_delay_seconds: int) -> V1Probe:
    """Liveness on ``/v2/health/live``: the process answers at all."""
    return V1Probe(
        http_get=V1HTTPGetAction(path="/v2/health/live", port=HTTP_PORT),
        initial_delay_seconds=initial_delay_seconds,
        period_seconds=20,
        timeout_seconds=5,
        failure_threshold=3,
    )


def _security_context() -> V1SecurityContext:
    """Every serving container's: user 1000, no privileges, read-only root filesystem."""
    return V1SecurityContext(
        run_as_non_root=True,
        run_as_user=1000,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=V1Capabilities(drop=["ALL"]),
        seccomp_profile=V1SeccompProfile(type="RuntimeDefault"),
    )


def _secret_env(key: str) -> V1EnvVar:
    """One S3 setting from the Secret ``shopfloor-s3``, resolved by the kubelet (the manifest holds no value)."""
    return V1EnvVar(name=key, value_from=V1EnvVarSource(secret_key_ref=V1SecretKeySelector(name=S3_SECRET, key=key)))


def _edge_container(request: DeploymentRequest) -> V1Container:
    """The ``kserve-container`` running the edge runtime on the deployed version's TFLite export.

    The runtime downloads the version's edge files from the store (S3 keys from the Secret), so the container
    has no ``STORAGE_URI``; ready = the model is loaded (``/v2/health/ready``), as the edge image's healthcheck.
    """
    args = edge_arguments(edge_source(request), "0.0.0.0", HTTP_PORT, f"{EDGE_STATE}/models")
    if request.payload_log_uri:
        args += ["--payload-log", request.payload_log_uri, "--payload-spool", f"{EDGE_STATE}/spool"]
    return V1Container(
        name="kserve-container",
        image=request.image,
        command=["python", "-m", "shopfloor.edge"],
        args=args,
        env=[
            V1EnvVar(name="SHOPFLOOR_MODEL_VERSION", value=request.model_version),
            V1EnvVar(name="HOME", value="/tmp"),
            *(_secret_env(key) for key in S3_SECRET_KEYS),
        ],
        ports=[V1ContainerPort(name="http1", container_port=HTTP_PORT, protocol="TCP")],
        # LiteRT and NumPy: ~55 MB resident for a window model (README "Edge"), an image CNN more
        resources=V1ResourceRequirements(
            requests={"cpu": "250m", "memory": "256Mi"},
            limits={"cpu": "1", "memory": "1Gi"},
        ),
        readiness_probe=_ready_probe("/v2/health/ready", initial_delay_seconds=2),
        liveness_probe=_live_probe(initial_delay_seconds=10),
        security_context=_security_context(),
        volume_mounts=[V1VolumeMount(name=SCRATCH_VOLUME, mount_path="/tmp")],
    )


def _scratch_volume() -> V1Volume:
    """The writable scratch space of a serving container, bounded."""
    return V1Volume(name=SCRATCH_VOLUME, empty_dir=V1EmptyDirVolumeSource(size_limit="1Gi"))


def _api_tokens_volume() -> V1Volume:
    """The Secret saying who may write to the predictor; required, so a namespace without it fails visibly."""
    return V1Volume(
        name=API_TOKENS_VOLUME,
        secret=V1SecretVolumeSource(
            secret_name=API_TOKENS_SECRET, items=[V1KeyToPath(key=API_TOKENS_KEY, path=API_TOKENS_KEY)]
        ),
    )


def build_inference_service(request: DeploymentRequest, canary: bool = False) -> V1beta1InferenceService:
    """The ISVC for ``request``; ``canary`` sets ``canaryTrafficPercent`` (only meaningful over a serving version).

    A 100 % rollout carries no canary field, so KServe sends all traffic to the new revision once it is ready.
    An edge runtime's predictor is the edge runtime, without an explainer; the metrics annotations are the same.
    """
    percent = request.canary_traffic_percent if canary and request.canary_traffic_percent < 100 else None
    edge = request.runtime in EDGE_RUNTIMES
    predictor = V1beta1PredictorSpec(
        containers=[_edge_container(request) if edge else _container(request, explainer=False)],
        volumes=[_scratch_volume()] if edge else [_scratch_volume(), _api_tokens_volume()],
        service_account_name=request.service_account,
        min_replicas=1,
        max_replicas=3,
        canary_traffic_percent=percent,
    )
    explainer = None
    if request.explainer and not edge:  # a request refuses an explainer with an edge runtime already
        explainer = V1beta1ExplainerSpec(
            containers=[_container(request, explainer=True)],
            volumes=[_scratch_volume()],
            service_account_name=request.service_account,
            min_replicas=1,
            max_replicas=3,
            canary_traffic_percent=percent,
        )
    return V1beta1InferenceService(
        api_version=f"{API_GROUP}/{API_VERSION}",
        kind="InferenceService",
        metadata=V1ObjectMeta(
            name=request.model_name,
            namespace=request.namespace,
            labels={PART_OF_LABEL: "shopfloor"},
            annotations={VERSION_ANNOTATION: request.model_version, **METRICS_ANNOTATIONS},
        ),
        spec=V1beta1InferenceServiceSpec(predictor=predictor, explainer=explainer),
    )


def inference_service_manifest(request: DeploymentRequest, canary: bool = False) -> dict[str, Any]:
    """The ISVC as the JSON-able dict the API server receives (and ``infra/kserve`` checks in)."""
    return kubernetes.client.ApiClient().sanitize_for_serialization(build_inference_service(request, canary))


def merge_patch_between(source: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """The RFC 7386 merge patch that turns ``source`` into ``target`` (``None`` deletes a key; lists replace)."""
    patch: dict[str, Any] = {key: None for key in source if key not in target}
    for key, value in target.items():
        old = source.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            nested = merge_patch_between(old, value)
            if nested:
                patch[key] = nested
        elif key not in source or old != value:
            patch[key] = value
    return patch


@dataclasses.dataclass(frozen=True)
class Readiness:
    """What the controller says about one generation of an ISVC: ready, failed for good, or still pending."""

    state: Literal["ready", "failed", "pending"]
    reason: str = ""
    message: str = ""

    def describe(self) -> str:
        """One line: ``reason: message`` (shortened), for errors and progress."""
        text = ": ".join(part for part in (self.reason, self.message) if part) or self.state
        text = " ".join(text.split())
        return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."


def readiness(isvc: dict[str, Any], generation: int) -> Readiness:
    """Judge ``isvc``'s status for ``generation``: a status the controller wrote for an older spec is pending."""
    status = isvc.get("status") or {}
    observed = status.get("observedGeneration")
    if not isinstance(observed, int) or observed < generation:
        return Readiness("pending", "NotObserved", f"the controller has not reconciled generation {generation} yet")
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    for condition in conditions:
        if condition.get("status") == "False" and condition.get("reason") in TERMINAL_REASONS:
            return Readiness("failed", condition["reason"], condition.get("message", ""))
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None:
        return Readiness("pending", "NoReadyCondition", "no Ready condition yet")
    if ready.get("status") == "True":
        return Readiness("ready")
    return Readiness("pending", ready.get("reason", f"Ready={ready.get('status')}"), ready.get("message", ""))


def _without_canary(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of an ISVC spec with ``canaryTrafficPercent`` removed from every component."""
    spec = json.loads(json.dumps(spec))
    for component in spec.values():
        if isinstance(component, dict):
            component.pop("canaryTrafficPercent", None)
    return spec


def _refusal_text(error: ApiException) -> str:
    """``<code> <reason>: <message>`` from an API error, taking only the Status message (never request data)."""
    message = ""
    try:
        message = json.loads(error.body or "{}").get("message", "")
    except (TypeError, ValueError, AttributeError):
        pass
    return " ".join(f"{error.status} {error.reason}: {message}".split()).rstrip(":")


class KServeTarget:
    """Deploys to KServe through the Kubernetes API: create or canary-patch, wait for Ready, roll back on failure."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient | kubernetes.client.Configuration,
        *,
        poll_interval_s: float = 5.0,
    ):
        if isinstance(api_client, kubernetes.client.Configuration):
            api_client = kubernetes.client.ApiClient(api_client)
        self._api = kubernetes.client.CustomObjectsApi(api_client)
        self._host = api_client.configuration.host
        self.poll_interval_s = poll_interval_s

    @classmethod
    def from_cluster(cls, *, poll_interval_s: float = 5.0) -> KServeTarget:
        """Build from the pod's service account (in-cluster), else from the local kubeconfig."""
        configuration = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        except kubernetes.config.ConfigException:
            try:
                kubernetes.config.load_kube_config(client_configuration=configuration)
            except (kubernetes.config.ConfigException, OSError) as error:
                raise ShopfloorError(
                    "kubernetes",
                    f"no in-cluster service account and no usable kubeconfig ({type(error).__name__})",
                    expected="to run in a pod, or a kubeconfig at $KUBECONFIG or ~/.kube/config",
                ) from None
        return cls(kubernetes.client.ApiClient(configuration), poll_interval_s=poll_interval_s)

    def deploy(self, request: DeploymentRequest) -> Endpoint:
        """Serve ``request``'s version; if it does not become ready, restore what served before and raise."""
        previous, written = self._create_or_update(request)
        outcome, current = self._wait(request, written["metadata"]["generation"])
        if outcome.state == "ready":
            url = (current.get("status") or {}).get("url") or (
                f"http://{request.model_name}.{request.namespace}.svc.cluster.local"
            )
            report_progress(f"{self._source(request)}: version {request.model_version} is ready at {url}")
            return Endpoint("kserve", url.rstrip("/"), request.model_name, request.model_version)
        rolled_back = self._roll_back(request, previous)
        raise DeploymentFailed(
            self._source(request),
            f"version {request.model_version} did not become ready: {outcome.describe()}; {rolled_back}",
        )

    # -- API calls -------------------------------------------------------------------------------------------

    def _call(self, request: DeploymentRequest, action: str, call: Callable[[], Any], passthrough: set[int]) -> Any:
        """Run one API call; errors other than the ``passthrough`` statuses become one-line ``DeploymentFailed``."""
        try:
            return call()
        except ApiException as error:
            if error.status in passthrough:
                raise
            raise DeploymentFailed(
                self._source(request), f"{action} was refused by the API server: {_refusal_text(error)}"
            ) from None
        except urllib3.exceptions.HTTPError as error:
            raise DeploymentFailed(
                self._source(request),
                f"{action} failed: cannot reach the Kubernetes API at {self._host} ({type(error).__name__})",
            ) from None

    def _read(self, request: DeploymentRequest) -> dict[str, Any] | None:
        """GET the ISVC, or ``None`` when it does not exist."""
        try:
            return self._call(
                request,
                "reading the InferenceService",
                lambda: self._api.get_namespaced_custom_object(
                    API_GROUP,
                    API_VERSION,
                    request.namespace,
                    PLURAL,
                    request.model_name,
                    _request_timeout=_REQUEST_TIMEOUT_S,
                ),
                {404},
            )
        except ApiException:
            return None

    def _create(self, request: DeploymentRequest, body: dict[str, Any]) -> dict[str, Any]:
        """POST a new ISVC (a 409 AlreadyExists is passed up so the caller re-reads and patches instead)."""
        return self._call(
            request,
            "creating the InferenceService",
            lambda: self._api.create_namespaced_custom_object(
                API_GROUP, API_VERSION, request.namespace, PLURAL, body, _request_timeout=_REQUEST_TIMEOUT_S
            ),
            {409},
        )

    def _patch(self, request: DeploymentRequest, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the ISVC (a 409 Conflict on a stale resourceVersion is passed up to re-read and retry)."""
        return self._call(
            request,
            action,
            lambda: self._api.patch_namespaced_custom_object(
                API_GROUP,
                API_VERSION,
                request.namespace,
                PLURAL,
                request.model_name,
                body,
                _request_timeout=_REQUEST_TIMEOUT_S,
            ),
            {409},
        )

    # -- rollout ---------------------------------------------------------------------------------------------

    def _create_or_update(self, request: DeploymentRequest) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Create the ISVC, or patch it to the new version; return (the object before, the object written)."""
        for _ in range(MAX_CONFLICT_RETRIES):
            current = self._read(request)
            try:
                if current is None:
                    report_progress(f"{self._source(request)}: creating version {request.model_version}")
                    return None, self._create(request, inference_service_manifest(request))
                serving = (current["metadata"].get("annotations") or {}).get(VERSION_ANNOTATION)
                canary = request.canary_traffic_percent < 100 and serving != request.model_version
                desired = inference_service_manifest(request, canary=canary)
                share = f"{request.canary_traffic_percent} % canary" if canary else "full rollout"
                report_progress(
                    f"{self._source(request)}: updating {serving or 'unversioned'} -> {request.model_version} ({share})"
                )
                # We own the spec: the patch makes it exactly ours (fields we no longer set, such as the canary
                # or the explainer, are nulled; a field KServe's webhook defaults comes back as it was). In
                # metadata we only set our keys, so other tools' labels and annotations survive.
                patch = {
                    "metadata": {
                        "resourceVersion": current["metadata"]["resourceVersion"],
                        "labels": desired["metadata"]["labels"],
                        "annotations": desired["metadata"]["annotations"],
                    },
                    "spec": merge_patch_between(current.get("spec") or {}, desired["spec"]),
                }
                return current, self._patch(request, "updating the InferenceService", patch)
            except ApiException:
                continue  # 409: another writer got there first; re-read and build the write again
        raise DeploymentFailed(
            self._source(request),
            f"version {request.model_version} was not written: {MAX_CONFLICT_RETRIES} conflicting writes in a row",
            expected="no other writer updating this InferenceService all the time",
        )

    def _wait(self, request: DeploymentRequest, generation: int) -> tuple[Readiness, dict[str, Any]]:
        """Poll until ``generation`` is ready or failed for good, or ``ready_timeout_s`` has passed."""
        deadline = time.monotonic() + request.ready_timeout_s
        last = Readiness("pending", "NotObserved", "no status read yet")
        while True:
            current = self._read(request)
            if current is None:
                return Readiness("failed", "NotFound", "the InferenceService was deleted while waiting"), {}
            outcome = readiness(current, generation)
            if outcome.state != "pending":
                return outcome, current
            if outcome != last:
                report_progress(f"{self._source(request)}: waiting for Ready ({outcome.describe()})")
                last = outcome
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waited = f"not Ready within {request.ready_timeout_s:g} s (last: {outcome.describe()})"
                return Readiness("failed", "Timeout", waited), current
            time.sleep(min(self.poll_interval_s, remaining))

    def _roll_back(self, request: DeploymentRequest, previous: dict[str, Any] | None) -> str:
        """Undo the failed write: delete a fresh ISVC, or patch the previous spec back; say what was done."""
        if previous is None:
            try:
                self._call(
                    request,
                    "deleting the failed InferenceService",
                    lambda: self._api.delete_namespaced_custom_object(
                        API_GROUP,
                        API_VERSION,
                        request.namespace,
                        PLURAL,
                        request.model_name,
                        _request_timeout=_REQUEST_TIMEOUT_S,
                    ),
                    {404},
                )
            except ApiException:
                pass  # already gone: nothing to undo
            report_progress(f"{self._source(request)}: deleted the failed InferenceService")
            return "deleted the new InferenceService (no earlier version was serving)"
        version = (previous["metadata"].get("annotations") or {}).get(VERSION_ANNOTATION)
        label = f"version {version}" if version else "the previous (unversioned) spec"
        target_spec = _without_canary(previous.get("spec") or {})
        for _ in range(MAX_CONFLICT_RETRIES):
            current = self._read(request)
            if current is None:
                return f"could not roll back to {label}: the InferenceService was deleted meanwhile"
            patch = {
                "metadata": {
                    "resourceVersion": current["metadata"]["resourceVersion"],
                    "annotations": {VERSION_ANNOTATION: version},
                },
                "spec": merge_patch_between(current.get("spec") or {}, target_spec),
            }
            try:
                restored = self._patch(request, "rolling back the InferenceService", patch)
            except ApiException:
                continue
            report_progress(f"{self._source(request)}: rolling back to {label}")
            outcome, _ = self._wait(request, restored["metadata"]["generation"])
            if outcome.state == "ready":
                return f"rolled back to {label} (canary removed)"
            return f"rolled back to {label} (canary removed), but it did not become ready either: {outcome.describe()}"
        return f"could not roll back to {label}: {MAX_CONFLICT_RETRIES} conflicting writes in a row"

    @staticmethod
    def _source(request: DeploymentRequest) -> str:
        """How errors and progress name the ISVC."""
        return f"inferenceservice {request.namespace}/{request.model_name}"
