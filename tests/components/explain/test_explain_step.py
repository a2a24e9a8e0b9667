"""The explain step's plain function, as the KFP wrapper calls it, for each built-in family: real Keras models."""

from pathlib import Path

import pytest

from shopfloor.components.explain.explain import ExplanationPaths, run_explain
from shopfloor.contracts.model_artifact import load_model_info
from shopfloor.contracts.windows import write_windows
from shopfloor.families.base import ExplainRequest, StepInputs
from shopfloor.families.predictive_maintenance.config import GateConfig


def _explain(family: str, data: Path, model: Path, inputs: StepInputs, out: Path) -> tuple[dict, ExplanationPaths]:
    out.mkdir()
    paths = ExplanationPaths(report=str(out / "report.html"), summary=str(out / "summary.md"))
    importance = run_explain(family, str(data), str(model), inputs, ExplainRequest("m", sample_size=64), paths)
    return importance, paths


def test_window_model_ranks_every_sensor_by_integrated_gradients(
    trained_windows, published_model: Path, tmp_path: Path
) -> None:
    write_windows(trained_windows, str(tmp_path / "windows"))
    gate = StepInputs(gate=GateConfig().model_dump())
    importance, paths = _explain(
        "predictive-maintenance", tmp_path / "windows", published_model / "model", gate, tmp_path / "out"
    )
    assert set(importance) == set(trained_windows.features) and all(value >= 0 for value in importance.values())
    summary = Path(paths.summary).read_text()
    assert summary.startswith("# m: sensors that drive the failure risk")
    assert summary.count("\n| ") == len(trained_windows.features) + 2  # header, rule and one row per sensor
    assert "Integrated gradients on" in Path(paths.report).read_text()


def test_detector_splits_its_alarm_error_across_the_sensors(
    anomaly_windows, published_detector: Path, tmp_path: Path
) -> None:
    write_windows(anomaly_windows, str(tmp_path / "windows"))
    importance, paths = _explain(
        "anomaly-detection", tmp_path / "windows", published_detector / "model", StepInputs(), tmp_path / "out"
    )
    assert set(importance) == set(anomaly_windows.features)
    assert sum(importance.values()) == pytest.approx(1.0, abs=1e-4)
    report = Path(paths.report).read_text()
    threshold = load_model_info(published_detector / "model")["threshold"]["value"]
    assert f"at the threshold {threshold:.4g}" in report and "<h2>Strongest alarms</h2>" in report
    assert "share of alarm error" in Path(paths.summary).read_text()


def test_inspection_cnn_shows_grad_cam_cases_and_logs_no_global_importance(vision_trained, tmp_path: Path) -> None:
    from shopfloor.common.vision_config import ImageDataConfig, ImageSplitConfig
    from shopfloor.components.ingest.images import ingest_images, write_outputs

    data = tmp_path / "labelled"
    data.mkdir()
    write_outputs(
        ingest_images(str(vision_trained.root), ImageDataConfig()),
        str(data / "manifest"),
        str(tmp_path / "skipped"),
        str(tmp_path / "profile"),
    )
    inputs = StepInputs(data_schema=ImageDataConfig().model_dump(), split=ImageSplitConfig().model_dump())
    importance, paths = _explain(
        "visual-inspection", data / "manifest", vision_trained.model_dir, inputs, tmp_path / "out"
    )
    assert importance == {}
    summary = Path(paths.summary).read_text()
    assert "| most confident |" in summary and "Operator feedback on earlier explanations: none yet." in summary
    assert "where the model looks (Grad-CAM)" in Path(paths.report).read_text()


def test_an_unknown_family_writes_nothing(published_model: Path, tmp_path: Path) -> None:
    from shopfloor.common.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown family 'forecast'"):
        _explain("forecast", tmp_path, published_model / "model", StepInputs(), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
