"""A fourth model family, added from outside by an entry point, trains, is gated and published on the local runner.

Nothing in shopfloor's steps, pipelines or registry names it: the family lives in tests/families/window_features.py
and a distribution's ``entry_points.txt`` (group ``shopfloor.families``) on PYTHONPATH registers it, as an
installed plugin package would, in this process and in every step's subprocess.
"""

import json
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from kfp import compiler, dsl

from shopfloor.app.local_runner import run_locally
from shopfloor.common.errors import ShopfloorError
from shopfloor.components.evaluate.component import evaluate
from shopfloor.components.explain.component import explain
from shopfloor.components.ingest.component import ingest
from shopfloor.components.label.component import label
from shopfloor.components.publish.component import publish
from shopfloor.components.train.component import train
from shopfloor.contracts.model_artifact import load_model_info
from shopfloor.contracts.model_store import ModelStore
from shopfloor.families import registry
from shopfloor.families.predictive_maintenance.config import PredictiveMaintenanceConfig
from shopfloor.pipelines import parameters
from shopfloor.pipelines.search import search_stage
from shopfloor.serving.predictor import model_class

ROOT = Path(__file__).resolve().parents[2]
FAMILY = "window-features"


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A plugin distribution on sys.path and PYTHONPATH whose entry point registers the fourth family."""
    site = tmp_path / "site"
    dist_info = site / "shopfloor_window_features-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: shopfloor-window-features\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        f"[shopfloor.families]\n{FAMILY} = tests.families.window_features:WindowFeatures\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", f"{site}:{ROOT}")
    registry.family.cache_clear()
    registry._locations.cache_clear()
    yield site
    registry.family.cache_clear()
    registry._locations.cache_clear()


class Outputs(NamedTuple):
    """The trained model and its explanation."""

    model: dsl.Model
    explanation: dsl.Markdown


@dsl.pipeline(name="window-features")
def window_features_pipeline(
    sensors_uri: str, events_uri: str, data_schema: dict, labeling: dict, gate: dict, model_store_uri: str
) -> Outputs:
    """A plant team's own pipeline: shopfloor's steps, the plugin family's key, publish if the gate passes."""
    ingested = ingest(sensors_uri=sensors_uri, events_uri=events_uri, data_schema=data_schema)
    labelled = label(
        sensors=ingested.outputs["sensors"],
        events=ingested.outputs["events"],
        family=FAMILY,
        data_schema=data_schema,
        labeling=labeling,
    )
    windows = labelled.outputs["windows"]
    _, _, selected = search_stage(windows, {"enabled": False}, {"epochs": 25}, data_schema, {}, [0], "wf")
    trained = train(
        data=windows,
        hyperparameters={"epochs": 25},
        searched=selected.outputs["best_hyperparameters"],
        family=FAMILY,
        data_schema=data_schema,
        split={},
        gate=gate,
        edge={},
    )
    evaluated = evaluate(
        data=windows,
        model=trained.outputs["model"],
        history=trained.outputs["history"],
        profile=ingested.outputs["profile"],
        family=FAMILY,
        model_name="wf",
        data_schema=data_schema,
        split={},
        gate=gate,
        model_store_uri=model_store_uri,
    )
    explained = explain(
        data=windows,
        model=trained.outputs["model"],
        family=FAMILY,
        model_name="wf",
        data_schema=data_schema,
        split={},
        gate=gate,
        model_store_uri=model_store_uri,
    )
    with dsl.If(evaluated.outputs["Output"] == True, name="quality-gate-passed"):  # noqa: E712 - KFP condition
        publish(
            model=trained.outputs["model"],
            model_card=evaluated.outputs["model_card"],
            blessing=evaluated.outputs["blessing"],
            profile=ingested.outputs["profile"],
            model_store_uri=model_store_uri,
            model_name="wf",
        )
    return Outputs(model=trained.outputs["model"], explanation=explained.outputs["summary"])


def test_the_registry_finds_the_plugin_family_and_keeps_the_built_ins(plugin: Path) -> None:
    assert registry.family_keys() == ["anomaly-detection", "predictive-maintenance", "visual-inspection", FAMILY]
    found = registry.family(FAMILY)
    assert type(found).__name__ == "WindowFeatures" and found.data_kind == "windows"


def test_the_plugin_family_compiles_into_a_pipeline(tmp_path: Path) -> None:
    target = tmp_path / "window_features.yaml"
    compiler.Compiler().compile(window_features_pipeline, str(target))
    spec, _platform = yaml.safe_load_all(target.read_text())  # the pipeline spec, then its Kubernetes settings
    executors = spec["deploymentSpec"]["executors"]
    train_command = "\n".join(executors["exec-train"]["container"]["command"])
    assert FAMILY not in train_command, "the step's code does not name the family: the pipeline passes its key"
    train_task = spec["root"]["dag"]["tasks"]["train"]
    assert train_task["inputs"]["parameters"]["family"]["runtimeValue"]["constant"] == FAMILY


@pytest.mark.slow
def test_the_plugin_family_trains_is_gated_and_published_on_the_local_runner(
    plugin: Path, small_demo_data: Path, tmp_path: Path
) -> None:
    config = PredictiveMaintenanceConfig().resolve_data(small_demo_data)
    store = tmp_path / "store"
    arguments = {
        **parameters.sensor_data_parameters(config),
        "labeling": {**parameters.config_parameters(config)["labeling"], "test_fraction": 0.34},
        "gate": {"min_roc_auc": 0.6},
        "model_store_uri": str(store),
    }
    run = run_locally(window_features_pipeline, arguments, tmp_path / "work")
    info = load_model_info(run.outputs["model"])
    assert info["model_type"] == FAMILY and info["features"] and info["window"] == arguments["labeling"]["window"]
    published = ModelStore(str(store)).require_latest("wf")
    blessing = json.loads(Path(published.uri, "blessing.json").read_text())
    assert blessing["blessed"] is True and blessing["metrics"]["roc_auc"] >= 0.6
    assert Path(published.uri, "MODEL_CARD.md").read_text().count(published.version) >= 1
    ranked = Path(run.outputs["explanation"]).read_text().splitlines()  # the family's own explanation, by the step
    assert len(ranked) == len(info["features"]) and all(line.startswith("- ") for line in ranked)
    with pytest.raises(ShopfloorError, match=f"model family '{FAMILY}' has no served model"):
        model_class(Path(published.uri, "model"))  # the family names no served class: the server says so
