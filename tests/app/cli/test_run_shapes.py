"""`shopfloor run` on data in the shapes real data sets come in, by a config alone: no made-up columns or events.

Before, each needed a workaround: cycles turned into made-up hourly timestamps, a fake asset column for one
machine, a dummy event for a plant without events (``shopfloor.demo.shapes`` writes each shape and its config).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shopfloor.demo.shapes import write_cycle_fleet, write_labelled_readings, write_single_series
from tests.app.cli.helpers import gate_values, printed_path, shopfloor


def _run(scenario: str, paths: dict[str, Path], work: Path, work_dirs: list[Path]):
    work_dirs.append(work)
    folder = str(paths["config"].parent)
    result = shopfloor("run", scenario, "--data", folder, "--config", str(paths["config"]), "--work-dir", str(work))
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _metrics(stdout: str) -> dict[str, float]:
    line = re.search(r"^  metrics: (.*)$", stdout, re.MULTILINE)[1]
    return {name: float(value) for name, value in re.findall(r"(\w+) ([0-9.eE+-]+)", line)}


@pytest.mark.slow
def test_a_fleet_counted_in_cycles_predicts_failures_in_cycles(tmp_path: Path, work_dirs: list[Path]) -> None:
    result = _run("predictive-maintenance", write_cycle_fleet(tmp_path / "fleet"), tmp_path / "work", work_dirs)
    assert "40 assets" in result.stderr.replace(",", "") and "40 events" in result.stderr
    metrics = _metrics(result.stdout)
    assert metrics["roc_auc"] >= 0.9 and metrics["rul_mae_hours"] < 40, metrics  # in cycles, of lives of 120-220
    assert "fleet-cycles" in str(printed_path(result.stdout, "published"))


@pytest.mark.slow
def test_labelled_independent_readings_find_their_anomalies(tmp_path: Path, work_dirs: list[Path]) -> None:
    result = _run("anomaly-detection", write_labelled_readings(tmp_path / "readings"), tmp_path / "work", work_dirs)
    metrics = _metrics(result.stdout)
    assert metrics["roc_auc"] >= 0.9 and metrics["pr_auc"] >= 0.5, metrics
    assert gate_values(result.stdout)["false_alarm_rate"] <= 0.05


@pytest.mark.slow
def test_one_machine_without_events_gets_a_percentile_alarm(tmp_path: Path, work_dirs: list[Path]) -> None:
    result = _run("anomaly-detection", write_single_series(tmp_path / "pump"), tmp_path / "work", work_dirs)
    assert "0 events" in result.stderr and "search skipped, training the configured model" in result.stderr
    assert "percentile" in result.stderr
    assert gate_values(result.stdout)["false_alarm_rate"] <= 0.05
