"""Evaluation logic: score the held-out data, apply the quality gate, beat production, and write the verdict.

The same for every model family: the family scores a model and renders its results; this step reads the
artifacts, scores the new model and the one in production (champion/challenger) on the same data, and writes the
report, summary, model card and blessing. The blessing (the gate's verdict, test metrics and a sample of test
scores) gates publishing and is monitoring's reference.
"""

from __future__ import annotations

import dataclasses

from shopfloor.common.progress import report_progress
from shopfloor.common.storage import atomic_write_bytes, read_json, write_json
from shopfloor.components.evaluate.champion import versus_production
from shopfloor.contracts.model_artifact import blessing_record, load_model_info, model_version
from shopfloor.families.base import ModelRecord, StepInputs
from shopfloor.families.classical import as_engine, load_engine, other_engines
from shopfloor.families.registry import family

__all__ = ["EvaluationPaths", "Verdict", "run_evaluate"]


@dataclasses.dataclass(frozen=True)
class EvaluationPaths:
    """Where the step's file outputs go."""

    report: str
    summary: str
    model_card: str
    blessing: str


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What the dashboard shows of an evaluation besides the files: the gate, metrics and curves."""

    passed: bool
    model_version: str
    metrics: dict[str, float]
    roc: dict[str, list[float]] | None
    confusion_matrix: list[list[int]]
    confusion_labels: list[str]


def run_evaluate(
    family_key: str,
    data_path: str,
    model_dir: str,
    history_path: str,
    profile_path: str,
    model_name: str,
    inputs: StepInputs,
    model_store_uri: str,
    outputs: EvaluationPaths,
) -> Verdict:
    """Evaluate a trained model against the gate and production; write report, summary, card and blessing."""
    chosen = family(family_key)
    data = chosen.load_evaluation_data(data_path, inputs)
    model_info = load_model_info(model_dir)
    result = chosen.evaluate(chosen.load_model(model_dir), model_info, data, inputs)
    alternatives = {  # the engines trained beside it, on the same test split, for the report
        engine: chosen.evaluate(load_engine(model_dir, engine), as_engine(model_info, engine), data, inputs).metrics
        for engine in other_engines(model_info)
    }
    metric, better = chosen.champion_metric(result)
    result, compared = versus_production(
        result,
        metric,
        better,
        model_store_uri,
        model_name,
        chosen.comparable_inputs(model_info, data),
        lambda champion: chosen.evaluate(champion.model, champion.info, data, inputs).metrics,
        chosen.load_model,
        by_site=(model_info.get("fleet") or {}).get("strategy", "global") != "global",
    )
    report_progress(compared)
    version = model_version(model_dir)
    record = ModelRecord(
        model_name, version, model_info, read_json(history_path), read_json(profile_path), alternatives
    )
    rendered = chosen.render(result, record, data)
    atomic_write_bytes(outputs.report, rendered.report.encode())
    atomic_write_bytes(outputs.summary, rendered.summary.encode())
    atomic_write_bytes(outputs.model_card, rendered.model_card.encode())
    write_json(outputs.blessing, blessing_record(result.gate, version, chosen.reference_scores(result), result.metrics))
    passed = bool(result.gate["passed"])
    report_progress(f"{chosen.progress_line(result)}; quality gate {'passed' if passed else 'FAILED'}")
    return Verdict(
        passed=passed,
        model_version=version,
        metrics=dict(result.metrics),
        roc=result.roc,
        confusion_matrix=result.confusion_matrix,
        confusion_labels=chosen.confusion_labels(result),
    )
