"""`shopfloor validate`: its request, and a check of real data that runs nothing."""

from __future__ import annotations

from pathlib import Path

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
