"""KServeTarget against a real HTTP stand-in of the Kubernetes API: create, canary update, conflicts, rollbacks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import kubernetes.client
import pytest
import yaml

from shopfloor.common.config import DeployConfig
from shopfloor.common.errors import ShopfloorError
from shopfloor.components._image import EDGE_IMAGE, IMAGE, IMAGE_REFERENCE, SERVING_IMAGE, edge_image
from shopfloor.components.deploy.deploy import deployment_request
from shopfloor.components.deploy.kserve_target import (
    METRICS_ANNOTATIONS,
    VERSION_ANNOTATION,
    KServeTarget,
    inference_service_manifest,
    merge_patch_between,
    readiness,
)
from shopfloor.components.deploy.target import DeploymentFailed, DeploymentRequest, DeployTarget, Endpoint
from tests.components.deploy.k8s_api import (
    FakeKubernetesApi,
    apply_merge_patch,
    becomes_ready_after,
    fails_with,
    never_ready,
)

NAMESPACE = "kubeflow-user-example-com"
NAME = "pm"
BASE = f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices"


def _request(version: str, **overrides) -> DeploymentRequest:
    settings = {
        "model_name": NAME,
        "model_uri": f"s3://mlpipeline/shopfloor/models/{NAME}/{version}",
        "model_version": version,
        "ready_timeout_s": 5.0,
    }
    return DeploymentRequest(**{**settings, **overrides})


@pytest.fixture
def api():
    with FakeKubernetesApi() as server:
        yield server


@pytest.fixture
def target(api: FakeKubernetesApi) -> KServeTarget:
    return KServeTarget(kubernetes.client.ApiClient(api.configuration()), poll_interval_s=0.01)


def _deployed(api: FakeKubernetesApi, target: KServeTarget, version: str) -> dict:
    """Deploy ``version`` as the one serving, then forget the requests it took."""
    target.deploy(_request(version))
    api.requests.clear()
    return api.get(NAMESPACE, NAME)


def _patches(api: FakeKubernetesApi) -> list:
    return [request for request in api.requests if request.method == "PATCH"]


# -- DeploymentRequest and Endpoint --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"model_name": "Predictive_Maintenance"}, "model_name"),
        ({"model_name": "-pm"}, "model_name"),
        ({"model_name": "p" * 64}, "model_name"),
        ({"namespace": "Kubeflow"}, "namespace"),
        ({"model_uri": ""}, "model_uri"),
        ({"model_version": " "}, "model_version"),
        ({"canary_traffic_percent": 0}, "canary_traffic_percent"),
        ({"canary_traffic_percent": 101}, "canary_traffic_percent"),
        ({"canary_traffic_percent": True}, "canary_traffic_percent"),
        ({"ready_timeout_s": 0}, "ready_timeout_s"),
        ({"runtime": "onnx"}, "runtime"),
    ],
)
def test_request_is_validated_naming_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ShopfloorError) as caught:
        _request("v-1", **overrides)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"deployment request: {field}: ")
    assert "\n" not in str(caught.value)


def test_request_defaults() -> None:
    request = _request("v-1")
    assert request.namespace == NAMESPACE
    assert request.service_account == "shopfloor-s3"
    assert request.image == SERVING_IMAGE == IMAGE
    assert request.canary_traffic_percent == 10
    assert request.explainer is True


def test_endpoint_urls_and_dict() -> None:
    endpoint = Endpoint("kserve", "http://pm.ns.example.com", "pm", "v-1")
    assert endpoint.v1_predict_url == "http://pm.ns.example.com/v1/models/pm:predict"
    assert endpoint.v1_explain_url == "http://pm.ns.example.com/v1/models/pm:explain"
    assert endpoint.v2_infer_url == "http://pm.ns.example.com/v2/models/pm/infer"
    assert json.loads(json.dumps(endpoint.to_dict())) == {
        "target": "kserve",
        "url": "http://pm.ns.example.com",
        "model_name": "pm",
        "model_version": "v-1",
        "v1_predict_url": endpoint.v1_predict_url,
        "v1_explain_url": endpoint.v1_explain_url,
        "v2_infer_url": endpoint.v2_infer_url,
        "sites": [],
        "site_predict_urls": {},
    }
    fleet = Endpoint("kserve", "http://pm.ns.example.com", "pm", "v-1", sites=("site-a", "site-b"))
    assert fleet.to_dict()["site_predict_urls"] == {
        "site-a": "http://pm.ns.example.com/v1/models/pm-site-a:predict",
        "site-b": "http://pm.ns.example.com/v1/models/pm-site-b:predict",
    }


def test_kserve_target_is_a_deploy_target(target: KServeTarget) -> None:
    deploy_target: DeployTarget = target
    assert callable(deploy_target.deploy)


# -- the InferenceService ------------------------------------------------------------------------------------


def test_manifest_runs_the_serving_server_with_the_model_from_storage() -> None:
    manifest = inference_service_manifest(_request("v-1", payload_log_uri="s3://logs/pm"))
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert manifest["kind"] == "InferenceService"
    # the server's /metrics, for KServe to advertise to Prometheus (port and path on the pods)
    assert manifest["metadata"]["annotations"] == {VERSION_ANNOTATION: "v-1", **METRICS_ANNOTATIONS}
    assert METRICS_ANNOTATIONS["prometheus.kserve.io/port"] == "8080"
    assert manifest["metadata"]["labels"] == {"app.kubernetes.io/part-of": "shopfloor"}
    predictor = manifest["spec"]["predictor"]
    assert (predictor["serviceAccountName"], predictor["minReplicas"], predictor["maxReplicas"]) == (
        "shopfloor-s3",
        1,
        3,
    )
    assert "canaryTrafficPercent" not in predictor
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"
    assert container["image"] == SERVING_IMAGE
    assert container["command"] == ["python", "-m", "shopfloor.serving.server"]
    assert container["args"] == [
        "--model-dir",
        "/mnt/models",
        "--model-name",
        NAME,
        "--host",
        "0.0.0.0",
        "--http-port",
        "8080",
        "--explain-in",
        "thread",  # the explainer replica explains: no second TensorFlow process in the predictor's pod
    ]
    from_secret = {env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"] if "valueFrom" in env}
    assert from_secret == {  # the server writes payload logs to S3 itself: the Secret's credentials, never values
        key: {"name": "shopfloor-s3", "key": key}
        for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    assert {env["name"]: env["value"] for env in container["env"] if "value" in env} == {
        "STORAGE_URI": "s3://mlpipeline/shopfloor/models/pm/v-1",
        "SHOPFLOOR_MODEL_VERSION": "v-1",
        "HOME": "/tmp",
        "SHOPFLOOR_PAYLOAD_LOG_URI": "s3://logs/pm",
        "SHOPFLOOR_FEEDBACK_URI": "s3://mlpipeline/shopfloor/models",  # the store, which /mnt/models does not say
        "SHOPFLOOR_API_TOKENS_FILE": "/var/run/secrets/shopfloor/api-tokens/tokens.yaml",
    }
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }
    assert container["readinessProbe"]["httpGet"] == {"path": f"/v2/models/{NAME}/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["runAsNonRoot"] is True and security["capabilities"] == {"drop": ["ALL"]}
    tokens = {"mountPath": "/var/run/secrets/shopfloor/api-tokens", "name": "api-tokens", "readOnly": True}
    assert container["volumeMounts"] == [{"mountPath": "/tmp", "name": "scratch"}, tokens]
    scratch = {"emptyDir": {"sizeLimit": "1Gi"}, "name": "scratch"}  # bounded
    tokens_secret = {"secretName": "shopfloor-api-tokens", "items": [{"key": "tokens.yaml", "path": "tokens.yaml"}]}
    assert predictor["volumes"] == [scratch, {"name": "api-tokens", "secret": tokens_secret}]
    explainer = manifest["spec"]["explainer"]
    (explainer_container,) = explainer["containers"]
    assert explainer_container["args"] == [*container["args"][:-2], "--explainer"]
    assert explainer_container["env"] == container["env"][:3], "only the predictor writes (payloads, feedback)"
    assert explainer_container["volumeMounts"] == [{"mountPath": "/tmp", "name": "scratch"}], "no write rights"
    assert explainer["volumes"] == [scratch]
    assert explainer["serviceAccountName"] == "shopfloor-s3"


def test_manifest_options_canary_payload_log_and_explainer() -> None:
    plain = inference_service_manifest(_request("v-1", explainer=False))
    assert "explainer" not in plain["spec"]
    assert "SHOPFLOOR_PAYLOAD_LOG_URI" not in json.dumps(plain)
    canary = inference_service_manifest(_request("v-1", canary_traffic_percent=25), canary=True)
    assert canary["spec"]["predictor"]["canaryTrafficPercent"] == 25
    assert canary["spec"]["explainer"]["canaryTrafficPercent"] == 25
    full = inference_service_manifest(_request("v-1", canary_traffic_percent=100), canary=True)
    assert "canaryTrafficPercent" not in json.dumps(full)


def test_manifest_edge_runtime_is_the_predictors_alone() -> None:
    manifest = inference_service_manifest(_request("v-1", runtime="tflite-int8"))
    predictor = manifest["spec"]["predictor"]["containers"][0]["args"]
    explainer = manifest["spec"]["explainer"]["containers"][0]["args"]
    assert predictor[-2:] == ["--runtime", "tflite-int8"]
    assert "--runtime" not in explainer and explainer[-1] == "--explainer", "Grad-CAM needs the Keras model"
    assert "--runtime" not in json.dumps(inference_service_manifest(_request("v-1"))), "keras is the server's default"


def test_merge_patch_between_turns_source_into_target() -> None:
    source = {"a": 1, "b": {"c": 2, "d": [1, 2]}, "gone": {"x": 1}}
    target = {"a": 1, "b": {"c": 3, "d": [1]}, "new": {"y": 0}}
    patch = merge_patch_between(source, target)
    assert patch == {"gone": None, "b": {"c": 3, "d": [1]}, "new": {"y": 0}}
    assert apply_merge_patch(source, patch) == target


def test_readiness_ignores_a_status_written_for_an_older_generation() -> None:
    ready = {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}
    assert readiness({"status": ready}, 1).state == "ready"
    assert readiness({"status": ready}, 2).state == "pending"
    failed = {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "False", "reason": "RevisionFailed"}]}
    assert readiness({"status": failed}, 2).state == "failed"
    waiting = {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "False", "reason": "Deploying"}]}
    assert readiness({"status": waiting}, 2).state == "pending"
    assert readiness({}, 1).state == "pending"


# -- deploy against the API stand-in -------------------------------------------------------------------------


def test_first_deploy_creates_and_waits_until_ready(api: FakeKubernetesApi, target: KServeTarget) -> None:
    api.plan(becomes_ready_after(3))
    request = _request("v-1")

    endpoint = target.deploy(request)

    assert api.methods() == ["GET", "POST", "GET", "GET", "GET"]
    assert [r.status for r in api.requests[:2]] == [404, 201]
    assert api.requests[0].path == f"{BASE}/{NAME}"
    post = api.requests[1]
    assert (post.path, post.content_type) == (BASE, "application/json")
    assert post.body == inference_service_manifest(request)
    assert "canaryTrafficPercent" not in json.dumps(post.body)
    stored = api.get(NAMESPACE, NAME)
    assert stored["metadata"]["generation"] == 1
    assert stored["metadata"]["annotations"][VERSION_ANNOTATION] == "v-1"
    assert endpoint == Endpoint("kserve", f"http://{NAME}.{NAMESPACE}.example.com", NAME, "v-1")
    assert endpoint.v1_predict_url == f"http://{NAME}.{NAMESPACE}.example.com/v1/models/{NAME}:predict"
    assert endpoint.v2_infer_url == f"http://{NAME}.{NAMESPACE}.example.com/v2/models/{NAME}/infer"


def test_update_is_a_merge_patch_with_canary_and_waits_for_the_new_generation(
    api: FakeKubernetesApi, target: KServeTarget
) -> None:
    before = _deployed(api, target, "v-1")
    api.plan(becomes_ready_after(3))

    endpoint = target.deploy(_request("v-2"))

    (patch,) = _patches(api)
    assert patch.content_type == "application/merge-patch+json"
    assert patch.path == f"{BASE}/{NAME}"
    assert patch.body["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert patch.body["metadata"]["annotations"] == {VERSION_ANNOTATION: "v-2", **METRICS_ANNOTATIONS}
    assert patch.body["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert patch.body["spec"]["explainer"]["canaryTrafficPercent"] == 10
    # The old Ready=True (generation 1) is not taken for the new version: three reads after the write.
    assert api.methods() == ["GET", "PATCH", "GET", "GET", "GET"]
    stored = api.get(NAMESPACE, NAME)
    assert stored["metadata"]["generation"] == 2
    assert stored["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert stored["spec"]["predictor"]["containers"][0]["env"][0] == {
        "name": "STORAGE_URI",
        "value": "s3://mlpipeline/shopfloor/models/pm/v-2",
    }
    assert (endpoint.model_version, endpoint.url) == ("v-2", f"http://{NAME}.{NAMESPACE}.example.com")


def test_full_rollout_removes_the_canary(api: FakeKubernetesApi, target: KServeTarget) -> None:
    _deployed(api, target, "v-1")
    target.deploy(_request("v-2"))
    api.requests.clear()

    target.deploy(_request("v-2", canary_traffic_percent=100))

    (patch,) = _patches(api)
    assert patch.body["spec"]["predictor"] == {"canaryTrafficPercent": None}
    assert patch.body["spec"]["explainer"] == {"canaryTrafficPercent": None}
    stored = api.get(NAMESPACE, NAME)
    assert "canaryTrafficPercent" not in json.dumps(stored["spec"])
    assert stored["metadata"]["generation"] == 3


def test_redeploying_the_serving_version_is_not_a_canary(api: FakeKubernetesApi, target: KServeTarget) -> None:
    _deployed(api, target, "v-1")
    target.deploy(_request("v-1"))
    (patch,) = _patches(api)
    assert patch.body["spec"] == {}
    assert api.get(NAMESPACE, NAME)["metadata"]["generation"] == 1


def test_dropping_the_explainer_removes_it(api: FakeKubernetesApi, target: KServeTarget) -> None:
    _deployed(api, target, "v-1")
    target.deploy(_request("v-2", explainer=False, canary_traffic_percent=100))
    (patch,) = _patches(api)
    assert patch.body["spec"]["explainer"] is None
    assert "explainer" not in api.get(NAMESPACE, NAME)["spec"]


def test_stale_resource_version_conflict_is_reread_and_retried(api: FakeKubernetesApi, target: KServeTarget) -> None:
    before = _deployed(api, target, "v-1")
    api.conflict_on_next_patch()

    target.deploy(_request("v-2"))

    first, second = _patches(api)
    assert (first.status, second.status) == (409, 200)
    assert first.body["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert second.body["metadata"]["resourceVersion"] != first.body["metadata"]["resourceVersion"]
    assert api.methods()[:4] == ["GET", "PATCH", "GET", "PATCH"]
    stored = api.get(NAMESPACE, NAME)
    assert stored["metadata"]["annotations"][VERSION_ANNOTATION] == "v-2"
    assert stored["metadata"]["annotations"]["example.com/touched-by"].startswith("other-writer")


def test_failed_revision_is_rolled_back_to_the_previous_spec(api: FakeKubernetesApi, target: KServeTarget) -> None:
    before = _deployed(api, target, "v-1")
    api.plan(fails_with("RevisionFailed", "Container failed with: exit code 1\nsee logs"), becomes_ready_after(1))

    started = time.monotonic()
    with pytest.raises(DeploymentFailed) as caught:
        target.deploy(_request("v-2", ready_timeout_s=30.0))

    assert time.monotonic() - started < 5, "a terminal failure must not wait for the timeout"
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"inferenceservice {NAMESPACE}/{NAME}: version v-2 did not become ready: RevisionFailed")
    assert "rolled back to version v-1 (canary removed)" in message
    forward, rollback = _patches(api)
    assert forward.body["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert rollback.body["metadata"]["annotations"] == {VERSION_ANNOTATION: "v-1"}
    assert rollback.body["spec"]["predictor"]["canaryTrafficPercent"] is None
    stored = api.get(NAMESPACE, NAME)
    assert stored["spec"] == before["spec"]
    assert stored["metadata"]["annotations"][VERSION_ANNOTATION] == "v-1"
    assert stored["metadata"]["generation"] == 3
    assert stored["status"]["conditions"][-1] == {**stored["status"]["conditions"][-1], "status": "True"}


def test_timeout_is_rolled_back(api: FakeKubernetesApi, target: KServeTarget) -> None:
    before = _deployed(api, target, "v-1")
    api.plan(never_ready(), becomes_ready_after(1))

    with pytest.raises(DeploymentFailed) as caught:
        target.deploy(_request("v-2", ready_timeout_s=0.2))

    message = str(caught.value)
    assert "version v-2 did not become ready: Timeout: not Ready within 0.2 s (last: RevisionMissing" in message
    assert message.endswith("rolled back to version v-1 (canary removed)")
    assert api.get(NAMESPACE, NAME)["spec"] == before["spec"]
    assert len(_patches(api)) == 2


def test_rollback_that_does_not_recover_says_so(api: FakeKubernetesApi, target: KServeTarget) -> None:
    _deployed(api, target, "v-1")
    api.plan(fails_with("RevisionFailed"), fails_with("ContainerCrashLoop", "back-off restarting"))

    with pytest.raises(DeploymentFailed, match="did not become ready either: ContainerCrashLoop: back-off restarting"):
        target.deploy(_request("v-2"))


def test_first_deploy_that_never_becomes_ready_is_deleted(api: FakeKubernetesApi, target: KServeTarget) -> None:
    api.plan(never_ready())

    with pytest.raises(DeploymentFailed) as caught:
        target.deploy(_request("v-1", ready_timeout_s=0.2))

    assert api.methods()[:2] == ["GET", "POST"]
    assert api.requests[-1].method == "DELETE"
    assert (api.requests[-1].path, api.requests[-1].status) == (f"{BASE}/{NAME}", 200)
    assert api.get(NAMESPACE, NAME) is None
    message = str(caught.value)
    assert "version v-1 did not become ready: Timeout" in message
    assert message.endswith("deleted the new InferenceService (no earlier version was serving)")


def test_api_refusal_is_one_line_deployment_failed(
    api: FakeKubernetesApi, target: KServeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stand-in refuses a create whose metadata.namespace differs from the URL's, as the API server does.
    def wrong_namespace(request: DeploymentRequest, canary: bool = False) -> dict:
        manifest = inference_service_manifest(request, canary)
        manifest["metadata"]["namespace"] = "elsewhere"
        return manifest

    monkeypatch.setattr("shopfloor.components.deploy.kserve_target.inference_service_manifest", wrong_namespace)
    with pytest.raises(DeploymentFailed) as caught:
        target.deploy(_request("v-1"))
    assert str(caught.value) == (
        f"inferenceservice {NAMESPACE}/{NAME}: creating the InferenceService was refused by the API server: "
        "400 Bad Request: the namespace of the provided object does not match the namespace sent on the request"
    )


def test_unreachable_api_is_one_line_deployment_failed() -> None:
    with FakeKubernetesApi() as gone:
        configuration = gone.configuration()
    configuration.retries = 0
    target = KServeTarget(configuration, poll_interval_s=0.01)
    with pytest.raises(DeploymentFailed, match="cannot reach the Kubernetes API at http://127.0.0.1:"):
        target.deploy(_request("v-1"))


def test_from_cluster_falls_back_to_the_kubeconfig(
    api: FakeKubernetesApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stand-in", "cluster": {"server": api.url}}],
        "users": [{"name": "tester", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "tester"}}],
        "current-context": "stand-in",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(path))

    endpoint = KServeTarget.from_cluster(poll_interval_s=0.01).deploy(_request("v-1"))

    assert endpoint.url == f"http://{NAME}.{NAMESPACE}.example.com"
    assert api.methods()[:2] == ["GET", "POST"]


def test_from_cluster_without_any_config_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "missing"))
    with pytest.raises(ShopfloorError, match="^kubernetes: no in-cluster service account and no usable kubeconfig"):
        KServeTarget.from_cluster()


# -- the edge runtime as the predictor (deploy.runtime edge-float32 | edge-int8) -----------------------------------


def test_manifest_edge_int8_runs_the_edge_runtime_pinned_to_the_version() -> None:
    config = DeployConfig(runtime="edge-int8", explainer=False, payload_log_uri="s3://logs/pm")
    request = deployment_request(f"s3://mlpipeline/shopfloor/models/{NAME}/v-1", NAME, config, SERVING_IMAGE)
    manifest = inference_service_manifest(request, canary=True)
    assert manifest["metadata"]["annotations"] == {VERSION_ANNOTATION: "v-1", **METRICS_ANNOTATIONS}
    assert "explainer" not in manifest["spec"], "the edge runtime has no explain route"
    predictor = manifest["spec"]["predictor"]
    assert predictor["serviceAccountName"] == "shopfloor-s3" and predictor["canaryTrafficPercent"] == 10
    (container,) = predictor["containers"]
    assert container["image"] == EDGE_IMAGE == SERVING_IMAGE.replace("/shopfloor:", "/shopfloor-edge:")
    assert container["command"] == ["python", "-m", "shopfloor.edge"]
    assert container["args"] == [
        "--model-store",
        "s3://mlpipeline/shopfloor/models",
        "--model",
        NAME,
        "--version",
        "v-1",  # pinned: the predictor never follows latest.json past a canary or a rollback
        "--variant",
        "int8",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "--cache-dir",
        "/tmp/shopfloor-edge/models",
        "--payload-log",
        "s3://logs/pm",
        "--payload-spool",
        "/tmp/shopfloor-edge/spool",
    ]
    env = {entry["name"]: entry for entry in container["env"]}
    assert "STORAGE_URI" not in env, "no storage initializer: the runtime reads only the edge files from the store"
    assert env["SHOPFLOOR_MODEL_VERSION"]["value"] == "v-1"
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key] == {"name": key, "valueFrom": {"secretKeyRef": {"key": key, "name": "shopfloor-s3"}}}
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert container["ports"] == [{"containerPort": 8080, "name": "http1", "protocol": "TCP"}]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["volumeMounts"] == [{"mountPath": "/tmp", "name": "scratch"}], "cache and spool on scratch"
    assert predictor["volumes"] == [{"emptyDir": {"sizeLimit": "1Gi"}, "name": "scratch"}]


def test_manifest_edge_float32_without_payload_log() -> None:
    manifest = inference_service_manifest(_request("v-1", runtime="edge-float32", explainer=False, image=EDGE_IMAGE))
    args = manifest["spec"]["predictor"]["containers"][0]["args"]
    assert args[args.index("--variant") + 1] == "float32"
    assert "--payload-log" not in args


def test_edge_runtime_request_refuses_an_explainer_and_a_uri_of_another_model() -> None:
    with pytest.raises(ShopfloorError, match=r"^deployment request: explainer: runtime edge-int8 has no explain route"):
        _request("v-1", runtime="edge-int8")
    other = _request("v-1", runtime="edge-int8", explainer=False, model_uri="s3://models/other/v-1")
    with pytest.raises(ShopfloorError, match="model_uri: 's3://models/other/v-1' is not a published version of 'pm'"):
        inference_service_manifest(other)
    model_folder = _request("v-1", runtime="edge-int8", explainer=False, model_uri="s3://models/pm/v-1/model/")
    assert "s3://models" in inference_service_manifest(model_folder)["spec"]["predictor"]["containers"][0]["args"]


def test_edge_image_follows_the_compiled_image() -> None:
    assert (
        edge_image("registry.plant.local:5000/ml/shopfloor:2026.11")
        == "registry.plant.local:5000/ml/shopfloor-edge:2026.11"
    )
    assert edge_image("registry.plant.local:5000/ml/shopfloor") == "registry.plant.local:5000/ml/shopfloor-edge:latest"
    digest = "@sha256:" + "a" * 64
    assert edge_image(f"r.io/shopfloor:1.2{digest}") == "r.io/shopfloor-edge:1.2", "the digest is not the edge image's"
    assert IMAGE_REFERENCE.fullmatch(EDGE_IMAGE)
