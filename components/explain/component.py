"""KFP wrapper for explain: typed inputs and outputs only; the logic is ``shopfloor.components.explain.explain``."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Model, Output

from shopfloor.components._image import IMAGE

__all__ = ["explain"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def explain(
    data: Input[Dataset],
    model: Input[Model],
    family: str,
    model_name: str,
    data_schema: dict,
    split: dict,
    gate: dict,
    model_store_uri: str,
    report: Output[HTML],
    summary: Output[Markdown],
    importance: Output[Metrics],
    sample_size: int = 256,
):
    """Explain what drives the model's score on held-out data, as the model family does it.

    Args:
        data: the labelled data artifact the model was trained on (its test split is explained).
        model: the trained model folder.
        family: the model family's registry key, as given to train.
        model_name: name shown in the report; with the model store, where operators' feedback is found.
        data_schema: the data section without locations (the image schema for images; {} where unused).
        split: how images are split, the same as training's ({} for windows).
        gate: the family's quality gate (predictive maintenance takes its decision threshold from it).
        model_store_uri: the model store, whose ``<model_name>/feedback/`` holds operators' verdicts.
        report: HTML with the family's explanation (importance chart, per-case heatmaps or error tables).
        summary: Markdown for the dashboard (inputs ranked by importance, or the cases shown).
        importance: what drives the score overall, per input (sensor); none for per-image explanations.
        sample_size: at most how many held-out windows a sampling explanation (integrated gradients) explains.
    """
    from shopfloor.components.explain.explain import ExplanationPaths, run_explain
    from shopfloor.families.base import ExplainRequest, StepInputs

    found = run_explain(
        family,
        data.path,
        model.path,
        StepInputs(data_schema=data_schema, split=split, gate=gate),
        ExplainRequest(model_name=model_name, model_store_uri=model_store_uri, sample_size=int(sample_size)),
        ExplanationPaths(report=report.path, summary=summary.path),
    )
    for name, value in found.items():
        importance.log_metric(name, value)
