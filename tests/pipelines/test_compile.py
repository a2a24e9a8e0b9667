"""The compiled YAML is what a GitOps repo applies: deterministic, current, loadable, free of secrets."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl
from kfp.components import load_component_from_file

from shopfloor.common.credentials import CREDENTIALS_DIR, CREDENTIALS_SECRET
from shopfloor.components._image import IMAGE
from shopfloor.pipelines.compile import COMPILED_DIR, compile_scenario, stale_files
from shopfloor.pipelines.scenarios import SCENARIOS

SHOPFLOOR = str(Path(sys.executable).with_name("shopfloor"))


def test_compile_is_byte_identical_across_processes(tmp_path: Path) -> None:
    outputs = []
    for index in range(2):
        target = tmp_path / f"out{index}"
        subprocess.run([SHOPFLOOR, "compile", "--output-dir", str(target)], check=True, capture_output=True)
        outputs.append({p.name: p.read_bytes() for p in sorted(target.iterdir())})
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {s.compiled_file for s in SCENARIOS.values()} | {"monitoring.yaml"}


def test_checked_in_yaml_is_up_to_date() -> None:
    assert stale_files() == [], "run 'shopfloor compile' and commit pipelines/compiled/"


def test_compile_check_flags_a_stale_file(tmp_path: Path) -> None:
    (tmp_path / "predictive_maintenance.yaml").write_text("# stale\n")
    result = subprocess.run(
        [SHOPFLOOR, "compile", "--check", "--output-dir", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "out of date" in result.stderr


def test_compiled_pipeline_shape() -> None:
    spec = next(yaml.safe_load_all(compile_scenario("predictive-maintenance")))
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert {
        "sensors_uri",
        "events_uri",
        "data_schema",
        "labeling",
        "hyperparameters",
        "gate",
        "model_name",
        "model_store_uri",
        "deployment",
        "hpo",
        "hpo_workers",
    } <= set(inputs)
    assert inputs["gate"]["defaultValue"]["min_roc_auc"] == 0.85
    tasks = spec["root"]["dag"]["tasks"]
    assert {
        "ingest",
        "label",
        "train",
        "evaluate",
        "explain",
        "hpo-setup",
        "for-loop-1",
        "hpo-select",
        "condition-2",
    } <= set(tasks)
    assert "Output" in tasks["condition-2"]["triggerPolicy"]["condition"]
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == 11  # fingerprint, ingest, label, 3 search steps, train, evaluate, explain, publish, deploy
    for executor in executors.values():
        container = executor["container"]
        assert container["image"] == IMAGE
        assert "pip install" not in " ".join(container["command"]), "our image already has kfp"


def test_compiled_search_runs_parallel_workers_with_the_study_url_from_a_secret() -> None:
    documents = list(yaml.safe_load_all(compile_scenario("predictive-maintenance")))
    spec, platform = documents[0], documents[1]
    loop = spec["root"]["dag"]["tasks"]["for-loop-1"]
    assert loop["parameterIterator"]["items"]["inputParameter"] == "pipelinechannel--hpo_workers"
    assert "hpo-worker" in spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    assert "for-loop-1" in spec["root"]["dag"]["tasks"]["hpo-select"]["dependentTasks"]
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name in ("exec-hpo-setup", "exec-hpo-worker", "exec-hpo-select"):
        (secret,) = [s for s in executors[name]["secretAsEnv"] if s["secretName"] == "shopfloor-optuna"]
        assert secret["secretName"] == "shopfloor-optuna" and secret["optional"] is True
        assert secret["keyToEnv"] == [{"envVar": "SHOPFLOOR_OPTUNA_STORAGE", "secretKey": "url"}]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_run_whose_search_is_off_gets_the_pipeline_without_search_steps(scenario: str, tmp_path) -> None:
    """`--no-hpo` (or `hpo.enabled: false`) runs no search step; the model section reaches train as given."""
    found = SCENARIOS[scenario]
    config = found.config_model()
    off = config.model_copy(update={"hpo": config.hpo.model_copy(update={"enabled": False})})
    assert found.pipeline_for(config) is found.pipeline
    target = tmp_path / "no_search.yaml"
    compiler.Compiler().compile(found.pipeline_for(off), str(target))
    spec = next(yaml.safe_load_all(target.read_text()))
    tasks = spec["root"]["dag"]["tasks"]
    assert not [name for name in tasks if name.startswith("hpo-") or name.startswith("for-loop")], sorted(tasks)
    train_task = next(task for name, task in tasks.items() if name.startswith("train"))
    assert train_task["inputs"]["parameters"]["hyperparameters"]["componentInputParameter"] == "hyperparameters"
    assert "searched" not in train_task["inputs"]["artifacts"], "no searched configuration to wait for"
    assert "search_report" not in spec["root"]["outputDefinitions"]["artifacts"]


@pytest.mark.parametrize("file_name", ["predictive_maintenance.yaml", "monitoring.yaml"])
def test_compiled_yaml_holds_no_credentials(file_name: str) -> None:
    """Credentials reach pods only through Secrets: no literal environment values in the YAML at all."""
    text = (COMPILED_DIR / file_name).read_text()
    names_only = text.replace("password_env", "")  # the name of the variable a Secret fills (monitor.alerts)
    for marker in ("minio123", "REPLACE_ME", "password", "postgresql://", "mysql"):
        assert marker not in names_only
    spec, platform = list(yaml.safe_load_all(text))
    literal_env = {
        e["name"] for ex in spec["deploymentSpec"]["executors"].values() for e in ex["container"].get("env", [])
    }
    assert literal_env == set()
    for executor in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values():
        for secret in executor["secretAsEnv"]:
            assert secret["secretName"] in {"shopfloor-s3", "shopfloor-optuna"}
        assert [secret["secretName"] for secret in executor["secretAsVolume"]] == [CREDENTIALS_SECRET]


@pytest.mark.parametrize("path", sorted(COMPILED_DIR.glob("*.yaml")), ids=lambda path: path.name)
def test_every_step_mounts_the_plants_credentials_secret_optionally(path: Path) -> None:
    """A config's ``url_env: PLANT_DB_URL`` must resolve in any step's pod, whatever variables the config names:
    every step mounts Secret shopfloor-credentials where ``credential()`` looks, optional for plants without one."""
    spec, platform = list(yaml.safe_load_all(path.read_text()))
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == set(spec["deploymentSpec"]["executors"]), "every step"
    for name, executor in executors.items():
        (volume,) = executor["secretAsVolume"]
        assert volume["secretName"] == CREDENTIALS_SECRET and volume["mountPath"] == CREDENTIALS_DIR, name
        assert volume["optional"] is True, name


def test_monitoring_pipeline_retrains_only_when_the_policy_says_so() -> None:
    spec = next(yaml.safe_load_all((COMPILED_DIR / "monitoring.yaml").read_text()))
    tasks = spec["root"]["dag"]["tasks"]
    assert {"check-drift", "condition-1"} <= set(tasks)
    condition = tasks["condition-1"]["triggerPolicy"]["condition"]
    assert "check-drift" in condition and "'retrain'" in condition
    inner = spec["components"][tasks["condition-1"]["componentRef"]["name"]]["dag"]["tasks"]
    assert set(inner) == {"trigger-retraining"}


def test_compiled_yaml_reloads_and_composes(tmp_path: Path) -> None:
    """A platform team can load the checked-in YAML as a component and nest it in its own pipeline."""
    loaded = load_component_from_file(str(COMPILED_DIR / "predictive_maintenance.yaml"))

    @dsl.pipeline(name="plant-nightly")
    def nightly(sensors_uri: str, events_uri: str):
        loaded(sensors_uri=sensors_uri, events_uri=events_uri)

    target = tmp_path / "nightly.yaml"
    compiler.Compiler().compile(nightly, str(target))
    nested = next(yaml.safe_load_all(target.read_text()))
    assert "comp-predictive-maintenance" in nested["components"]
