"""KFP wrapper for train: typed inputs and outputs only; the logic is ``shopfloor.components.train.train``."""

from typing import Optional

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from shopfloor.components._image import IMAGE

__all__ = ["train"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(
    data: Input[Dataset],
    hyperparameters: dict,
    family: str,
    data_schema: dict,
    split: dict,
    gate: dict,
    edge: dict,
    model: Output[Model],
    history: Output[Artifact],
    training_metrics: Output[Metrics],
    searched: Optional[Input[Artifact]] = None,  # noqa: UP045 - KFP reads optional inputs from typing.Optional
):
    """Train the model family's Keras model on the labelled data; save .keras, SavedModel and history.

    Args:
        data: the labelled data artifact of the family (labelled windows, or the labelled image manifest).
        hyperparameters: the family's model config as given (the ``hyperparameters`` section).
        family: the model family's registry key (predictive-maintenance, anomaly-detection, visual-inspection or
            one a plugin registered).
        data_schema: the data section without locations (the image schema for images; {} where unused).
        split: how images are split (``ImageSplitConfig``; {} for windows, which the label step split).
        gate: the quality gate; image models take their defect threshold's target recall from it.
        edge: the TFLite export of image models (``TfliteConfig``; {} for others).
        model: folder with model.keras, saved_model/, shopfloor_model.json and what the family adds (edge/).
        history: per-epoch losses and metrics as JSON.
        training_metrics: final training and validation losses, and what the family adds (threshold, sizes).
        searched: JSON of the model config the search chose, which replaces ``hyperparameters``; absent when the
            pipeline has no search stage.
    """
    from shopfloor.common.storage import read_json
    from shopfloor.components.train.train import run_train
    from shopfloor.families.base import StepInputs

    inputs = StepInputs(data_schema=data_schema, split=split, gate=gate, edge=edge)
    chosen = read_json(searched.path) if searched is not None else hyperparameters
    trained = run_train(family, data.path, chosen, inputs, model.path, history.path)
    model.metadata.update(trained.metadata)
    for name, value in sorted(trained.metrics.items()):
        training_metrics.log_metric(name, round(value, 6))
