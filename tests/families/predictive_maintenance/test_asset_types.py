"""Evaluation by asset type: windows carry each asset's type, and the test metrics, report and card come by type."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from shopfloor.components.evaluate.evaluate import EvaluationPaths, Verdict, run_evaluate
from shopfloor.components.train.train import run_train
from shopfloor.contracts.model_artifact import load_model_info
from shopfloor.contracts.windows import LabelledWindows, load_windows, write_windows
from shopfloor.families.base import StepInputs
from shopfloor.families.predictive_maintenance.config import GateConfig, LabelingConfig, ModelConfig
from shopfloor.families.predictive_maintenance.evaluation import Evaluation, quality_gate
from shopfloor.families.predictive_maintenance.fleet import (
    asset_type_report_html,
    evaluate_by_asset_type,
    evaluate_by_group,
    groups_card_markdown,
)
from shopfloor.families.predictive_maintenance.labelling import label_windows
from shopfloor.families.registry import family

TYPES = ("compressor", "pump", "valve")


def test_windows_carry_each_assets_type_and_round_trip(trained_windows: LabelledWindows, tmp_path: Path) -> None:
    windows = trained_windows
    assert windows.asset_type.size == windows.failure.size
    assert sorted(windows.info["asset_types"]) == list(TYPES)
    type_of = dict(zip(windows.asset.tolist(), windows.asset_type.tolist(), strict=True))
    assert all(type_of[a] == {"CMP": "compressor", "PMP": "pump", "VLV": "valve"}[a[2:5]] for a in type_of)
    write_windows(windows, str(tmp_path / "new"))
    again = load_windows(str(tmp_path / "new"))
    assert again.asset_type.tolist() == windows.asset_type.tolist()
    assert again.part("test").asset_types.tolist() == windows.part("test").asset_types.tolist()


def test_windows_without_types_load_and_slice_with_unknown_types(trained_windows, tmp_path: Path) -> None:
    write_windows(dataclasses.replace(trained_windows, asset_type=np.zeros(0, dtype=str)), str(tmp_path / "old"))
    assert "asset_type" not in np.load(tmp_path / "old" / "windows.npz").files  # as written before types existed
    old = load_windows(str(tmp_path / "old"))
    assert old.asset_type.size == 0 and set(old.part("test").asset_types) == {""}
    # a slice rebuilt without slicing the types (as code written before them does) reads as unknown, never shifted
    keep = trained_windows.split == 0
    stale = dataclasses.replace(trained_windows, failure=trained_windows.failure[keep])
    assert set(stale.asset_types) == {""} and stale.asset_types.size == int(keep.sum())
    chosen = trained_windows.select(keep)
    assert chosen.asset_types.tolist() == trained_windows.asset_type[keep].tolist()


def _evaluation(asset_type: list[str], site_threshold: list[float]) -> tuple[Evaluation, LabelledWindows]:
    """A hand-made test split: two sites answering at their own thresholds, assets of two types across them."""
    failure = np.array([0, 0, 1, 1, 0, 0, 0, 1], np.int8)
    score = np.array([0.1, 0.5, 0.6, 0.9, 0.2, 0.35, 0.3, 0.8])
    n = failure.size
    windows = LabelledWindows(
        x=np.zeros((n, 2, 1), np.float32),
        failure=failure,
        rul=np.where(failure == 1, 10.0, 100.0).astype(np.float32),
        split=np.full(n, 2, np.int8),
        asset=np.array(["a1", "a1", "a1", "a1", "b1", "b1", "b1", "b1"]),
        end_time=np.arange(n, dtype=np.int64) * 3_600_000_000_000,
        features=["t"],
        info={},
        site=np.array(["a"] * 4 + ["b"] * 4),
        asset_type=np.array(asset_type),
    )
    metrics = {"roc_auc": 0.9, "pr_auc": 0.8, "rul_mae_hours": 5.0}
    evaluation = Evaluation(
        metrics=metrics,
        confusion_matrix=[[0, 0], [0, 0]],
        roc={},
        gate=quality_gate(metrics, GateConfig(), {"method": "best-f1", "value": 0.5}),
        failure_true=failure,
        failure_score=score,
        rul_true=windows.rul,
        rul_pred=windows.rul + 2.0,
        end_time=windows.end_time,
        asset=windows.asset,
        window_threshold=np.array(site_threshold),
    )
    return evaluation, windows


def test_each_type_is_measured_at_the_threshold_that_answers_its_windows_and_never_gated() -> None:
    types = ["pump", "pump", "pump", "valve", "pump", "pump", "valve", "valve"]
    evaluation, windows = _evaluation(types, [0.7] * 4 + [0.25] * 4)  # site b's models alarm from 0.25
    judged = evaluate_by_group(evaluation, windows, StepInputs(gate=GateConfig().model_dump()))
    m = judged.metrics
    assert m["asset_type/pump/test_windows"] == 5 and m["asset_type/pump/failures"] == 1
    # pump windows: site a at 0.7 alarms on none, site b at 0.25 alarms on 0.35 (no failure) and 0.2 stays quiet
    assert m["asset_type/pump/recall"] == 0.0 and m["asset_type/pump/precision"] == 0.0
    assert "asset_type/pump/threshold" not in m  # its windows answer at two sites' thresholds
    assert m["asset_type/valve/failures"] == 2 and m["asset_type/valve/roc_auc"] == 1.0
    assert m["asset_type/valve/recall"] == 1.0  # 0.9 >= 0.7 at site a, 0.8 >= 0.25 at site b
    assert m["asset_type/valve/precision"] == pytest.approx(2 / 3)  # 0.3 >= 0.25 at site b is a false alarm
    assert judged.gate == evaluation.gate  # measured and reported, not gated
    report = asset_type_report_html(judged)
    assert "<h2>Asset types</h2>" in report and report.count("<tr><td>") == 2 and "<td>per site</td>" in report
    assert "## By asset type (test split)" in groups_card_markdown(judged.metrics)


def test_data_without_types_has_no_asset_type_metrics_nor_section() -> None:
    evaluation, windows = _evaluation([""] * 8, [0.5] * 8)
    assert evaluate_by_asset_type(evaluation, windows) is evaluation
    assert asset_type_report_html(evaluation) == "" and "asset type" not in groups_card_markdown(evaluation.metrics)


@pytest.fixture(scope="module")
def evaluated(small_ingested, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Verdict, EvaluationPaths]:
    """The small plant labelled so its test split holds one asset of each type, trained and evaluated by the steps."""
    work = tmp_path_factory.mktemp("asset-types")
    windows = label_windows(
        small_ingested.sensors,
        small_ingested.events,
        small_ingested.features,
        ["failure"],
        LabelingConfig(test_fraction=0.5, seed=1),
    )
    write_windows(windows, str(work / "windows"))
    (work / "profile.json").write_text(json.dumps(small_ingested.profile))
    inputs = StepInputs(gate=GateConfig(challenger="none").model_dump())
    hyperparameters = ModelConfig(epochs=1, hidden_units=[8], conv_filters=4).model_dump()
    model, history = str(work / "model"), str(work / "history.json")
    run_train("predictive-maintenance", str(work / "windows"), hyperparameters, inputs, model, history)
    out = work / "out"
    out.mkdir()
    paths = EvaluationPaths(*(str(out / name) for name in ("report.html", "summary.md", "card.md", "blessing.json")))
    verdict = run_evaluate(
        "predictive-maintenance",
        str(work / "windows"),
        str(work / "model"),
        str(work / "history.json"),
        str(work / "profile.json"),
        "pm",
        inputs,
        str(work / "store"),
        paths,
    )
    return work, verdict, paths


@pytest.mark.slow  # trains and evaluates through the steps (~10 s): runs with the whole suite
def test_the_evaluate_step_reports_every_test_asset_type(evaluated) -> None:
    work, verdict, paths = evaluated
    windows = load_windows(str(work / "windows"))
    test = windows.part("test")
    assert sorted(set(test.asset_types)) == list(TYPES)  # one test asset of each type
    m = verdict.metrics  # what the step logs as the dashboard's metrics
    gate = json.loads(Path(paths.blessing).read_text())["gate"]
    for name in TYPES:
        mine = test.asset_types == name
        labelled = windows.info["asset_types"][name]["windows"]["test"]
        assert m[f"asset_type/{name}/test_windows"] == mine.sum() == labelled
        assert m[f"asset_type/{name}/failures"] == test.failure[mine].sum()
        for metric in ("roc_auc", "pr_auc", "f1", "recall", "precision", "rul_mae_hours", "threshold"):
            assert f"asset_type/{name}/{metric}" in m, metric
        assert m[f"asset_type/{name}/threshold"] == gate["decision_threshold"]  # the model's, which answers
    chosen = family("predictive-maintenance")
    inputs = StepInputs(gate=GateConfig(challenger="none").model_dump())
    model_dir = str(work / "model")
    again = chosen.evaluate(chosen.load_model(model_dir), load_model_info(model_dir), windows, inputs)
    pumps = test.asset_types == "pump"
    expected = skm.roc_auc_score(test.failure[pumps], again.failure_score[pumps])
    assert m["asset_type/pump/roc_auc"] == pytest.approx(expected, abs=1e-6)
    report, card = Path(paths.report).read_text(), Path(paths.model_card).read_text()
    assert "<h2>Asset types</h2>" in report and all(f"<tr><td>{name}</td>" in report for name in TYPES)
    assert "Metrics by asset type" in report  # its plot
    assert "## By asset type (test split)" in card and all(f"| {name} |" in card for name in TYPES)
    assert not any(check["metric"].startswith("asset_type/") for check in gate["checks"])
