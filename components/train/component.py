"""KFP wrappers for the train steps: typed inputs and outputs only; the training is each model family's."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from shopfloor.components._image import IMAGE

__all__ = ["train", "train_anomaly_detector", "train_inspector"]


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

    from shopfloor.common.config import ModelConfig, validated
    from shopfloor.common.storage import read_json, write_json
    from shopfloor.contracts.model_artifact import write_model
    from shopfloor.contracts.windows import load_windows
    from shopfloor.families.predictive_maintenance.model import train_model

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


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train_anomaly_detector(
    windows: Input[Dataset],
    hyperparameters: Input[Artifact],
    model: Output[Model],
    history: Output[Artifact],
    training_metrics: Output[Metrics],
):
    """Train the window autoencoder on normal operation and choose its alarm threshold on validation data.

    Args:
        windows: windows labelled normal/abnormal from label-anomalies.
        hyperparameters: JSON of the autoencoder config (``AutoencoderConfig``: conv_filters, kernel_size,
            latent_units, learning_rate, epochs, patience, batch_size, threshold, threshold_percentile, seed), as the
            search step chose it.
        model: folder with model.keras, saved_model/ and shopfloor_model.json (with the threshold).
        history: per-epoch reconstruction errors as JSON.
        training_metrics: final errors and the threshold.
    """
    import hashlib
    from pathlib import Path

    from shopfloor.common.config import AutoencoderConfig, validated
    from shopfloor.common.storage import read_json, write_json
    from shopfloor.contracts.model_artifact import write_model
    from shopfloor.contracts.windows import load_windows
    from shopfloor.families.anomaly_detection.model import train_autoencoder

    config = validated(AutoencoderConfig, read_json(hyperparameters.path), "hyperparameters artifact")
    data_sha256 = hashlib.sha256(Path(windows.path, "windows.npz").read_bytes()).hexdigest()
    result = train_autoencoder(load_windows(windows.path), config, data_sha256)
    write_model(result, model.path)
    write_json(history.path, result.history)
    model.metadata.update(
        {
            "framework": "keras",
            "model_type": "anomaly-detection",
            "threshold": result.info["threshold"]["value"],
            "features": result.info["features"],
            "window": result.info["window"],
        }
    )
    for name, values in sorted(result.history.items()):
        training_metrics.log_metric(f"final_{name}", round(values[-1], 6))
    training_metrics.log_metric("threshold", round(result.info["threshold"]["value"], 6))


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train_inspector(
    labelled: Input[Dataset],
    image_schema: dict,
    split: dict,
    hyperparameters: Input[Artifact],
    gate: dict,
    edge: dict,
    model: Output[Model],
    history: Output[Artifact],
    training_metrics: Output[Metrics],
):
    """Train the part-inspection CNN, choose its defect threshold, and export it for edge PCs (TFLite).

    Args:
        labelled: the image manifest with resolved labels.
        image_schema: classes, ok_class, image_size, color_mode (``ImageDataConfig``).
        split: test_fraction, validation_fraction, seed (``ImageSplitConfig``): stratified by content hash.
        hyperparameters: JSON of the CNN config (``CnnConfig``), as the search step chose it.
        gate: the gate (``VisionGateConfig``); its target_defect_recall sets the threshold on validation data.
        edge: quantize, representative_images, max_accuracy_drop (``TfliteConfig``).
        model: folder with model.keras, saved_model/, shopfloor_model.json and edge/ (float32 and int8 .tflite
            with tflite.json: size and test accuracy of each next to the Keras model).
        history: per-epoch losses and accuracies as JSON.
        training_metrics: final losses, the threshold, and the edge variants' sizes and accuracies.
    """
    from shopfloor.common.config import validated
    from shopfloor.common.progress import report_progress
    from shopfloor.common.storage import join_uri, read_json, write_json
    from shopfloor.common.vision_config import (
        CnnConfig,
        ImageDataConfig,
        ImageSplitConfig,
        TfliteConfig,
        VisionGateConfig,
    )
    from shopfloor.contracts.images import load_image_set
    from shopfloor.contracts.model_artifact import write_model
    from shopfloor.families.visual_inspection.model import train_vision_model
    from shopfloor.families.visual_inspection.tflite import export_tflite, write_tflite

    data = validated(ImageDataConfig, image_schema, "pipeline parameter image_schema")
    images = load_image_set(labelled.path, data, validated(ImageSplitConfig, split, "pipeline parameter split"))
    target = validated(VisionGateConfig, gate, "pipeline parameter gate").target_defect_recall
    config = validated(CnnConfig, read_json(hyperparameters.path), "hyperparameters artifact")
    result = train_vision_model(images, config, target_defect_recall=target, data_sha256=images.content_sha256)
    threshold = result.info["threshold"]["value"]
    exported = export_tflite(result.model, images, threshold, validated(TfliteConfig, edge, "pipeline parameter edge"))
    result.info["edge"] = exported.info
    write_model(result, model.path)
    write_tflite(exported, join_uri(model.path, "edge"))
    write_json(history.path, result.history)
    model.metadata.update({"framework": "keras", "model_type": "visual-inspection", "classes": data.classes})
    for name, values in sorted(result.history.items()):
        training_metrics.log_metric(f"final_{name}", round(values[-1], 6))
    training_metrics.log_metric("threshold", round(threshold, 6))
    for variant, record in exported.info["variants"].items():
        training_metrics.log_metric(f"{variant}_bytes", record["bytes"])
        training_metrics.log_metric(f"{variant}_accuracy", round(record["accuracy"], 4))
        report_progress(f"edge {variant}: {record['bytes']:,} bytes, test accuracy {record['accuracy']:.3f}")
