"""The sensor label step's plain function: one step, the family decides how windows are labelled."""

from pathlib import Path

import pytest

from shopfloor.common.errors import ConfigError
from shopfloor.components.ingest.ingest import write_outputs
from shopfloor.components.label.label import run_label_sensors
from shopfloor.contracts.windows import load_windows
from shopfloor.families.anomaly_detection.config import AnomalyLabelingConfig
from shopfloor.families.predictive_maintenance.config import LabelingConfig, PredictiveMaintenanceConfig


@pytest.fixture(scope="module")
def tables(small_ingested, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small plant as the ingest step leaves it: sensors and events in Parquet."""
    folder = tmp_path_factory.mktemp("ingested")
    write_outputs(small_ingested, folder / "sensors.parquet", folder / "events.parquet", folder / "profile.json")
    return folder


def _label(tables: Path, family: str, labeling: dict, out: Path):
    schema = PredictiveMaintenanceConfig().data.schema_parameter()
    return run_label_sensors(
        family, str(tables / "sensors.parquet"), str(tables / "events.parquet"), None, schema, labeling, str(out)
    )


def test_predictive_maintenance_labels_failures_within_the_horizon(tables: Path, tmp_path: Path) -> None:
    labelled = _label(tables, "predictive-maintenance", LabelingConfig(test_fraction=0.34).model_dump(), tmp_path / "w")
    assert labelled.rate_name == "positive_rate" and "failing within 48 h" in labelled.summary
    written = load_windows(str(tmp_path / "w"))
    assert written.x.shape == labelled.windows.x.shape and written.info["horizon_hours"] == 48
    assert "asset_id" not in written.features and "timestamp" not in written.features


def test_anomaly_detection_labels_abnormal_windows_in_time_order(tables: Path, tmp_path: Path) -> None:
    labelled = _label(tables, "anomaly-detection", AnomalyLabelingConfig().model_dump(), tmp_path / "w")
    assert labelled.rate_name == "abnormal_rate" and "abnormal:" in labelled.summary
    assert load_windows(str(tmp_path / "w")).info["target"] == "anomaly"


def test_an_image_family_refuses_sensor_windows_in_one_line(tables: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="visual-inspection reads images") as raised:
        _label(tables, "visual-inspection", {}, tmp_path / "w")
    assert "\n" not in str(raised.value) and not (tmp_path / "w").exists()


def test_a_wrong_labeling_key_names_the_field(tables: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="horizon"):
        _label(tables, "predictive-maintenance", {"horizon": 48}, tmp_path / "w")
