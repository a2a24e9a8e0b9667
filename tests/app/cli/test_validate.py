"""`shopfloor validate`: its request, and a check of real data that runs nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from shopfloor.app.cli import main, parse_request
from shopfloor.app.cli.validate import ValidateRequest


def test_validate_every_flag() -> None:
    argv = ["validate", "anomaly-detection", "--data", "plant", "--config", "plant.yaml", "--work-dir", "runs"]
    assert parse_request(argv) == ValidateRequest("anomaly-detection", "plant", "plant.yaml", Path("runs"))


def test_validate_reads_the_data_and_runs_nothing(
    small_demo_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["validate", "predictive-maintenance", "--data", str(small_demo_data), "--work-dir", str(tmp_path / "w")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: ") and "readings of 6 assets" in out and "vibration_mm_s" in out
    assert not (tmp_path / "w").exists()


def _pipeline_setup_error(scenario: str, config_file: Path, data: Path, scratch: Path) -> str:
    """What the pipeline's steps before training raise, run as the components run them: ingest, label, search setup."""
    from shopfloor.common.errors import ShopfloorError
    from shopfloor.components.hpo.steps import run_hpo_setup
    from shopfloor.components.ingest.ingest import ingest, write_outputs
    from shopfloor.components.label.label import run_label_sensors
    from shopfloor.families.scenarios import load_config
    from shopfloor.pipelines.scenarios import SCENARIOS

    arguments = SCENARIOS[scenario].arguments(load_config(str(config_file), scenario).resolve_data(data))
    try:
        from shopfloor.common.config import DataConfig
        from shopfloor.common.sources import parse_location

        schema = DataConfig.model_validate(
            {
                **arguments["data_schema"],
                "sensors": parse_location(arguments["sensors_uri"], "sensors_uri"),
                "events": parse_location(arguments["events_uri"], "events_uri"),
            }
        )
        result = ingest(schema.sensors, schema.events, schema)
        tables = [str(scratch / name) for name in ("s.parquet", "e.parquet", "p.json")]
        write_outputs(result, *tables)
        windows = str(scratch / "windows")
        labelling = (arguments["data_schema"], arguments["labeling"], windows)
        run_label_sensors(scenario, tables[0], tables[1], result.features, *labelling)
        run_hpo_setup(arguments["hpo"], windows, arguments["hyperparameters"], arguments["data_schema"], {})
    except ShopfloorError as error:
        return str(error)
    return ""


def _no_failures(data: Path) -> None:
    events = pd.read_csv(data / "events.csv")
    events.loc[events["event_type"] == "failure", "event_type"] = "maintenance"
    events.to_csv(data / "events.csv", index=False)


def _one_asset(data: Path) -> None:
    for name in ("sensors.csv", "events.csv"):
        table = pd.read_csv(data / name)
        table[table["asset_id"] == table["asset_id"].iloc[0]].to_csv(data / name, index=False)


def _no_anomalies_in_validation(data: Path) -> None:
    """Drop the events of days 20-32 of the 40: the chronological split's validation part (55-75 %) has none."""
    events = pd.read_csv(data / "events.csv")
    day = (pd.to_datetime(events["timestamp"], utc=True) - pd.Timestamp("2026-01-01", tz="UTC")).dt.days
    events[(day < 20) | (day >= 32)].to_csv(data / "events.csv", index=False)


SETUP_CASES = {
    "no failures at all": ("predictive-maintenance", "", _no_failures),
    "a one-asset plant": ("predictive-maintenance", "", _one_asset),
    "no events, for a model that learns from failures": ("predictive-maintenance", "data: {events: null}\n", None),
    "windows longer than the data": ("predictive-maintenance", "labeling: {window: 1000}\n", None),
    "a required search without anomalies to score": (
        "anomaly-detection",
        "hpo: {required: true, storage: 'sqlite:///{scratch}/s.db'}\n",
        _no_anomalies_in_validation,
    ),
}


@pytest.mark.parametrize("case", sorted(SETUP_CASES))
def test_validate_refuses_what_the_pipeline_setup_would(
    case: str, small_demo_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # before: `shopfloor validate` said ok, and the run failed 12 s later in hpo-setup (or in label)
    scenario, extra, change = SETUP_CASES[case]
    data = tmp_path / "data"
    shutil.copytree(small_demo_data, data)
    if change is not None:
        change(data)
    config = tmp_path / "plant.yaml"
    config.write_text(f"scenario: {scenario}\n" + extra.replace("{scratch}", str(tmp_path)))
    scratch = tmp_path / "steps"
    scratch.mkdir()
    expected = _pipeline_setup_error(scenario, config, data, scratch)
    assert expected, f"{case}: the pipeline's setup accepted it"
    argv = ["validate", scenario, "--data", str(data), "--config", str(config), "--work-dir", str(tmp_path / "w")]
    assert main(argv) != 0
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {expected}"
