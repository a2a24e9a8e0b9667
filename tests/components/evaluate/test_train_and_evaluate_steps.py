"""The train and evaluate steps' plain functions, as the KFP wrappers call them: real Keras on the small plant."""

import json
from pathlib import Path

import pytest

from shopfloor.common.errors import ConfigError
from shopfloor.components.evaluate.evaluate import EvaluationPaths, run_evaluate
from shopfloor.components.train.train import run_train
from shopfloor.contracts.model_artifact import load_model_info
from shopfloor.contracts.windows import write_windows
from shopfloor.families.base import StepInputs
from shopfloor.families.predictive_maintenance.config import GateConfig, ModelConfig

HYPERPARAMETERS = ModelConfig(epochs=2, hidden_units=[16], conv_filters=8).model_dump()


@pytest.fixture(scope="module")
def trained_step(trained_windows, small_ingested, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A windows artifact, a profile, and the model the train step made of them."""
    work = tmp_path_factory.mktemp("steps")
    write_windows(trained_windows, str(work / "windows"))
    (work / "profile.json").write_text(json.dumps(small_ingested.profile))
    run_train(
        "predictive-maintenance",
        str(work / "windows"),
        HYPERPARAMETERS,
        StepInputs(),
        str(work / "model"),
        str(work / "history.json"),
    )
    return work


def _evaluate(work: Path, gate: GateConfig, store: Path, out: Path):
    out.mkdir()
    paths = EvaluationPaths(*(str(out / name) for name in ("report.html", "summary.md", "card.md", "blessing.json")))
    verdict = run_evaluate(
        "predictive-maintenance",
        str(work / "windows"),
        str(work / "model"),
        str(work / "history.json"),
        str(work / "profile.json"),
        "pm",
        StepInputs(gate=gate.model_dump()),
        str(store),
        paths,
    )
    return verdict, paths


def test_train_writes_the_model_folder_with_its_family_and_the_history(trained_step: Path) -> None:
    assert load_model_info(trained_step / "model")["model_type"] == "predictive-maintenance"
    history = json.loads((trained_step / "history.json").read_text())
    assert len(history["loss"]) >= 1


def test_a_lenient_gate_blesses_and_every_output_is_written(trained_step: Path, tmp_path: Path) -> None:
    lenient = GateConfig(min_roc_auc=0.0, min_pr_auc=0.0, max_rul_mae_hours=1e6)
    verdict, paths = _evaluate(trained_step, lenient, tmp_path / "store", tmp_path / "out")
    assert verdict.passed is True
    assert verdict.model_version.startswith("v-")
    assert verdict.confusion_labels == ["ok", "fails"] and verdict.roc is not None
    blessing = json.loads(Path(paths.blessing).read_text())
    assert blessing["blessed"] is True and blessing["model_version"] == verdict.model_version
    assert "quality gate passed" in Path(paths.summary).read_text()
    assert Path(paths.report).read_text().startswith("<!doctype html>")
    assert verdict.model_version in Path(paths.model_card).read_text()


def test_a_gate_the_model_misses_fails_and_says_which_check(trained_step: Path, tmp_path: Path) -> None:
    strict = GateConfig(min_roc_auc=0.0, min_pr_auc=0.0, max_rul_mae_hours=1e-6)
    verdict, paths = _evaluate(trained_step, strict, tmp_path / "store", tmp_path / "out")
    assert verdict.passed is False
    blessing = json.loads(Path(paths.blessing).read_text())
    failed = [check["metric"] for check in blessing["gate"]["checks"] if not check["passed"]]
    assert failed == ["rul_mae_hours"]


def test_an_unknown_family_is_one_line_naming_the_known_ones(trained_step: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown family 'forecast'.*predictive-maintenance") as raised:
        run_train("forecast", str(trained_step / "windows"), {}, StepInputs(), str(tmp_path / "m"), str(tmp_path / "h"))
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "m").exists() and not (tmp_path / "h").exists()


def test_the_evaluate_step_publishes_a_failed_gate_to_the_plants_channel(trained_step: Path, tmp_path: Path) -> None:
    """The step as KFP runs it (its wrapper body), with `monitor.alerts` a real webhook: one gate-failed event."""
    from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Markdown, Metrics, Model

    from shopfloor.components.deploy.local_target import free_port
    from shopfloor.components.evaluate.component import evaluate
    from tests.common.test_alerts import WebhookServer

    def out(kind, name: str, uri: Path | None = None):
        return kind(name=name, uri=str(uri or tmp_path / name), metadata={})

    webhook = WebhookServer(free_port())
    webhook.start()
    try:
        strict = GateConfig(min_roc_auc=0.0, min_pr_auc=0.0, max_rul_mae_hours=1e-6)
        alerts = {"kind": "webhook", "url": f"http://127.0.0.1:{webhook.port}/hook", "outbox": str(tmp_path / "ob")}
        passed = evaluate.python_func(
            data=out(Dataset, "windows", trained_step / "windows"),
            model=out(Model, "model", trained_step / "model"),
            history=out(Artifact, "history", trained_step / "history.json"),
            profile=out(Artifact, "profile", trained_step / "profile.json"),
            family="predictive-maintenance",
            model_name="pm",
            data_schema={},
            split={},
            gate=strict.model_dump(),
            model_store_uri=str(tmp_path / "store"),
            metrics=out(Metrics, "metrics"),
            classification_metrics=out(ClassificationMetrics, "classification"),
            report=out(HTML, "report"),
            summary=out(Markdown, "summary"),
            model_card=out(Markdown, "card"),
            blessing=out(Artifact, "blessing"),
            alerts=alerts,
        )
    finally:
        webhook.stop()
    assert passed is False
    (event,) = [json.loads(body) for body in webhook.received()]
    assert event["type"] == "gate-failed" and event["model"] == "pm" and "rul_mae_hours" in event["summary"]
