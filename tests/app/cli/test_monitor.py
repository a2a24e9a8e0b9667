"""`shopfloor monitor`, `approve` and `reject`: their requests, the retrain RunRequest, decisions on real state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopfloor.app.cli import main, parse_request
from shopfloor.app.cli.monitor import DecisionRequest, MonitorRequest, save_retrain, saved_retrain
from shopfloor.app.cli.run import RunRequest
from shopfloor.common.config import RetrainPolicy
from shopfloor.components.monitor.policy import RetrainState, decide

MONITOR_ARGV = [
    "monitor", "predictive-maintenance", "--data", "plant", "--config", "plant.yaml", "--work-dir", "runs",
    "--days", "3", "--payload-log", "s3://logs", "--model-store", "s3://models", "--batch", "batch.csv",
    "--labels", "labels.csv", "--no-hpo",
]  # fmt: skip


def test_monitor_every_flag() -> None:
    assert parse_request(MONITOR_ARGV) == MonitorRequest(
        scenario="predictive-maintenance",
        data="plant",
        config="plant.yaml",
        work_dir=Path("runs"),
        model_store="s3://models",
        payload_log="s3://logs",
        days=3,
        labels="labels.csv",
        batch="batch.csv",
        no_hpo=True,
    )


def test_monitor_defaults_leave_the_window_to_the_config() -> None:
    request = parse_request(["monitor", "anomaly-detection"])
    assert request == MonitorRequest(scenario="anomaly-detection", work_dir=Path("shopfloor-runs"))
    assert request.days is None and request.payload_log is None and request.batch is None


def test_the_retrain_path_builds_the_run_request_of_the_monitored_model() -> None:
    retrain = parse_request(MONITOR_ARGV).retrain_request()
    assert retrain == RunRequest(
        scenario="predictive-maintenance",
        data="plant",
        config="plant.yaml",
        work_dir=Path("runs"),
        model_store="s3://models",
        no_hpo=True,
    )
    assert retrain == parse_request(
        ["run", "predictive-maintenance", "--data", "plant", "--config", "plant.yaml", "--work-dir", "runs"]
        + ["--model-store", "s3://models", "--no-hpo"]
    ), "a retrain is the `shopfloor run` the operator would type"


def test_the_saved_retrain_reads_back_as_the_same_run_request(tmp_path: Path) -> None:
    retrain = parse_request(MONITOR_ARGV).retrain_request()
    save_retrain(str(tmp_path), "pm", retrain)
    assert saved_retrain(str(tmp_path), "pm") == retrain


def test_retrain_arguments_saved_by_the_previous_version_still_read(tmp_path: Path) -> None:
    saved = tmp_path / "pm" / "retrain-arguments.json"
    saved.parent.mkdir()
    saved.write_text(
        json.dumps(
            {
                "scenario": "predictive-maintenance",
                "data": "/plant",
                "config": None,
                "work_dir": "shopfloor-runs",
                "model_store": None,
                "no_hpo": False,
            }
        )  # fmt: skip
    )
    assert saved_retrain(str(tmp_path), "pm") == RunRequest(scenario="predictive-maintenance", data="/plant")


@pytest.mark.parametrize("verb", ["approve", "reject"])
def test_decisions_parse_into_a_decision_request(verb: str) -> None:
    argv = [verb, "req-7", "--by", "alice", "--note", "bearings worn", "--config", "plant.yaml"]
    argv += ["--work-dir", "runs", "--state-uri", "s3://mlpipeline/shopfloor/monitor"]
    assert parse_request(argv) == DecisionRequest(
        request_id="req-7",
        approve=verb == "approve",
        by="alice",
        note="bearings worn",
        config="plant.yaml",
        work_dir=Path("runs"),
        state_uri="s3://mlpipeline/shopfloor/monitor",
    )


def test_decisions_still_accept_the_hidden_folder_options() -> None:
    argv = ["approve", "req-7", "--by", "a", "--note", "n", "--model-store", "s3://m", "--payload-log", "s3://l"]
    assert parse_request(argv) == DecisionRequest(request_id="req-7", approve=True, by="a", note="n")


def _pending_request(state_root: Path) -> str:
    """A retrain request waiting for an operator, as a monitor run in approval mode leaves it."""
    state = RetrainState(str(state_root), "predictive-maintenance")
    return decide(True, True, "drift in 3 of 7 sensors", RetrainPolicy(mode="approval"), state).request_id


def test_reject_records_who_and_why_and_starts_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request_id = _pending_request(tmp_path / "monitor")
    assert main(["reject", request_id, "--by", "bob", "--note", "sensor swap", "--work-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"{request_id}: rejected by bob (sensor swap)\n"
    assert RetrainState(str(tmp_path / "monitor"), "predictive-maintenance").get(request_id).status == "rejected"
    assert not (tmp_path / "pipeline-root").exists()


def test_approval_on_a_cluster_state_is_left_to_the_next_monitoring_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_uri = str(tmp_path / "cluster-monitor")
    request_id = _pending_request(tmp_path / "cluster-monitor")
    argv = ["approve", request_id, "--by", "alice", "--note", "new pumps", "--state-uri", state_uri]
    assert main([*argv, "--work-dir", str(tmp_path / "local")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{request_id}: approved by alice (new pumps)",
        "the next monitoring run starts the retrain (cooldown and runs-per-day limits apply)",
    ]
    assert not (tmp_path / "local").exists(), "nothing ran on this machine"


def test_the_newest_days_of_a_sql_source_are_the_monitors_batch(small_demo_data: Path, tmp_path: Path, monkeypatch):
    """`shopfloor monitor --from-source`: the same source and mapping a retrain reads, its newest days only."""
    import pandas as pd
    import sqlalchemy

    from shopfloor.app.cli.monitor import newest_readings
    from shopfloor.common.config import DataConfig

    readings = pd.read_csv(small_demo_data / "sensors.csv")
    last = pd.to_datetime(readings["timestamp"], utc=True).max()
    readings["timestamp"] = pd.to_datetime(readings["timestamp"], utc=True) - last + pd.Timestamp.now(tz="UTC")
    url = f"sqlite:///{tmp_path / 'plant.db'}"
    readings.to_sql("readings", sqlalchemy.create_engine(url), index=False)
    monkeypatch.setenv("PLANT_DB_URL", url)
    data = DataConfig.model_validate({"sensors": {"kind": "sql", "url_env": "PLANT_DB_URL", "table": "readings"}})
    batch = pd.read_parquet(newest_readings(data, 3, tmp_path / "batches"))
    assert len(batch) == 6 * 3 * 24 and set(batch["asset_id"]) == set(readings["asset_id"])
    assert batch["timestamp"].min() >= pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=3, minutes=5)
    assert parse_request(["monitor", "predictive-maintenance", "--from-source"]).from_source
