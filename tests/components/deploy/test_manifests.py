"""infra/kserve and the serving Dockerfile, checked without a cluster: client models, a strict schema, no secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import kserve.models
import kubernetes.client
import kubernetes.client.models
import pytest
import yaml

from shopfloor.components._image import EDGE_IMAGE, IMAGE
from shopfloor.components.deploy.kserve_target import S3_SECRET, S3_SECRET_KEYS, inference_service_manifest
from shopfloor.components.deploy.target import DeploymentRequest

ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "infra" / "kserve" / "base"
DOCKERFILE = ROOT / "infra" / "images" / "serving.Dockerfile"

# The example values infra/kserve/base/inferenceservice.yaml is rendered with (its header says the same).
EXAMPLE_REQUEST = DeploymentRequest(
    model_name="predictive-maintenance",
    model_uri="s3://mlpipeline/shopfloor/models/predictive-maintenance/v-000000000000",
    model_version="v-000000000000",
    payload_log_uri="s3://mlpipeline/shopfloor/payload-logs",
)
# ... and infra/kserve/base/inferenceservice-visual-inspection.yaml: the inspection CNN, predicting with its int8
# TFLite export (deployment.runtime), explaining with Keras.
EDGE_EXAMPLE_REQUEST = DeploymentRequest(
    model_name="visual-inspection",
    model_uri="s3://mlpipeline/shopfloor/models/visual-inspection/v-000000000000",
    model_version="v-000000000000",
    payload_log_uri="s3://mlpipeline/shopfloor/payload-logs",
    runtime="tflite-int8",
)
RENDERED = {"inferenceservice.yaml": EXAMPLE_REQUEST, "inferenceservice-visual-inspection.yaml": EDGE_EXAMPLE_REQUEST}
MODEL_FOR_KIND = {
    ("serving.kserve.io/v1beta1", "InferenceService"): "V1beta1InferenceService",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "Secret"): "V1Secret",
}
_NATIVE = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "date": "string",
    "datetime": "string",
}


def _model_class(name: str) -> type | None:
    """A client model class by its OpenAPI name: KServe's models first, then Kubernetes' (KServe's refer to both)."""
    return getattr(kserve.models, name, None) or getattr(kubernetes.client.models, name, None)


class _ModelsApiClient(kubernetes.client.ApiClient):
    """The kubernetes client's own deserializer, resolving KServe model names too (unknown names stay raw JSON)."""

    def _ApiClient__deserialize(self, data: Any, klass: Any) -> Any:  # overrides the name-mangled private method
        if (
            isinstance(klass, str)
            and not klass.startswith(("list[", "dict("))
            and klass not in self.NATIVE_TYPES_MAPPING
        ):
            klass = _model_class(klass) or object
        return super()._ApiClient__deserialize(data, klass)


def _deserialize(data: dict[str, Any], model: str) -> Any:
    return _ModelsApiClient()._ApiClient__deserialize(data, model)


def _schema(type_name: str, definitions: dict[str, Any]) -> dict[str, Any]:
    """JSON schema of a client model type, from its ``openapi_types``/``attribute_map``; model objects are closed."""
    if match := re.fullmatch(r"list\[(.*)\]", type_name):
        return {"type": "array", "items": _schema(match.group(1), definitions)}
    if match := re.fullmatch(r"dict\(([^,]*), (.*)\)", type_name):
        return {"type": "object", "additionalProperties": _schema(match.group(2), definitions)}
    if type_name in _NATIVE:
        return {"type": _NATIVE[type_name]}
    cls = _model_class(type_name)
    if type_name == "object" or cls is None or not cls.openapi_types:
        return {}  # free-form (int-or-string ports, quantities) or a type the installed clients do not define
    if type_name not in definitions:
        definitions[type_name] = {}  # placeholder: recursive types refer to themselves
        definitions[type_name] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                cls.attribute_map[attr]: _schema(kind, definitions) for attr, kind in cls.openapi_types.items()
            },
        }
    return {"$ref": f"#/$defs/{type_name}"}


def _validator(model: str) -> jsonschema.Draft202012Validator:
    definitions: dict[str, Any] = {}
    root = _schema(model, definitions)
    return jsonschema.Draft202012Validator({**root, "$defs": definitions})


def _schema_errors(manifest: dict[str, Any], model: str) -> list[str]:
    """Each schema violation as ``<path>: <message>``, the path dotted as in kubectl explain."""
    errors = sorted(_validator(model).iter_errors(manifest), key=lambda error: list(map(str, error.absolute_path)))
    return [f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}" for error in errors]


def _manifest_files() -> list[Path]:
    return sorted(path for path in BASE.glob("*.yaml") if path.name != "kustomization.yaml")


def _load(path: Path) -> dict[str, Any]:
    documents = [document for document in yaml.safe_load_all(path.read_text()) if document is not None]
    assert len(documents) == 1, f"{path.name}: one object per file"
    return documents[0]


def _model_for(manifest: dict[str, Any]) -> str:
    return MODEL_FOR_KIND[(manifest["apiVersion"], manifest["kind"])]


# -- the InferenceService stays what the code renders --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_inferenceservice_yaml_is_what_the_code_renders(name: str) -> None:
    expected = inference_service_manifest(RENDERED[name])
    assert _load(BASE / name) == expected, (
        f"infra/kserve/base/{name} drifted from inference_service_manifest(); paste below its header:\n"
        + yaml.safe_dump(expected, sort_keys=False, width=120)
    )


# -- (a) client models: every field is known, nothing is dropped on the way --------------------------------------


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda path: path.name)
def test_manifest_round_trips_through_the_client_models(path: Path) -> None:
    manifest = _load(path)
    model = _deserialize(manifest, _model_for(manifest))
    assert type(model).__name__ == _model_for(manifest)
    assert kubernetes.client.ApiClient().sanitize_for_serialization(model) == manifest


def test_round_trip_drops_a_misspelt_field() -> None:
    manifest = _load(BASE / "inferenceservice.yaml")
    manifest["spec"]["predictor"]["canaryTraficPercent"] = 10
    round_trip = kubernetes.client.ApiClient().sanitize_for_serialization(
        _deserialize(manifest, "V1beta1InferenceService")
    )
    assert round_trip != manifest
    assert "canaryTraficPercent" not in round_trip["spec"]["predictor"]


# -- (b) a strict schema from the same models ------------------------------------------------------------------


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda path: path.name)
def test_manifest_matches_the_schema_of_its_client_model(path: Path) -> None:
    manifest = _load(path)
    assert _schema_errors(manifest, _model_for(manifest)) == []


def test_schema_rejects_a_misspelt_field_and_a_wrong_type_naming_the_path() -> None:
    manifest = _load(BASE / "inferenceservice.yaml")
    manifest["spec"]["predictor"]["canaryTraficPercent"] = 10
    manifest["spec"]["predictor"]["minReplicas"] = "1"
    manifest["spec"]["explainer"]["containers"][0]["ports"][0]["containerPort"] = True
    assert _schema_errors(manifest, "V1beta1InferenceService") == [
        "spec.explainer.containers.0.ports.0.containerPort: True is not of type 'integer'",
        "spec.predictor: Additional properties are not allowed ('canaryTraficPercent' was unexpected)",
        "spec.predictor.minReplicas: '1' is not of type 'integer'",
    ]


def test_schema_covers_the_nested_kubernetes_models() -> None:
    schema = _validator("V1beta1InferenceService").schema
    assert {"V1beta1PredictorSpec", "V1beta1ExplainerSpec", "V1Container", "V1Probe", "V1ObjectMeta"} <= set(
        schema["$defs"]
    )
    assert schema["$defs"]["V1beta1PredictorSpec"]["properties"]["canaryTrafficPercent"] == {"type": "integer"}


# -- (c) kustomization ------------------------------------------------------------------------------------------


def test_kustomization_lists_exactly_the_files_in_the_folder() -> None:
    kustomization = _load(BASE / "kustomization.yaml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources))
    assert sorted(resources) == [path.name for path in _manifest_files()]
    assert {path.name for path in BASE.iterdir()} == {"kustomization.yaml", *resources}


def test_service_account_and_secret_wire_the_s3_credentials() -> None:
    service_account = _load(BASE / "serviceaccount.yaml")
    secret = _load(BASE / "secret.yaml")
    isvc = _load(BASE / "inferenceservice.yaml")
    assert service_account["metadata"]["name"] == isvc["spec"]["predictor"]["serviceAccountName"] == "shopfloor-s3"
    assert service_account["secrets"] == [{"name": secret["metadata"]["name"]}]
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["annotations"] == {
        "serving.kserve.io/s3-endpoint": "minio-service.kubeflow:9000",
        "serving.kserve.io/s3-usehttps": "0",
        "serving.kserve.io/s3-region": "us-east-1",
    }
    namespaces = {_load(path)["metadata"]["namespace"] for path in _manifest_files()}
    assert namespaces == {"kubeflow-user-example-com"}


# -- (d) no secrets -------------------------------------------------------------------------------------------

_SECRET_LOOKING = [
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)(password|passwd|secret|token|access_?key)\s*[:=]\s*['\"]?(?!REPLACE_ME\b)[A-Za-z0-9+/=_-]{8,}"),
    re.compile(r"\b[A-Za-z0-9+/]{40,}={0,2}"),  # long base64 blobs
]


@pytest.mark.parametrize("path", [*_manifest_files(), BASE / "kustomization.yaml", DOCKERFILE], ids=lambda p: p.name)
def test_nothing_looks_like_a_real_secret(path: Path) -> None:
    text = path.read_text()
    for pattern in _SECRET_LOOKING:
        assert not pattern.search(text), f"{path.name}: {pattern.pattern} matches"


def test_secret_template_holds_only_placeholders() -> None:
    secret = _load(BASE / "secret.yaml")
    assert "data" not in secret, "no base64 data: stringData placeholders only"
    from shopfloor.pipelines.cluster import S3_KEYS

    assert secret["stringData"] == dict.fromkeys(S3_KEYS, "REPLACE_ME"), "every key the pipeline steps mount"
    assert "sealed-secrets" in (BASE / "secret.yaml").read_text().lower()


# -- the serving image --------------------------------------------------------------------------------------------


def test_serving_dockerfile_builds_on_the_component_image() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    froms = [line.split()[1] for line in instructions if line.upper().startswith("FROM ")]
    assert froms == ["${SHOPFLOOR_IMAGE}"], "the tag is a build argument"
    assert f"ARG SHOPFLOOR_IMAGE={IMAGE}" in instructions, "by default the package version's component image"
    assert "EXPOSE 8080" in instructions
    assert 'ENTRYPOINT ["python", "-m", "shopfloor.serving.server"]' in instructions
    users = [line.split()[1] for line in instructions if line.upper().startswith("USER ")]
    assert users and users[-1] == "1000"
    assert text.startswith("#") and "docker build -f infra/images/serving.Dockerfile" in text


@pytest.mark.parametrize(
    "leak",
    [
        "AWS_ACCESS_KEY_ID: AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "password: hunter2hunter2",
        "-----BEGIN RSA PRIVATE KEY-----",
    ],
)
def test_the_secret_check_catches_real_looking_values(leak: str) -> None:
    assert any(pattern.search(leak) for pattern in _SECRET_LOOKING)


# -- the edge runtime as the KServe predictor (rendered only: infra/kserve/base keeps the full server's) -----------


def test_edge_inferenceservice_fits_the_client_models_and_the_strict_schema() -> None:
    request = DeploymentRequest(
        model_name="predictive-maintenance",
        model_uri="s3://mlpipeline/shopfloor/models/predictive-maintenance/v-000000000000",
        model_version="v-000000000000",
        payload_log_uri="s3://mlpipeline/shopfloor/payload-logs",
        runtime="edge-int8",
        explainer=False,
        image=EDGE_IMAGE,
    )
    manifest = inference_service_manifest(request)
    assert _schema_errors(manifest, "V1beta1InferenceService") == []
    model = _deserialize(manifest, "V1beta1InferenceService")
    assert kubernetes.client.ApiClient().sanitize_for_serialization(model) == manifest
    assert not any(pattern.search(yaml.safe_dump(manifest)) for pattern in _SECRET_LOOKING), "Secret refs, no values"


def test_edge_predictor_reads_the_secret_the_pipeline_steps_and_the_template_hold() -> None:
    from shopfloor.pipelines.cluster import S3_KEYS
    from shopfloor.pipelines.cluster import S3_SECRET as STEPS_SECRET

    secret = _load(BASE / "secret.yaml")
    assert S3_SECRET == STEPS_SECRET == secret["metadata"]["name"]
    assert S3_SECRET_KEYS == S3_KEYS and set(S3_SECRET_KEYS) <= set(secret["stringData"])


def test_the_api_tokens_template_is_what_the_predictor_mounts_and_grants_nobody(tmp_path: Path) -> None:
    from shopfloor.components.deploy.kserve_target import API_TOKENS_KEY, API_TOKENS_SECRET
    from shopfloor.serving.auth import Authorizer

    secret = _load(BASE / "api-tokens-secret.yaml")
    assert secret["metadata"]["name"] == API_TOKENS_SECRET and set(secret["stringData"]) == {API_TOKENS_KEY}
    (tmp_path / API_TOKENS_KEY).write_text(secret["stringData"][API_TOKENS_KEY])
    assert Authorizer.from_file(tmp_path / API_TOKENS_KEY).grants == (), "as checked in, nobody may write"
    volumes = _load(BASE / "inferenceservice.yaml")["spec"]["predictor"]["volumes"]
    assert {
        "name": "api-tokens",
        "secret": {"secretName": API_TOKENS_SECRET, "items": [{"key": API_TOKENS_KEY, "path": API_TOKENS_KEY}]},
    } in volumes
