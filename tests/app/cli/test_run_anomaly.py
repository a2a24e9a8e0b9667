"""`shopfloor run anomaly-detection` as a user runs it: demo plant end to end, and a real ECG it never saw."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.app.cli.helpers import gate_values, post_json, printed_path, shopfloor


@pytest.mark.slow
def test_run_anomaly_detection_demo_end_to_end(tmp_path: Path, work_dirs: list[Path]) -> None:
    work_dirs.append(tmp_path)
    result = shopfloor("run", "anomaly-detection", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    for step in (
        "fingerprint-sources",
        "ingest",
        "label",
        "train",
        "evaluate",
        "explain",
        "publish",
        "deploy",
    ):
        assert f"> {step} ..." in result.stderr and f"< {step}: ok" in result.stderr
    assert "alarm threshold" in result.stderr
    assert "share of alarm error" in printed_path(result.stdout, "explanations").read_text()
    gate = gate_values(result.stdout)
    assert gate["false_alarm_rate"] <= 0.05 and gate["f1"] >= 0.5
    report_path = printed_path(result.stdout, "report (HTML)")
    assert report_path.suffix == ".html", "a browser opens it as a page, not as its source"
    report = report_path.read_text()
    assert "Reconstruction error over time" in report and "Quality gate PASSED" in report
    # before: anomaly runs printed no ROC-AUC or PR-AUC where the user looks
    assert re.search(r"^  metrics: roc_auc [0-9.]+, pr_auc [0-9.]+, f1 [0-9.]+, false_alarm_rate", result.stdout, re.M)
    published = printed_path(result.stdout, "published")
    info = json.loads((published / "model" / "shopfloor_model.json").read_text())
    assert info["model_type"] == "anomaly-detection" and info["threshold"]["value"] > 0

    found = re.findall(r"^\s+(V1|V2|explain): curl .* -d @(\S+) (\S+)$", result.stdout, re.MULTILINE)
    commands = {name: (body, url) for name, body, url in found}
    status, answer = post_json(commands["V1"][1], Path(commands["V1"][0]).read_bytes())
    assert status == 200, answer
    first, second = answer["predictions"]  # the example's first window is abnormal, the second normal
    assert first["anomaly_score"] > 2 * second["anomaly_score"] and first["anomalous"] in (True, False)
    status, answer = post_json(commands["explain"][1], Path(commands["explain"][0]).read_bytes())
    assert status == 200 and answer["explanations"][0]["top_features"]


@pytest.mark.slow
def test_run_anomaly_detection_on_a_real_ecg_through_data_and_config_alone(
    tmp_path: Path,
    work_dirs: list[Path],
) -> None:
    from shopfloor.demo.real_sensors import write_ecg_plant_layout

    work_dirs.append(tmp_path / "work")
    paths = write_ecg_plant_layout(tmp_path / "ecg")
    result = shopfloor(
        "run", "anomaly-detection", "--data", str(tmp_path / "ecg"), "--config", str(paths["config"]),
        "--work-dir", str(tmp_path / "work"),
    )  # fmt: skip
    assert result.returncode in (0, 3), result.stderr[-3000:]
    assert "< evaluate: ok" in result.stderr
    gate = gate_values(result.stdout)
    assert gate["false_alarm_rate"] <= 0.05
    card = printed_path(result.stdout, "model card").read_text()
    assert "| ecg_mv |" in card and "anomaly score (autoencoder reconstruction error)" in card
    report = printed_path(result.stdout, "report (HTML)").read_text()
    assert "Reconstruction error over time: mitdb-ecg" in report
