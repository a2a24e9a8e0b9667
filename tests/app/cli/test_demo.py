"""`shopfloor demo-data` and `demo-drift`: their requests, and demo data written in-process (the drift demo end to
end is in tests/monitor)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shopfloor.app.cli import main, parse_request
from shopfloor.app.cli.demo import DemoDataRequest, DemoDriftRequest


def test_demo_data_every_flag() -> None:
    argv = ["demo-data", "out", "--seed", "3", "--sites", "2", "--assets-per-site", "4", "--days", "30"]
    assert parse_request(argv) == DemoDataRequest(output=Path("out"), seed=3, sites=2, assets_per_site=4, days=30)


def test_demo_data_defaults() -> None:
    assert parse_request(["demo-data", "out"]) == DemoDataRequest(
        Path("out"), seed=7, sites=3, assets_per_site=8, days=90
    )


def test_demo_drift_work_dir() -> None:
    assert parse_request(["demo-drift"]) == DemoDriftRequest(work_dir=Path("shopfloor-runs"))
    assert parse_request(["demo-drift", "--work-dir", "runs"]) == DemoDriftRequest(work_dir=Path("runs"))


def test_demo_data_writes_the_plant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["demo-data", str(tmp_path), "--sites", "1", "--assets-per-site", "2", "--days", "3"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"sensors: {tmp_path / 'sensors.csv'}",
        f"events: {tmp_path / 'events.csv'}",
    ]
    assert pd.read_csv(tmp_path / "sensors.csv")["asset_id"].nunique() == 2


def test_demo_data_out_of_range_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo-data", str(tmp_path / "out"), "--days", "0"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: demo-data: PlantDataSpec.days must be an integer in [1, 3650], got 0"
    ]
    assert not (tmp_path / "out").exists()
