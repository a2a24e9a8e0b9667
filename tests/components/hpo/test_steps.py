"""The search's three steps as the KFP wrappers call them: real keras-tuner spaces, real Keras, a SQLite study."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfloor.common.errors import ConfigError
from shopfloor.components.hpo.steps import run_hpo_select, run_hpo_setup, run_hpo_worker
from shopfloor.contracts.windows import write_windows
from shopfloor.families.predictive_maintenance.config import ModelConfig

MODEL = ModelConfig(epochs=1, hidden_units=[8], conv_filters=4).model_dump()


@pytest.fixture(scope="module")
def windows_path(trained_windows, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("hpo") / "windows"
    write_windows(trained_windows, str(path))
    return str(path)


def test_a_disabled_search_passes_the_model_section_through(windows_path: str) -> None:
    hpo = {"enabled": False}
    name = run_hpo_setup(hpo, windows_path, MODEL, {}, {})
    assert name == ""
    assert run_hpo_worker(name, hpo, windows_path, MODEL, {}, {}, worker=0) == 0
    chosen = run_hpo_select(name, hpo, windows_path, MODEL, {}, {}, "pm")
    assert chosen.hyperparameters == MODEL and chosen.metrics == {"trials": 0}
    assert "search disabled" in chosen.report


def test_a_search_creates_a_study_runs_its_trials_and_selects_a_full_config(windows_path: str, tmp_path: Path) -> None:
    hpo = {"enabled": True, "trials": 2, "max_epochs": 1, "storage": f"sqlite:///{tmp_path / 'studies.db'}"}
    name = run_hpo_setup(hpo, windows_path, MODEL, {}, {})
    assert name.startswith("predictive-maintenance-")
    assert run_hpo_worker(name, hpo, windows_path, MODEL, {}, {}, worker=0) == 2
    chosen = run_hpo_select(name, hpo, windows_path, MODEL, {}, {}, "pm")
    assert set(chosen.hyperparameters) == set(MODEL), "a whole model section for the train step"
    assert chosen.metrics["trials_complete"] == 2 and 0 <= chosen.metrics["best_val_failure_pr_auc"] <= 1
    assert chosen.metadata["study"] == name and "<html>" in chosen.report.lower()


def test_a_bad_search_section_is_one_line_before_any_study(windows_path: str) -> None:
    with pytest.raises(ConfigError, match="pipeline parameter hpo: trials") as raised:
        run_hpo_setup({"enabled": True, "trials": 0}, windows_path, MODEL, {}, {})
    assert "\n" not in str(raised.value)


def test_a_search_the_data_cannot_score_trains_the_configured_model_unless_required(anomaly_windows, tmp_path) -> None:
    # before: anomaly detection without anomalies in the validation period refused the run's default search
    import dataclasses

    import numpy as np

    from shopfloor.common.errors import SearchNotPossible
    from shopfloor.contracts.windows import SPLITS
    from shopfloor.families.anomaly_detection.config import AutoencoderConfig

    in_validation = anomaly_windows.split == SPLITS.index("validation")
    quiet = dataclasses.replace(anomaly_windows, failure=np.where(in_validation, 0, anomaly_windows.failure))
    path = str(tmp_path / "windows")
    write_windows(quiet, path)
    model = AutoencoderConfig(epochs=1).model_dump()
    hpo = {"builder": "anomaly-detection", "storage": f"sqlite:///{tmp_path / 'studies.db'}"}
    assert run_hpo_setup(hpo, path, model, {}, {}) == "", "no study: the configured model trains"
    assert run_hpo_select("", hpo, path, model, {}, {}, "ad").hyperparameters == model
    with pytest.raises(SearchNotPossible, match=r"hpo: the validation part holds 0 abnormal"):
        run_hpo_setup({**hpo, "required": True}, path, model, {}, {})
