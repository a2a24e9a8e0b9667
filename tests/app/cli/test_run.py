"""`shopfloor run` as a user runs it (a subprocess, real KFP local runner, real TensorFlow training), and the
RunRequest its command line parses into and a retrain saves."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopfloor.app.cli import parse_request
from shopfloor.app.cli.run import RunRequest
from shopfloor.common.storage import exists, read_json, sha256_hex
from shopfloor.demo.plant import PlantDataSpec, generate_plant_data
from tests.app.cli.helpers import gate_values, post_json, printed_path, shopfloor


@pytest.mark.slow
def test_run_demo_end_to_end(tmp_path: Path, work_dirs: list[Path]) -> None:
    work_dirs.append(tmp_path)
    result = shopfloor("run", "predictive-maintenance", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    # per-step progress on screen
    for step in (
        "fingerprint-sources",
        "ingest",
        "label",
        "hpo-setup",
        "hpo-worker",
        "hpo-select",
        "train",
        "evaluate",
        "explain",
        "publish",
        "deploy",
    ):
        assert f"> {step} ..." in result.stderr and f"< {step}: ok" in result.stderr
    assert "epoch 1/" in result.stderr
    assert len(re.findall(r"trial \d+/8: ", result.stderr)) == 8, "every search trial shows on screen"
    search = printed_path(result.stdout, "search report").read_text()
    assert "hyperparameter search" in search and search.count("data:image/png") >= 2
    assert gate_values(result.stdout)["roc_auc"] >= 0.85

    report = printed_path(result.stdout, "report (HTML)").read_text()
    assert report.count("data:image/png;base64,") >= 5 and "Quality gate PASSED" in report

    card = printed_path(result.stdout, "model card").read_text()
    sensors_csv = tmp_path / "demo-data" / "predictive-maintenance" / "sensors.csv"
    assert sha256_hex(sensors_csv.read_bytes()) in card
    assert "PASSED (deployable)" in card and "shopfloor 0.1.0" in card and "hidden_units" in card

    published = printed_path(result.stdout, "published")
    assert (published / "MODEL_CARD.md").read_text() == card
    latest = read_json(published.parent / "latest.json")
    assert Path(latest["uri"]) == published
    assert json.loads((published / "blessing.json").read_text())["blessed"] is True

    # the published model answers on raw windows, missing readings included, in both formats
    import tensorflow as tf

    from shopfloor.contracts.model_artifact import load_keras_model

    model = load_keras_model(published)
    info = json.loads((published / "model" / "shopfloor_model.json").read_text())
    window = np.random.default_rng(0).normal(50, 10, (2, info["window"], len(info["features"]))).astype("float32")
    window[0, 3, 1] = np.nan
    keras_out = model.predict(window, verbose=0)
    assert np.all((keras_out["failure"] >= 0) & (keras_out["failure"] <= 1))
    saved = tf.saved_model.load(str(published / "model" / "saved_model"))
    saved_out = saved.serve(tf.constant(window))
    np.testing.assert_allclose(saved_out["failure"].numpy(), keras_out["failure"], rtol=1e-5)

    explanation = printed_path(result.stdout, "explanations").read_text()
    assert "why the model raises failure risk" in explanation and explanation.count("data:image/png") >= 3

    # the run ends with a served model and ready-to-paste curl commands that work
    found = re.findall(r"^\s+(V1|V2|explain): curl .* -d @(\S+) (\S+)$", result.stdout, re.MULTILINE)
    commands = {name: (body, url) for name, body, url in found}
    assert set(commands) == {"V1", "V2", "explain"}
    status, answer = post_json(commands["V1"][1], Path(commands["V1"][0]).read_bytes())
    assert status == 200 and answer["predictions"][0]["fails_within_horizon"] in (True, False)
    status, answer = post_json(commands["V2"][1], Path(commands["V2"][0]).read_bytes())
    assert status == 200 and {o["name"] for o in answer["outputs"]} >= {"failure_probability", "rul_hours"}
    status, answer = post_json(commands["explain"][1], Path(commands["explain"][0]).read_bytes())
    assert status == 200 and len(answer["explanations"]) == 2

    from shopfloor.contracts.payload_log import read_payload_logs

    deadline = time.monotonic() + 15
    while not (logged := read_payload_logs(str(tmp_path / "payload-logs"), "predictive-maintenance")):
        assert time.monotonic() < deadline, "payload log never written"
        time.sleep(0.5)
    assert {r.protocol for r in logged} <= {"v1", "v2"} and logged[0].model_version == published.name


def _write_renamed_plant(folder: Path) -> Path:
    """A plant the pipeline never saw: other seed, other column names, other event vocabulary, Parquet events."""
    folder.mkdir()
    data = generate_plant_data(PlantDataSpec(seed=11, sites=2, assets_per_site=6, days=120))
    sensors = data.sensors.rename(
        columns={"timestamp": "ts", "asset_id": "equipment", "site": "plant", "vibration_mm_s": "vib_rms"}
    ).drop(columns=["asset_type"])
    sensors["ts"] = pd.to_datetime(sensors["ts"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    sensors.to_csv(folder / "readings.csv", index=False)
    events = data.events.rename(columns={"timestamp": "when", "asset_id": "equipment", "event_type": "kind"})
    events["kind"] = events["kind"].map({"failure": "breakdown", "maintenance": "pm"})
    events.to_parquet(folder / "work_orders.parquet", index=False)
    config = folder / "plant.yaml"
    config.write_text("""
scenario: predictive-maintenance
model_name: north-plant-pumps
data:
  sensors: readings.csv
  events: work_orders.parquet
  sensor_columns: {timestamp: ts, asset_id: equipment, site: plant}
  event_columns: {timestamp: when, asset_id: equipment, event_type: kind}
  failure_values: [breakdown]
labeling: {horizon_hours: 36, window: 16}
model: {epochs: 8}
""")
    return config


@pytest.mark.slow
def test_run_unseen_plant_through_data_and_config_alone(tmp_path: Path, work_dirs: list[Path]) -> None:
    work_dirs.append(tmp_path / "work")
    config = _write_renamed_plant(tmp_path / "plant")
    data_dir = tmp_path / "elsewhere"
    (tmp_path / "plant").rename(data_dir)
    result = shopfloor(
        "run",
        "predictive-maintenance",
        "--no-hpo",
        "--data",
        str(data_dir),
        "--config",
        str(data_dir / config.name),
        "--work-dir",
        str(tmp_path / "work"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "> train ..." in result.stderr and "hpo-" not in result.stderr, "--no-hpo runs no search step"
    assert "search report" not in result.stdout
    assert "north-plant-pumps" in str(printed_path(result.stdout, "published"))
    card = printed_path(result.stdout, "model card").read_text()
    assert "vib_rms" in card and "work_orders.parquet" in card and "36.0 h" in card


@pytest.mark.slow
def test_run_reads_data_from_and_publishes_to_s3(
    tmp_path: Path, small_demo_data: Path, s3_bucket: str, work_dirs: list[Path]
) -> None:
    work_dirs.append(tmp_path / "work")
    from shopfloor.common.storage import write_bytes

    for name in ("sensors.csv", "events.csv"):
        write_bytes(f"s3://{s3_bucket}/plant/{name}", (small_demo_data / name).read_bytes())
    config = tmp_path / "small.yaml"
    config.write_text(
        "labeling: {test_fraction: 0.34}\nmodel: {epochs: 4}\n"
        "gate: {min_roc_auc: 0.0, min_pr_auc: 0.0, max_rul_mae_hours: 10000}\n"
    )
    result = shopfloor(
        "run",
        "predictive-maintenance",
        "--no-hpo",
        "--config",
        str(config),
        "--data",
        f"s3://{s3_bucket}/plant",
        "--model-store",
        f"s3://{s3_bucket}/models",
        "--work-dir",
        str(tmp_path / "work"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    latest = read_json(f"s3://{s3_bucket}/models/predictive-maintenance/latest.json")
    assert latest["uri"].startswith(f"s3://{s3_bucket}/models/predictive-maintenance/v-")
    assert exists(latest["uri"]) and exists(latest["uri"] + "/model/model.keras")
    assert f"s3://{s3_bucket}/plant/sensors.csv" in printed_path(result.stdout, "model card").read_text()
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    assert secret not in result.stdout + result.stderr
    assert secret not in printed_path(result.stdout, "log").read_text()


def _demo_copy(source: Path, target: Path) -> Path:
    target.mkdir()
    for name in ("sensors.csv", "events.csv"):
        (target / name).write_bytes((source / name).read_bytes())
    return target


def _break_malformed(folder: Path) -> None:
    with (folder / "sensors.csv").open("a") as handle:
        handle.write("2026-03-01T00:00:00Z,site-a,A-PMP-01,pump,1,2,3,4,5,6,7,8,9\n")


def _break_missing_column(folder: Path) -> None:
    frame = pd.read_csv(folder / "sensors.csv")
    frame.drop(columns=["asset_id"]).to_csv(folder / "sensors.csv", index=False)


def _break_mistyped_column(folder: Path) -> None:
    frame = pd.read_csv(folder / "sensors.csv", dtype=str)
    frame.loc[100, "vibration_mm_s"] = "n/a-broken"
    frame.to_csv(folder / "sensors.csv", index=False)


def _break_empty_file(folder: Path) -> None:
    (folder / "events.csv").write_text("")


def _break_unknown_asset(folder: Path) -> None:
    with (folder / "events.csv").open("a") as handle:
        handle.write("2026-02-01T00:00:00Z,Z-PMP-99,failure,seal leak\n")


def _break_no_failures(folder: Path) -> None:
    frame = pd.read_csv(folder / "events.csv")
    frame[frame["event_type"] != "failure"].to_csv(folder / "events.csv", index=False)


BAD_INPUTS = {
    "malformed-csv": (_break_malformed, ["sensors.csv", "malformed"]),
    "missing-column": (_break_missing_column, ["sensors.csv", "sensor_columns.asset_id", "'asset_id' not found"]),
    "mistyped-column": (_break_mistyped_column, ["sensors.csv", "vibration_mm_s", "n/a-broken", "not a number"]),
    "empty-file": (_break_empty_file, ["events.csv", "file is empty"]),
    "unknown-asset": (_break_unknown_asset, ["events.csv", "event_columns.asset_id", "Z-PMP-99"]),
    "no-failures": (_break_no_failures, ["failure_values", "no failure events", "maintenance"]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_error_and_no_artifacts(case: str, tmp_path: Path, small_demo_data: Path) -> None:
    breaker, expected = BAD_INPUTS[case]
    data = _demo_copy(small_demo_data, tmp_path / "data")
    breaker(data)
    work = tmp_path / "work"
    result = shopfloor("run", "predictive-maintenance", "--data", str(data), "--work-dir", str(work))
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ")
    for fragment in expected:
        assert fragment in error, (fragment, error)
    assert list((work / "pipeline-root").iterdir()) == []
    assert not (work / "model-store").exists()


def test_config_typo_is_reported_before_anything_runs(tmp_path: Path) -> None:
    config = tmp_path / "plant.yaml"
    config.write_text("labeling:\n  horizon_hour: 24\n")
    result = shopfloor("run", "predictive-maintenance", "--config", str(config), "--work-dir", str(tmp_path / "w"))
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {config}: labeling.horizon_hour: unknown field, did you mean 'horizon_hours'?")
    assert not (tmp_path / "w").exists()


def test_missing_data_folder_is_reported(tmp_path: Path) -> None:
    result = shopfloor(
        "run", "predictive-maintenance", "--data", str(tmp_path / "nope"), "--work-dir", str(tmp_path / "w")
    )
    assert result.returncode == 1
    assert "--data: data folder not found" in result.stderr


def test_run_defaults() -> None:
    assert parse_request(["run", "predictive-maintenance"]) == RunRequest(
        scenario="predictive-maintenance",
        data=None,
        config=None,
        work_dir=Path("shopfloor-runs"),
        model_store=None,
        no_hpo=False,
    )


def test_run_every_flag() -> None:
    argv = ["run", "visual-inspection", "--data", "s3://plant/parts", "--config", "plant.yaml"]
    argv += ["--work-dir", "/tmp/runs", "--model-store", "s3://models", "--no-hpo"]
    assert parse_request(argv) == RunRequest(
        scenario="visual-inspection",
        data="s3://plant/parts",
        config="plant.yaml",
        work_dir=Path("/tmp/runs"),
        model_store="s3://models",
        no_hpo=True,
    )


def test_saved_run_request_round_trips_through_json() -> None:
    request = parse_request(["run", "anomaly-detection", "--data", "s3://b/plant", "--work-dir", "runs", "--no-hpo"])
    saved = json.loads(json.dumps(request.to_json()))
    assert saved == {
        "scenario": "anomaly-detection",
        "data": "s3://b/plant",  # kept as text: a Path would fold s3:// into s3:/
        "config": None,
        "work_dir": "runs",  # as given: the approval resolves it, like the run would have
        "model_store": None,
        "no_hpo": True,
        "sites": [],  # every site: a monitor's retrain names the sites that drifted or degraded
    }
    assert RunRequest.from_json(saved) == request
    named = dataclasses.replace(request, sites=("site-b",))
    assert RunRequest.from_json(json.loads(json.dumps(named.to_json()))) == named


def test_a_retrain_of_named_sites_keeps_the_others_from_the_published_version(tmp_path: Path) -> None:
    from shopfloor.app.cli.run import sites_retrain_config
    from shopfloor.contracts.model_store import ModelStore
    from shopfloor.families.predictive_maintenance.config import PredictiveMaintenanceConfig

    store = ModelStore(str(tmp_path / "store"))
    per_site = PredictiveMaintenanceConfig.model_validate({"fleet": {"strategy": "per-site"}})
    assert sites_retrain_config(per_site, ("site-b",), store.uri) == per_site  # nothing published: all retrain
    store.set_latest(per_site.model_name, "v1")
    retrain = sites_retrain_config(per_site, ("site-b",), store.uri).fleet
    assert retrain.retrain_only == ["site-b"]
    assert retrain.keep_models_from == str(tmp_path / "store" / per_site.model_name / "v1" / "model")
    assert sites_retrain_config(per_site, (), store.uri) == per_site
    one_model = PredictiveMaintenanceConfig()  # the global strategy has no site models to keep
    assert sites_retrain_config(one_model, ("site-b",), store.uri) == one_model


def test_a_fleet_section_naming_sites_without_a_source_is_refused() -> None:
    from pydantic import ValidationError

    from shopfloor.families.predictive_maintenance.config import FleetConfig

    with pytest.raises(ValidationError, match="retrain_only needs keep_models_from"):
        FleetConfig(strategy="per-site", retrain_only=["site-b"])
