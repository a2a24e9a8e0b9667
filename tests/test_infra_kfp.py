"""infra/kfp: the Optuna Secret, the retrainer's RBAC and the monitoring schedule, checked without a cluster."""

import json
from pathlib import Path

import kfp_server_api
import kubernetes.client
import yaml

from shopfloor.pipelines.compile import COMPILED_DIR
from shopfloor.pipelines.search import OPTUNA_SECRET

KFP = Path(__file__).resolve().parents[1] / "infra" / "kfp"
KUBERNETES_MODELS = {
    "Secret": "V1Secret",
    "ServiceAccount": "V1ServiceAccount",
    "Role": "V1Role",
    "RoleBinding": "V1RoleBinding",
}


class _Response:
    def __init__(self, document: dict):
        self.data = json.dumps(document)


def kubernetes_documents(name: str) -> list:
    """Every document of a manifest, deserialized into the kubernetes client's model for its kind."""
    client = kubernetes.client.ApiClient()
    return [
        client.deserialize(_Response(d), KUBERNETES_MODELS[d["kind"]])
        for d in yaml.safe_load_all((KFP / name).read_text())
    ]


def test_optuna_secret_template_matches_the_pipeline() -> None:
    (secret,) = kubernetes_documents("optuna-secret.yaml")
    assert secret.metadata.name == OPTUNA_SECRET
    assert secret.string_data == {"url": "REPLACE_ME"}, "a template: the real URL never lives in git"


# What the monitoring pipeline's service account needs, and all it gets (README "Run it on Kubeflow" lists it):
# (API group, resource, resource name or "*", verb)
STATED_GRANTS = {
    ("argoproj.io", "workflowtaskresults", "*", "create"),
    ("argoproj.io", "workflowtaskresults", "*", "patch"),
    ("", "configmaps", "kfp-launcher", "get"),
    ("", "secrets", "mlpipeline-minio-artifact", "get"),
    *{("pipelines.kubeflow.org", r, "*", v) for r in ("pipelines", "pipelines/versions") for v in ("get", "list")},
    *{("pipelines.kubeflow.org", r, "*", v) for r in ("experiments", "runs") for v in ("get", "list", "create")},
}


def test_the_retrainer_is_granted_exactly_the_stated_list() -> None:
    account, role, binding = kubernetes_documents("retrain-rbac.yaml")
    assert binding.subjects[0].name == account.metadata.name and binding.role_ref.name == role.metadata.name
    granted = {
        (group, resource, name, verb)
        for rule in role.rules
        for group in rule.api_groups
        for resource in rule.resources
        for name in (rule.resource_names or ["*"])
        for verb in rule.verbs
    }
    assert granted == STATED_GRANTS
    readme = (KFP.parents[1] / "README.md").read_text()
    for group, resource, name, verb in STATED_GRANTS:
        row = f"| `{group or 'core'}` | `{resource}` | {'any' if name == '*' else f'`{name}`'} |"
        assert row in readme and verb in readme.split(row, 1)[1].splitlines()[0], f"README lacks {row} {verb}"


def test_pod_default_projects_the_pipelines_token_the_trigger_reads() -> None:
    from shopfloor.common.kfp_api import ACCESS_LABEL, DEFAULT_TOKEN_PATH, TOKEN_AUDIENCE, TOKEN_PATH_ENV

    (pod_default,) = yaml.safe_load_all((KFP / "access-ml-pipeline.yaml").read_text())
    assert pod_default["apiVersion"] == "kubeflow.org/v1alpha1" and pod_default["kind"] == "PodDefault"
    spec = pod_default["spec"]
    assert spec["selector"]["matchLabels"] == {ACCESS_LABEL[0]: ACCESS_LABEL[1]}
    (source,) = spec["volumes"][0]["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert token["audience"] == TOKEN_AUDIENCE
    (mount,) = spec["volumeMounts"]
    assert f"{mount['mountPath']}/{token['path']}" == DEFAULT_TOKEN_PATH
    assert {"name": TOKEN_PATH_ENV, "value": DEFAULT_TOKEN_PATH} in spec["env"]


def test_the_trigger_task_carries_the_label_the_pod_default_selects() -> None:
    from shopfloor.common.kfp_api import ACCESS_LABEL

    _, platform = yaml.safe_load_all((COMPILED_DIR / "monitoring.yaml").read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-trigger-retraining"]["podMetadata"]["labels"] == {ACCESS_LABEL[0]: ACCESS_LABEL[1]}
    assert "podMetadata" not in executors["exec-check-drift"], "only the step that calls the API gets the token"


def test_recurring_run_is_a_valid_kfp_api_object_for_the_compiled_pipeline() -> None:
    document = yaml.safe_load((KFP / "monitoring-recurring-run.yaml").read_text())
    run = kfp_server_api.ApiClient().deserialize(_Response(document), "V2beta1RecurringRun")
    assert run.trigger.cron_schedule.cron.count(" ") == 5, "KFP crons have six fields (seconds first)"
    assert run.max_concurrency == "1" and run.no_catchup is True and run.mode == "ENABLE"
    pipeline = next(yaml.safe_load_all((COMPILED_DIR / "monitoring.yaml").read_text()))
    declared = set(pipeline["root"]["inputDefinitions"]["parameters"])
    assert set(run.runtime_config.parameters) <= declared
    assert "training_arguments" in run.runtime_config.parameters, "the one parameter without a default"
    (_, role, _) = kubernetes_documents("retrain-rbac.yaml")
    assert run.service_account == role.metadata.name


def test_kustomization_lists_every_kubernetes_manifest() -> None:
    kustomization = yaml.safe_load((KFP / "kustomization.yaml").read_text())
    manifests = {p.name for p in KFP.glob("*.yaml")} - {"kustomization.yaml", "monitoring-recurring-run.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_credentials_secret_template_names_every_variable_the_readme_configs_name() -> None:
    """The Secret the steps mount holds the variables a config names; the template covers the README's examples."""
    import re

    from shopfloor.common.credentials import CREDENTIALS_SECRET

    (secret,) = kubernetes_documents("credentials-secret.yaml")
    assert secret.metadata.name == CREDENTIALS_SECRET
    assert set(secret.string_data.values()) == {"REPLACE_ME"}, "a template: real values never live in git"
    readme = (KFP.parents[1] / "README.md").read_text()
    variable = r"\b(?:url|username|password|token|certificate|private_key|private_key_password|server_certificate)_env"
    named = set(re.findall(variable + r": ([A-Z][A-Z0-9_]+)", readme))
    assert named and named <= set(secret.string_data), sorted(named - set(secret.string_data))
