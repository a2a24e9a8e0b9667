"""Submit and schedule on Kubeflow, from the CLI and the notebook, against a stand-in of the KFP API.

The stand-in (tests/kfp_api_standin.py) validates every request body against kfp-server-api's v2beta1 models and
refuses requests without the bearer token, as a multi-user KFP does; the client is the real kfp.Client.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from shopfloor.common import kfp_api
from shopfloor.common.storage import write_json
from tests.kfp_api_standin import KfpApiState, kfp_api_standin

ROOT = Path(__file__).resolve().parents[2]
SHOPFLOOR = str(Path(sys.executable).with_name("shopfloor"))
TOKEN = "notebook-server-token"
CONFIG = {
    "scenario": "predictive-maintenance",
    "model_name": "north-pumps",
    "data": {"sensors": "sensors.csv", "events": "events.csv"},
    "hpo": {"enabled": False},
    "gate": {"min_roc_auc": 0.8},
}


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The stand-in, reached as from a pod: the token file the PodDefault projects, no host given."""
    token = tmp_path / "token"
    token.write_text(TOKEN)
    monkeypatch.setenv(kfp_api.TOKEN_PATH_ENV, str(token))
    monkeypatch.setenv(kfp_api.NAMESPACE_ENV, "plant-north")
    with kfp_api_standin(token=TOKEN) as (url, state):
        monkeypatch.setenv(kfp_api.HOST_ENV, url)
        yield state


def _shopfloor(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SHOPFLOOR, *arguments], capture_output=True, text=True, cwd=cwd)


def _config(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, **changes}))
    return path


def _spec(sent: dict) -> dict:
    """The pipeline spec kfp sent (wrapped with its platform spec when the pipeline has Kubernetes settings)."""
    return sent.get("pipeline_spec", sent)


def _tasks(sent: dict) -> dict:
    return _spec(sent)["root"]["dag"]["tasks"]


def test_submit_sends_typed_arguments_and_the_compiled_caching(api: KfpApiState, tmp_path: Path) -> None:
    config = _config(tmp_path)
    result = _shopfloor(
        "submit", "predictive-maintenance", "--config", str(config), "--data", "s3://plant/north", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    (run,) = api.runs
    assert result.stdout.strip().endswith(f"/#/runs/details/{run['run_id']}")
    assert set(api.authorizations) == {f"Bearer {TOKEN}"}
    parameters = run["runtime_config"]["parameters"]
    assert parameters["sensors_uri"] == "s3://plant/north/sensors.csv"
    assert parameters["gate"]["min_roc_auc"] == 0.8, "a dict parameter arrives as a dict, not a JSON string"
    assert parameters["hpo"]["enabled"] is False and parameters["model_name"] == "north-pumps"
    assert api.experiments["shopfloor"]["namespace"] == "plant-north"
    assert _tasks(run["pipeline_spec"])["ingest"]["cachingOptions"] == {"enableCache": True}
    assert "enableCache" not in _tasks(run["pipeline_spec"])["fingerprint-sources"].get("cachingOptions", {})


def test_submit_no_cache_and_wait(api: KfpApiState, tmp_path: Path) -> None:
    config = _config(tmp_path)
    arguments = ["submit", "predictive-maintenance", "--config", str(config), "--data", "s3://plant/north"]
    result = _shopfloor(*arguments, "--no-cache", "--wait", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "run run-1: SUCCEEDED"
    assert not any(
        t.get("cachingOptions", {}).get("enableCache") for t in _tasks(api.runs[0]["pipeline_spec"]).values()
    )
    api.run_state = "FAILED"
    failed = _shopfloor(*arguments, "--wait", cwd=tmp_path)
    assert failed.returncode == 1 and failed.stdout.splitlines()[-1] == "run run-2: FAILED"


def test_local_data_is_refused_before_anything_is_sent(api: KfpApiState, tmp_path: Path) -> None:
    result = _shopfloor("submit", "predictive-maintenance", "--config", str(_config(tmp_path)), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "sensors_uri" in result.stderr and "s3://" in result.stderr
    assert api.runs == [] and api.authorizations == []


def test_schedule_monitoring_as_the_retrainer_with_the_training_arguments(api: KfpApiState, tmp_path: Path) -> None:
    config = _config(tmp_path)
    result = _shopfloor(
        "schedule",
        "monitoring",
        "--cron",
        "0 0 * * * *",
        "--config",
        str(config),
        "--data",
        "s3://plant/north",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (recurring,) = api.recurring_runs
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 * * * *"
    assert recurring["service_account"] == "shopfloor-retrainer"
    assert int(recurring["max_concurrency"]) == 1 and recurring["no_catchup"] is True
    parameters = recurring["runtime_config"]["parameters"]
    assert parameters["training_pipeline"] == "predictive-maintenance" and parameters["namespace"] == "plant-north"
    assert parameters["training_arguments"]["gate"]["min_roc_auc"] == 0.8, "nested dicts stay dicts"
    assert _spec(recurring["pipeline_spec"])["pipelineInfo"]["name"] == "shopfloor-monitoring"
    assert "platform_spec" in recurring["pipeline_spec"], "the Secrets and the PodDefault label travel with it"
    assert recurring["display_name"] == "north-pumps-monitoring"


def test_a_cron_without_seconds_is_one_line(api: KfpApiState, tmp_path: Path) -> None:
    result = _shopfloor(
        "schedule", "predictive-maintenance", "--cron", "0 * * * *", "--data", "s3://plant", cwd=tmp_path
    )
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "six fields" in result.stderr
    assert api.recurring_runs == []


@pytest.mark.slow
def test_the_notebook_submits_waits_and_reads_what_was_published(
    api: KfpApiState, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = f"s3://{s3_bucket}/models"
    version = f"{store}/north-plant-pumps/v-nb0000000001"
    write_json(f"{store}/north-plant-pumps/latest.json", {"version": "v-nb0000000001", "uri": version})
    write_json(f"{version}/blessing.json", {"blessed": True, "metrics": {"roc_auc": 0.91, "pr_auc": 0.52}})
    monkeypatch.setenv("SHOPFLOOR_MODEL_STORE", store)
    monkeypatch.setenv("SHOPFLOOR_DATA", "s3://plant/north")
    notebook = nbformat.read(ROOT / "notebooks" / "kubeflow_submit.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = {
        index: "".join(o.get("text", "") + json.dumps(o.get("data", {})) for o in cell.get("outputs", []))
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
    }
    text = "\n".join(outputs.values())
    assert "run run-1: " in text and "SUCCEEDED" in text
    assert "north-plant-pumps v-nb0000000001: quality gate passed" in text and "0.91" in text
    assert f"model_card: {version}/MODEL_CARD.md" in text
    (run,) = api.runs
    assert run["runtime_config"]["parameters"]["gate"]["min_pr_auc"] == 0.3
    assert set(api.authorizations) == {f"Bearer {TOKEN}"}


def test_the_standin_refuses_bodies_the_kfp_api_models_do_not_allow() -> None:
    from tests.kfp_api_standin import validation_errors

    assert validation_errors({"display_name": "r", "runtime_config": {"parameters": {"gate": {}}}}, "V2beta1Run") == []
    assert validation_errors({"display_name": "r", "pipeline_name": "x"}, "V2beta1Run") == [
        "body.pipeline_name: not a field of V2beta1Run"
    ]
    assert validation_errors({"trigger": {"cron_schedule": {"cron": ["0"]}}}, "V2beta1RecurringRun") == [
        "body.trigger.cron_schedule.cron: expected str"
    ]
    assert validation_errors({"mode": "SOMETIMES"}, "V2beta1RecurringRun")[0].startswith("body.mode: 'SOMETIMES'")
