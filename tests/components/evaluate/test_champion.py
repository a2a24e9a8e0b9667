"""Champion/challenger: the model in production is scored on the new run's data and must not do better."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from shopfloor.components.evaluate.champion import Champion, challenge, load_champion, versus_production
from shopfloor.contracts.model_artifact import load_keras_model
from shopfloor.families.predictive_maintenance.config import GateConfig
from shopfloor.families.predictive_maintenance.evaluation import evaluate_model


@pytest.fixture
def store(published_model: Path, tmp_path: Path) -> Path:
    """A model store whose latest.json names the published test model as the one in production."""
    version = tmp_path / "store" / "pm" / published_model.name
    shutil.copytree(published_model, version)
    (version.parent / "latest.json").write_text(json.dumps({"version": version.name, "uri": str(version)}))
    return tmp_path / "store"


def test_no_production_model_or_another_layout_is_not_compared(store: Path, trained_windows, tmp_path: Path) -> None:
    inputs = {"features": trained_windows.features, "window": 24}
    assert load_champion(str(tmp_path / "empty"), "pm", inputs) == "no model in production yet"
    other = load_champion(str(store), "pm", {**inputs, "window": 16})
    assert isinstance(other, str) and "reads other window: not comparable" in other
    champion = load_champion(str(store), "pm", inputs)
    assert isinstance(champion, Champion) and champion.version == "v-test0000001"


def test_challenge_adds_one_check_and_recomputes_the_verdict() -> None:
    gate = {"passed": True, "checks": [{"metric": "roc_auc", "passed": True}], "decision_threshold": 0.5}
    better = challenge(gate, "pr_auc", ">=", 0.8, 0.7, "v-old")
    assert better["passed"] and better["checks"][-1]["metric"] == "pr_auc_vs_production"
    worse = challenge(gate, "false_alarm_rate", "<=", 0.08, 0.02, "v-old")
    assert not worse["passed"] and worse["checks"][-1]["production_version"] == "v-old"


def test_a_challenger_must_match_production_on_the_same_windows(store: Path, published_model, trained_windows) -> None:
    thresholds = GateConfig(min_roc_auc=0.0, min_pr_auc=0.0, max_rul_mae_hours=1e9)
    inputs = {"features": trained_windows.features, "window": 24}
    model = load_keras_model(published_model)
    same = evaluate_model(model, trained_windows, thresholds, {"method": "fixed", "value": 0.5})

    def production_metrics(champion: Champion) -> dict[str, float]:
        return evaluate_model(champion.model, trained_windows, thresholds, {"method": "fixed", "value": 0.5}).metrics

    tied, sentence = versus_production(same, "pr_auc", ">=", str(store), "pm", inputs, production_metrics)
    assert tied.gate["passed"] and "beats or ties production v-test0000001" in sentence
    worse = dataclasses.replace(same, metrics={**same.metrics, "pr_auc": same.metrics["pr_auc"] - 0.1})
    lost, sentence = versus_production(worse, "pr_auc", ">=", str(store), "pm", inputs, production_metrics)
    assert not lost.gate["passed"] and "does NOT beat production" in sentence
    check = lost.gate["checks"][-1]
    assert check["threshold"] == pytest.approx(same.metrics["pr_auc"], abs=1e-6) and not check["passed"]
    assert np.isfinite(check["value"])
