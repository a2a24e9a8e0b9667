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


def test_retrainer_may_create_runs_and_nothing_else() -> None:
    account, role, binding = kubernetes_documents("retrain-rbac.yaml")
    assert binding.subjects[0].name == account.metadata.name and binding.role_ref.name == role.metadata.name
    verbs = {(resource, verb) for rule in role.rules for resource in rule.resources for verb in rule.verbs}
    assert all(group == "pipelines.kubeflow.org" for rule in role.rules for group in rule.api_groups)
    assert ("runs", "create") in verbs
    assert not {v for _, v in verbs} & {"delete", "update", "patch", "*"}


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
