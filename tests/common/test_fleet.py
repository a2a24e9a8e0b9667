"""Fleets: `sites:` overlays and `extends:` in config files, the one merge rule, and site readings in fleet units."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopfloor import pipelines
from shopfloor.common.errors import ConfigError, DataValidationError
from shopfloor.common.fleet import apply_site_readings, fleet_schema, merge_overlay, site_section, site_view
from shopfloor.families.predictive_maintenance.config import GateConfig, PredictiveMaintenanceConfig
from shopfloor.families.scenarios import load_config, parse_config
from shopfloor.pipelines.parameters import sensor_data_parameters

FLEET = """
gate: {min_roc_auc: 0.8}
sites:
  site-b:
    features: [temperature_c, pressure_bar]
    scale: {temperature_c: {factor: 0.5556, offset: -17.78}}
    labeling: {horizon_hours: 36}
    gate: {min_pr_auc: 0.3, operating_point: target-recall}
    monitor: {psi_threshold: 0.3, retrain: {mode: auto}}
"""


def test_a_site_view_is_the_fleet_config_with_the_site_overlay() -> None:
    config = parse_config(FLEET, "fleet.yaml")
    site_b, site_a = site_view(config, "site-b"), site_view(config, "site-a")
    assert site_b.labeling.horizon_hours == 36 and site_b.labeling.window == 24  # the rest stays the fleet's
    assert (site_b.gate.min_roc_auc, site_b.gate.min_pr_auc, site_b.gate.operating_point) == (0.8, 0.3, "target-recall")
    assert site_b.monitor.psi_threshold == 0.3 and site_b.monitor.retrain.mode == "auto"
    assert site_b.monitor.retrain.cooldown_hours == 24.0  # a nested section merges key by key too
    assert site_b.data.sensor_columns.features == ["temperature_c", "pressure_bar"]
    assert site_a.gate == config.gate and site_a.labeling == config.labeling  # no overlay: the fleet's


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sites: {site-b: {gate: {min_roc_au: 0.5}}}",
            "fleet.yaml: sites.site-b.gate.min_roc_au: unknown field, did you mean 'min_roc_auc'?",
        ),
        (
            "sites: {site-b: {gate: {min_roc_auc: 1.5}}}",
            "fleet.yaml: sites.site-b.gate.min_roc_auc: input should be less than or equal to 1",
        ),
        (
            "sites: {site-b: {labeling: {window: 12}}}",
            "fleet.yaml: sites.site-b.labeling.window: unknown field (expected one of: horizon_hours, rul_cap_hours)",
        ),
        ("sites: {site-b: {model: {epochs: 2}}}", "fleet.yaml: sites.site-b.model: unknown field"),
        (
            "sites: {site-b: {scale: {temperature_c: {factor: 0}}}}",
            "fleet.yaml: sites.site-b.scale.temperature_c.factor: value error, a factor of 0",
        ),
        (
            "data: {sensor_columns: {site: null}}\nsites: {site-b: {}}",
            "fleet.yaml: sites: value error, site overlays need a site column",
        ),
        (
            "data: {sensor_columns: {features: [a, b]}}\nsites: {site-b: {features: [a, c]}}",
            "site 'site-b' names sensor 'c', not one of the fleet's: a, b",
        ),
    ],
)
def test_a_bad_overlay_is_one_line_naming_the_site_and_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "fleet.yaml")
    assert str(raised.value).startswith(message) or message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_extends_shares_a_base_config_and_its_errors_name_the_base(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("model_name: fleet\nlabeling: {horizon_hours: 36}\ngate: {min_roc_auc: 0.8}\n")
    (tmp_path / "north.yaml").write_text("extends: base.yaml\ngate: {min_pr_auc: 0.3}\n")
    north = load_config(tmp_path / "north.yaml")
    assert (north.model_name, north.labeling.horizon_hours) == ("fleet", 36)
    assert (north.gate.min_roc_auc, north.gate.min_pr_auc) == (0.8, 0.3)  # sections merge key by key
    (tmp_path / "bad-base.yaml").write_text("gate: {min_pr_aux: 0.3}\n")
    (tmp_path / "child.yaml").write_text("extends: bad-base.yaml\n")
    with pytest.raises(
        ConfigError, match=r"bad-base\.yaml: gate\.min_pr_aux: unknown field, did you mean 'min_pr_auc'"
    ):
        load_config(tmp_path / "child.yaml")
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="extends: extends goes round in a circle"):
        load_config(tmp_path / "loop.yaml")
    (tmp_path / "orphan.yaml").write_text("extends: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read config file"):
        load_config(tmp_path / "orphan.yaml")


def test_the_fleet_example_extends_its_base_and_overlays_three_sites() -> None:
    folder = Path(pipelines.__file__).parent / "configs" / "examples"
    fleet = load_config(folder / "fleet.yaml")
    assert fleet.model_name == "fleet-pumps-valves" and sorted(fleet.sites) == ["site-a", "site-b", "site-c"]
    assert site_view(fleet, "site-c").gate.operating_point == "target-recall"
    assert site_view(fleet, "site-b").labeling.horizon_hours == 36 and fleet.labeling.horizon_hours == 48


def test_overlays_travel_in_the_data_schema_only_when_there_are_any() -> None:
    plain = sensor_data_parameters(PredictiveMaintenanceConfig())["data_schema"]
    assert "sites" not in plain  # a plain config's pipeline parameters are as they were
    schema = sensor_data_parameters(parse_config(FLEET, "fleet.yaml"))["data_schema"]
    data, sites = fleet_schema(schema)
    assert data == plain and sites["site-b"]["gate"] == {"min_pr_auc": 0.3, "operating_point": "target-recall"}
    gate = site_section(GateConfig, {"min_roc_auc": 0.8}, sites, "site-b", "gate", "p")
    assert (gate.min_roc_auc, gate.min_pr_auc) == (0.8, 0.3)
    assert site_section(GateConfig, {}, sites, "site-a", "gate", "p") == GateConfig()


def test_merge_overlay_merges_mappings_and_replaces_the_rest() -> None:
    merged = merge_overlay({"a": {"x": 1, "y": [1]}, "b": 2}, {"a": {"y": [2]}, "c": 3})
    assert merged == {"a": {"x": 1, "y": [2]}, "b": 2, "c": 3}


def _readings() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "site": ["site-a", "site-b", "site-b"],
            "temperature_c": [20.0, 68.0, 86.0],
            "pressure_bar": [1.0, 2.0, 3.0],
            "vibration_mm_s": [0.5, 0.6, 0.7],
        }
    )


def test_site_readings_are_converted_and_unmeasured_sensors_blanked() -> None:
    sites = {
        "site-b": {
            "features": ["temperature_c", "pressure_bar"],
            "scale": {"temperature_c": {"factor": 0.5, "offset": -34}},
        }
    }
    out = apply_site_readings(_readings(), sites, ["temperature_c", "pressure_bar", "vibration_mm_s"], "p")
    assert out["temperature_c"].tolist() == [20.0, 0.0, 9.0]
    assert out["pressure_bar"].tolist() == [1.0, 2.0, 3.0]
    assert out["vibration_mm_s"].iloc[0] == 0.5 and np.isnan(out["vibration_mm_s"].iloc[1:]).all()


def test_an_overlay_for_a_site_the_data_lacks_is_an_error_naming_it() -> None:
    with pytest.raises(DataValidationError) as raised:
        apply_site_readings(_readings(), {"site-x": {}}, ["temperature_c"], "pipeline parameter data_schema")
    assert str(raised.value) == (
        "pipeline parameter data_schema: sites.site-x: an overlay for site 'site-x', which the data does not have "
        "(expected one of the data's sites: site-a, site-b)"
    )
