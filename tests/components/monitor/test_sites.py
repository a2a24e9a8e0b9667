"""Drift by site: a batch with a site column is judged per site against that site's training readings."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopfloor.common.config import MonitorConfig
from shopfloor.components.monitor.drift import DriftReport
from shopfloor.components.monitor.records import MonitorResult, Reference
from shopfloor.components.monitor.sites import NO_SITES_IN_PAYLOADS, site_drift, site_metrics, with_site_drift
from shopfloor.families.scenarios import parse_config


@pytest.fixture(scope="module")
def batch(small_ingested) -> pd.DataFrame:
    """The small plant's readings with site-b's pumps and valves ageing: hotter, and pressure up."""
    table = small_ingested.sensors.copy()
    site_b = table["site"] == "site-b"
    table.loc[site_b, "temperature_c"] += 15.0
    table.loc[site_b, "pressure_bar"] *= 1.5
    return table


def _version(tmp_path: Path, profile: dict) -> str:
    (tmp_path / "profile.json").write_text(json.dumps(profile))
    return str(tmp_path)


def _result() -> MonitorResult:
    report = DriftReport(features={}, drifted=[], share_drifted=0.0, rows=1000, enough_data=True)
    return MonitorResult(drift=report, predictions=None, drifted=False, summary="no drift in 7 sensors")


def test_the_drifting_site_is_named_and_the_other_is_not(small_ingested, batch: pd.DataFrame) -> None:
    found = site_drift(batch, small_ingested.profile["sites"], small_ingested.features, MonitorConfig(), {})
    assert sorted(found) == ["site-a", "site-b"]
    assert not found["site-a"].drifted and found["site-a"].report.drifted == []
    assert found["site-b"].drifted and {"temperature_c", "pressure_bar"} <= set(found["site-b"].report.drifted)
    # site-b never measured motor current or differential pressure: they are not judged there
    assert "motor_current_a" not in found["site-b"].features and "motor_current_a" in found["site-a"].features
    assert site_metrics(found)["site/site-b/drifted"] == 1.0 and site_metrics(found)["site/site-a/drifted"] == 0.0


def test_a_sites_own_thresholds_apply(small_ingested, batch: pd.DataFrame) -> None:
    lenient = MonitorConfig(min_share_drifted=1.0)  # every sensor must drift before site-b counts
    found = site_drift(
        batch, small_ingested.profile["sites"], small_ingested.features, MonitorConfig(), {"site-b": lenient}
    )
    assert found["site-b"].report.drifted and not found["site-b"].drifted


def test_a_site_that_drifted_makes_the_run_drifted_and_the_summary_names_it(
    small_ingested, batch: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "batch.parquet"
    batch.to_parquet(path)
    reference = Reference("v1", small_ingested.features, 24, small_ingested.profile["sensors"]["columns"], np.empty(0))
    config = parse_config("sites: {site-b: {monitor: {psi_threshold: 0.3}}}", "fleet.yaml")
    checked = with_site_drift(
        _result(), str(path), _version(tmp_path, small_ingested.profile), reference, MonitorConfig(), config
    )
    assert checked.drifted and sorted(checked.sites) == ["site-a", "site-b"]
    assert checked.summary.startswith("no drift in 7 sensors; site site-b: drift in ")
    assert "site-a" not in checked.summary
    unchanged = with_site_drift(
        _result(),
        str(path),
        _version(tmp_path, {**small_ingested.profile, "sites": {}}),
        reference,
        MonitorConfig(),
        None,
    )
    assert unchanged == _result()  # a model trained before sites were profiled: the fleet's verdict only


def test_payload_logs_carry_no_site_and_a_fleet_config_is_told_so(small_ingested) -> None:
    config = parse_config("sites: {site-b: {}}", "fleet.yaml")
    reference = Reference("v1", [], 24, {}, np.empty(0))
    told = with_site_drift(_result(), "", "unused", reference, MonitorConfig(), config)
    assert told.summary.endswith(NO_SITES_IN_PAYLOADS) and not told.drifted
    assert with_site_drift(_result(), "", "unused", reference, MonitorConfig(), None) == _result()
    assert dataclasses.replace(told, summary=_result().summary) == _result()
