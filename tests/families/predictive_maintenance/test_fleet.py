"""Predictive maintenance across sites: labelling and split by site, per-site thresholds, metrics, gate and report."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from shopfloor.common.errors import DataValidationError
from shopfloor.contracts.windows import LabelledWindows, load_windows, write_windows
from shopfloor.families.base import StepInputs
from shopfloor.families.predictive_maintenance.config import GateConfig, LabelingConfig
from shopfloor.families.predictive_maintenance.evaluation import Evaluation, quality_gate
from shopfloor.families.predictive_maintenance.fleet import evaluate_by_site, site_report_html, site_thresholds
from shopfloor.families.predictive_maintenance.labelling import label_windows
from shopfloor.families.registry import family


def _label(ingested, sites: dict | None) -> LabelledWindows:
    labels = family("predictive-maintenance").label_sensors(
        ingested.sensors,
        ingested.events,
        ingested.features,
        ["failure"],
        LabelingConfig().model_dump(),
        **({"sites": sites} if sites is not None else {}),
    )
    return labels.windows


def test_windows_record_their_site_and_a_fleet_labels_and_splits_by_site(small_ingested) -> None:
    plain = _label(small_ingested, None)
    assert sorted(set(plain.site)) == ["site-a", "site-b"] and plain.site.size == plain.failure.size
    fleet = _label(small_ingested, {"site-b": {"labeling": {"horizon_hours": 24}}})
    info = fleet.info["sites"]
    assert (info["site-a"]["horizon_hours"], info["site-b"]["horizon_hours"]) == (48.0, 24.0)
    for name in ("site-a", "site-b"):  # every site in every split, so each can be thresholded and gated
        assert all(info[name]["windows"][part] > 0 for part in ("train", "validation", "test")), info[name]
    # a shorter horizon labels fewer of site-b's windows as failing; site-a's labels are the fleet's
    a_plain, a_fleet = plain.site == "site-a", fleet.site == "site-a"
    assert fleet.failure[a_fleet].sum() == plain.failure[a_plain].sum()
    assert fleet.failure[~a_fleet].mean() < plain.failure[~a_plain].mean()


def test_a_site_too_small_to_split_is_an_error_naming_it(small_ingested) -> None:
    sensors = small_ingested.sensors
    keep = (sensors["site"] == "site-a") | (
        sensors["asset_id"] == sensors.loc[sensors["site"] == "site-b", "asset_id"].min()
    )
    with pytest.raises(DataValidationError, match="site 'site-b': only 1 asset"):
        label_windows(
            sensors[keep],
            small_ingested.events,
            small_ingested.features,
            ["failure"],
            LabelingConfig(),
            site_configs={},
        )


def test_windows_without_a_site_array_still_load(small_ingested, tmp_path: Path) -> None:
    windows = _label(small_ingested, None)
    write_windows(dataclasses.replace(windows, site=np.zeros(0, dtype=str)), str(tmp_path / "old"))
    old = load_windows(str(tmp_path / "old"))
    assert old.site.size == 0 and set(old.part("test").sites) == {""}
    write_windows(windows, str(tmp_path / "new"))
    assert load_windows(str(tmp_path / "new")).site.tolist() == windows.site.tolist()


def _windows(site: list[str], failure: list[int], split: int) -> LabelledWindows:
    n = len(site)
    return LabelledWindows(
        x=np.zeros((n, 2, 1), np.float32),
        failure=np.array(failure, np.int8),
        rul=np.where(np.array(failure) == 1, 10.0, 100.0).astype(np.float32),
        split=np.full(n, split, np.int8),
        asset=np.array([f"{s}-{i % 2}" for i, s in enumerate(site)]),
        end_time=np.arange(n, dtype=np.int64) * 3_600_000_000_000,
        features=["t"],
        info={},
        site=np.array(site),
    )


SITES = ["a"] * 6 + ["b"] * 6 + ["c"] * 4
FAILURE = [0, 0, 0, 1, 0, 1] + [0, 0, 1, 0, 1, 1] + [0, 0, 0, 0]
SCORE = np.array([0.1, 0.2, 0.3, 0.7, 0.6, 0.8] + [0.1, 0.5, 0.35, 0.2, 0.4, 0.9] + [0.1, 0.2, 0.1, 0.3])


def test_each_site_gets_its_threshold_on_its_validation_windows() -> None:
    validation = _windows(SITES, FAILURE, 1)
    fleet = {"method": "best-f1", "value": 0.5, "validation_windows": 16}
    inputs = StepInputs(
        data_schema={"sites": {"b": {"gate": {"operating_point": "target-recall", "target_recall": 1.0}}}}
    )
    chosen = site_thresholds(validation, SCORE, inputs, fleet)
    assert chosen["a"]["method"] == "best-f1" and chosen["a"]["value"] == pytest.approx(0.7)  # F1 1.0 on site a
    assert chosen["b"]["method"] == "target-recall" and chosen["b"]["value"] == pytest.approx(0.35)  # all 3 caught
    assert chosen["c"]["value"] == 0.5 and chosen["c"]["method"].startswith("fleet's (best-f1): no failures")


def _evaluation(gate: GateConfig, operating: dict) -> Evaluation:
    test = _windows(SITES, FAILURE, 2)
    metrics = {"roc_auc": 0.9, "pr_auc": 0.8, "rul_mae_hours": 5.0}
    return Evaluation(
        metrics=metrics,
        confusion_matrix=[[0, 0], [0, 0]],
        roc={},
        gate=quality_gate(metrics, gate, operating),
        failure_true=test.failure,
        failure_score=SCORE,
        rul_true=test.rul,
        rul_pred=test.rul + 3.0,
        end_time=test.end_time,
        asset=test.asset,
    )


def test_per_site_metrics_at_each_sites_threshold_and_a_site_below_its_minimum_fails_the_fleet() -> None:
    gate = GateConfig(min_roc_auc=0.8, min_pr_auc=0.5)
    operating = {"method": "best-f1", "value": 0.5, "by_site": {"a": {"value": 0.7}, "b": {"value": 0.35}}}
    evaluation = _evaluation(gate, operating)
    windows = _windows(SITES, FAILURE, 2)
    sites = {"a": {}, "b": {"gate": {"min_roc_auc": 0.95}}}
    judged = evaluate_by_site(evaluation, windows, StepInputs(gate=gate.model_dump(), data_schema={"sites": sites}))
    m = judged.metrics
    assert m["site/a/roc_auc"] == 1.0 and m["site/a/threshold"] == 0.7 and m["site/a/recall"] == 1.0
    assert m["site/b/threshold"] == 0.35 and m["site/b/roc_auc"] == pytest.approx(7 / 9)
    assert m["site/c/test_windows"] == 4 and "site/c/roc_auc" not in m  # no failures: ranking undefined
    assert evaluation.gate["passed"] and not judged.gate["passed"]  # the fleet passes, site b does not
    failing = [c for c in judged.gate["checks"] if not c["passed"]]
    assert [(c["metric"], c["site"]) for c in failing] == [("site/b/roc_auc", "b")]
    assert failing[0]["reason"] == "site b: roc_auc 0.7778 below its minimum 0.95"
    assert judged.gate["reason"] == failing[0]["reason"]
    assert judged.gate["sites_not_judged"]["c"].startswith("its test windows hold no failures")
    report = site_report_html(judged)
    assert "<h2>Sites</h2>" in report and report.count("<tr><td>") == 3 and "FAIL" in report
    assert "data:image/png;base64," in report


def test_without_overlays_sites_are_measured_but_not_gated() -> None:
    gate = GateConfig()
    evaluation = _evaluation(gate, {"method": "best-f1", "value": 0.5})
    judged = evaluate_by_site(evaluation, _windows(SITES, FAILURE, 2), StepInputs(gate=gate.model_dump()))
    assert judged.gate == evaluation.gate and judged.metrics["site/a/threshold"] == 0.5
    assert "not gated" in site_report_html(judged)
