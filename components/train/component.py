"""KFP wrapper for train: typed inputs and outputs only; the logic is ``components.train.trainer``."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components._image import IMAGE

__all__ = ["train"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(
    windows: Input[Dataset],
    hyperparameters: Input[Artifact],
    model: Output[Model],
    history: Output[Artifact],
    training_metrics: Output[Metrics],
):
    """Train the Keras failure/RUL model on labelled windows; save .keras, SavedModel and history.

    Args:
        windows: labelled windows from the label step.
        hyperparameters: JSON of the model config (``ModelConfig``: hidden_units, conv_filters, kernel_size,
            dropout, learning_rate, epochs, patience, batch_size, seed), as the search step chose it.
        model: folder with model.keras, saved_model/ and shopfloor_model.json.
        history: per-epoch losses and metrics as JSON.
        training_metrics: final training and validation losses.
    """
    import hashlib
    from pathlib import Path

    from components.common.config import ModelConfig, validated
    from components.common.storage import read_json, write_json
    from components.label.labeling import load_windows
    from components.train.trainer import train_model, write_model

    config = validated(ModelConfig, read_json(hyperparameters.path), "hyperparameters artifact")
    data_sha256 = hashlib.sha256(Path(windows.path, "windows.npz").read_bytes()).hexdigest()
    result = train_model(load_windows(windows.path), config, data_sha256)
    write_model(result, model.path)
    write_json(history.path, result.history)
    model.metadata.update(
        {
            "framework": "keras",
            "epochs_run": result.info["epochs_run"],
            "features": result.info["features"],
            "window": result.info["window"],
        }
    )
    for name, values in sorted(result.history.items()):
        training_metrics.log_metric(f"final_{name}", round(values[-1], 6))
