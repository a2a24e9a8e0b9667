"""infra/kfp: the Secret the search steps read, consistent with the pipeline and free of real credentials."""

import json
from pathlib import Path

import kubernetes.client
import yaml

from pipelines.predictive_maintenance import OPTUNA_SECRET

KFP = Path(__file__).resolve().parents[1] / "infra" / "kfp"


class _Response:
    def __init__(self, document: dict):
        self.data = json.dumps(document)


def test_optuna_secret_template_matches_the_pipeline() -> None:
    document = yaml.safe_load((KFP / "optuna-secret.yaml").read_text())
    secret = kubernetes.client.ApiClient().deserialize(_Response(document), "V1Secret")
    assert secret.metadata.name == OPTUNA_SECRET
    assert secret.string_data == {"url": "REPLACE_ME"}, "a template: the real URL never lives in git"


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KFP / "kustomization.yaml").read_text())
    manifests = {p.name for p in KFP.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests
