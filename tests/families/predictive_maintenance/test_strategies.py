"""Fleet model strategies: global, per-site and global-then-site models trained, routed, evaluated and compared."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shopfloor.components.ingest.ingest import ingest
from shopfloor.contracts.model_artifact import load_keras_model, load_model_info, model_version, resolve_model_dir
from shopfloor.contracts.windows import LabelledWindows, write_windows
from shopfloor.demo.plant import PlantDataSpec, write_plant_data
from shopfloor.families.base import StepInputs
from shopfloor.families.classical import fit_boosted_windows
from shopfloor.families.predictive_maintenance.config import (
    GateConfig,
    LabelingConfig,
    ModelConfig,
    PredictiveMaintenanceConfig,
)
from shopfloor.families.predictive_maintenance.labelling import label_windows
from shopfloor.families.predictive_maintenance.strategies import (
    FleetModel,
    best_by_site,
    site_windows,
    strategy_report_html,
    strategy_summary_markdown,
)
from shopfloor.families.registry import family

pytestmark = pytest.mark.slow  # trains every strategy's site models (~30 s): runs with the whole suite

SITES = ("site-a", "site-b")
SCHEMA = {"sites": {"site-a": {}, "site-b": {}}, "fleet": {"strategy": "global-then-site", "compare": True}}


@pytest.fixture(scope="module")
def fleet_windows(tmp_path_factory: pytest.TempPathFactory) -> LabelledWindows:
    """Two sites of five assets each, labelled and split site by site (a fleet config's ``sites:``)."""
    folder = tmp_path_factory.mktemp("fleet-data")
    write_plant_data(folder, PlantDataSpec(sites=2, assets_per_site=5, days=45))
    config = PredictiveMaintenanceConfig().resolve_data(folder)
    ingested = ingest(config.data.sensors, config.data.events, config.data)
    return label_windows(
        ingested.sensors, ingested.events, ingested.features, ["failure"], LabelingConfig(), site_configs={}
    )


@pytest.fixture(scope="module")
def trained_fleet(tmp_path_factory: pytest.TempPathFactory, fleet_windows: LabelledWindows) -> Path:
    """The train step of the family on the fleet, every strategy trained (``fleet.compare``)."""
    root = tmp_path_factory.mktemp("fleet-model")
    write_windows(fleet_windows, str(root / "windows"))
    model = ModelConfig(epochs=2, hidden_units=[8], conv_filters=4, batch_size=128).model_dump()
    inputs = StepInputs(data_schema=SCHEMA, gate=GateConfig().model_dump())
    family("predictive-maintenance").train(str(root / "windows"), model, inputs, str(root / "model"))
    return root


def test_every_strategy_leaves_a_complete_model_folder_per_site(trained_fleet: Path) -> None:
    info = load_model_info(trained_fleet / "model")
    fleet = info["fleet"]
    assert fleet["strategy"] == "global-then-site"
    assert fleet["strategies"] == ["global", "per-site", "global-then-site"]
    for strategy in ("per-site", "global-then-site"):
        for site in SITES:
            if site in fleet["fallback"].get(strategy, {}):  # too few failures to train and choose there
                continue
            summary = fleet["models"][strategy][site]
            folder = resolve_model_dir(trained_fleet / "model" / summary["folder"])
            own = load_model_info(folder)
            assert (own["site"], own["strategy"], own["engine"]) == (site, strategy, summary["engine"])
            assert own["threshold"] == summary["threshold"] and 0 < summary["threshold"]["value"] < 1
    tuned = [s for s in SITES if s in fleet["models"]["global-then-site"]]
    assert tuned, fleet["fallback"]
    summary = fleet["models"]["global-then-site"][tuned[0]]
    own = load_model_info(trained_fleet / "model" / summary["folder"])
    assert own["fine_tuned"]["learning_rate"] == pytest.approx(info["hyperparameters"]["learning_rate"] * 0.1)
    fleet_net = load_keras_model(trained_fleet / "model")
    site_net = load_keras_model(trained_fleet / "model" / summary["folder"])
    assert [w.shape for w in fleet_net.get_weights()] == [w.shape for w in site_net.get_weights()]
    assert any(not np.allclose(a, b) for a, b in zip(fleet_net.get_weights(), site_net.get_weights(), strict=True))


def test_the_version_covers_the_site_models(trained_fleet: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(trained_fleet / "model", copy)
    before = model_version(str(copy))
    info_path = next((copy / "strategies").rglob("shopfloor_model.json"))
    info_path.write_text(json.dumps({**json.loads(info_path.read_text()), "note": "changed"}))
    assert model_version(str(copy)) != before


def test_evaluation_routes_each_site_to_its_model_and_compares_strategies(
    trained_fleet: Path, fleet_windows: LabelledWindows
) -> None:
    chosen = family("predictive-maintenance")
    model = chosen.load_model(str(trained_fleet / "model"))
    assert isinstance(model, FleetModel) and model.strategy == "global-then-site"
    test = fleet_windows.part("test")
    routed = model.routed(test.sites).predict(test.x)["failure"].reshape(-1)
    for site, own in model.models["global-then-site"].items():  # each window answered by its site's model
        mine = test.sites == site
        expected = np.asarray(own.predict(test.x[mine])["failure"]).reshape(-1)
        np.testing.assert_allclose(routed[mine], expected, rtol=1e-5)
    with pytest.raises(ValueError, match="3 windows but"):
        model.routed(test.sites).predict(test.x[:3])

    info = load_model_info(trained_fleet / "model")
    inputs = StepInputs(data_schema=SCHEMA, gate=GateConfig(min_roc_auc=0, min_pr_auc=0).model_dump())
    evaluation = chosen.evaluate(model, info, fleet_windows, inputs)
    for strategy in ("global", "per-site", "global-then-site"):
        for site in SITES:
            assert 0 <= evaluation.metrics[f"strategy/{strategy}/{site}/roc_auc"] <= 1
    shipped = evaluation.metrics  # the shipped strategy's site metrics are the site/ metrics, at each model's threshold
    for site in SITES:
        assert shipped[f"site/{site}/pr_auc"] == pytest.approx(shipped[f"strategy/global-then-site/{site}/pr_auc"])
        assert shipped[f"site/{site}/threshold"] == pytest.approx(model.site_thresholds()[site]["value"])
    assert set(best_by_site(shipped)) == set(SITES)
    report = strategy_report_html(evaluation, "global-then-site")
    assert "<h2>Strategies by site</h2>" in report and report.count("<tr><td>site-") == 6
    assert "global-then-site (ships)" in report
    summary = strategy_summary_markdown(shipped, "global-then-site")
    assert "| site | global | per-site | global-then-site |" in summary


def test_the_global_strategy_without_compare_trains_no_site_models(tmp_path: Path, fleet_windows) -> None:
    write_windows(fleet_windows, str(tmp_path / "windows"))
    model = ModelConfig(epochs=1, hidden_units=[8], conv_filters=0).model_dump()
    inputs = StepInputs(data_schema={"sites": {}}, gate=GateConfig(challenger="none").model_dump())
    family("predictive-maintenance").train(str(tmp_path / "windows"), model, inputs, str(tmp_path / "model"))
    assert "fleet" not in load_model_info(tmp_path / "model") and not (tmp_path / "model" / "strategies").exists()
    assert not isinstance(family("predictive-maintenance").load_model(str(tmp_path / "model")), FleetModel)


def test_boosting_continues_from_the_fleets_trees_on_one_site(fleet_windows: LabelledWindows) -> None:
    fleet_trees = fit_boosted_windows(fleet_windows, seed=7)
    site = site_windows(fleet_windows, "site-b")
    assert set(site.sites) == {"site-b"} and site.x.shape[0] == int((fleet_windows.sites == "site-b").sum())
    continued = fit_boosted_windows(site, seed=7, init=fleet_trees)
    assert continued.failure.num_trees() >= fleet_trees.failure.num_trees()


def test_a_retrain_of_one_site_keeps_the_other_sites_models_byte_for_byte(trained_fleet: Path, tmp_path: Path) -> None:
    published = trained_fleet / "model"
    before = load_model_info(published)["fleet"]
    retrain = {**SCHEMA["fleet"], "retrain_only": ["site-a"], "keep_models_from": str(published)}
    inputs = StepInputs(data_schema={**SCHEMA, "fleet": retrain}, gate=GateConfig().model_dump())
    model = ModelConfig(epochs=2, hidden_units=[8], conv_filters=4, batch_size=128).model_dump()
    family("predictive-maintenance").train(str(trained_fleet / "windows"), model, inputs, str(tmp_path / "model"))

    after = load_model_info(tmp_path / "model")["fleet"]
    for strategy in ("per-site", "global-then-site"):
        kept = after["models"][strategy].get("site-b")
        if "site-b" not in before["models"][strategy]:  # fell back to the global model: nothing to keep
            continue
        assert kept["kept_from"] == str(published)
        assert {k: v for k, v in kept.items() if k != "kept_from"} == before["models"][strategy]["site-b"]
        old, new = published / kept["folder"], tmp_path / "model" / kept["folder"]
        files = sorted(p.relative_to(old) for p in old.rglob("*") if p.is_file())
        assert files and files == sorted(p.relative_to(new) for p in new.rglob("*") if p.is_file())
        assert all((old / f).read_bytes() == (new / f).read_bytes() for f in files)
        retrained = after["models"][strategy].get("site-a")
        assert retrained is None or "kept_from" not in retrained  # the named site was fitted again
    assert isinstance(family("predictive-maintenance").load_model(str(tmp_path / "model")), FleetModel)


def test_a_retrain_naming_a_site_the_data_lacks_is_refused_naming_it(trained_fleet: Path, tmp_path: Path) -> None:
    from shopfloor.common.errors import DataValidationError

    retrain = {**SCHEMA["fleet"], "retrain_only": ["site-z"], "keep_models_from": str(trained_fleet / "model")}
    inputs = StepInputs(data_schema={**SCHEMA, "fleet": retrain}, gate=GateConfig().model_dump())
    model = ModelConfig(epochs=1, hidden_units=[8], conv_filters=0).model_dump()
    with pytest.raises(DataValidationError, match="site 'site-z'.*fleet.retrain_only|fleet.retrain_only.*site-z"):
        family("predictive-maintenance").train(str(trained_fleet / "windows"), model, inputs, str(tmp_path / "model"))
    assert not (tmp_path / "model").exists()
