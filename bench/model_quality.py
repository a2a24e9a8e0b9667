"""Is the shipped model ever worse than a simple one? The network, its classical challenger and the shipped choice.

For each data set, in one run on the same split, the family's network and its classical challenger are fitted
as the train step fits them, the better on validation is what ships, and all three are measured on the held-out
test part: PR-AUC (the headline: failures and anomalies are rare), ROC-AUC, F1 at each engine's own alarm
threshold (chosen on validation), fitting seconds and inference latency per window (batch of 256, median of
repeats).

    python bench/model_quality.py [--short]

Data sets: predictive maintenance (window network vs LightGBM on window statistics) on the demo plant (the
default `shopfloor run` data) and on a smaller fleet of the same generator (the small-data case); anomaly
detection (autoencoder vs PCA reconstruction) on the demo plant and on the real MIT-BIH ECG that sktime ships;
visual inspection (CNN vs LightGBM on coarse gray pixels) on the demo parts and on the real digit scans that
scikit-learn ships (the tests' real data sets). No package the tests use ships run-to-failure data.
``--short`` runs small data sets for one epoch.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml


def latency_ms(model, x: np.ndarray, repeats: int) -> float:
    """Median milliseconds per window to score a batch of up to 256 windows (after one warm-up call)."""
    batch = x[:256]
    model.predict(batch, verbose=0)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict(batch, verbose=0)
        times.append((time.perf_counter() - started) * 1000 / len(batch))
    return statistics.median(times)


def ingested_plant(plant, config):
    """A demo plant written to a scratch folder and ingested with ``config``'s data section."""
    from shopfloor.components.ingest.ingest import ingest
    from shopfloor.demo.plant import write_plant_data

    with tempfile.TemporaryDirectory() as scratch:
        write_plant_data(Path(scratch), plant)
        config = config.resolve_data(Path(scratch))
        return ingest(config.data.sensors, config.data.events, config.data)


def measured(name: str, engines: dict, choice, seconds: dict, score, x, labels, repeats: int) -> list[tuple]:
    """Each engine's and the shipped choice's test metrics at its own threshold, fit seconds and latency.

    ``score(model, x)`` is the family's score (failure probability, anomaly score, defect score); ``labels`` the
    test part's positives (failures, anomalies, defective parts).
    """
    from shopfloor.families.anomaly_detection.evaluation import anomaly_metrics

    rows = []
    for engine, model in engines.items():
        found = anomaly_metrics(labels, score(model, x), choice.thresholds[engine]["value"])
        found.update(
            validation_pr_auc=choice.validation[engine],
            fit_s=seconds[engine],
            ms_per_window=latency_ms(model, x, repeats),
        )
        rows.append((name, engine, found))
    shipped = next(found for _, engine, found in rows if engine == choice.chosen)
    rows.append((name, f"shipped ({choice.chosen})", shipped))
    return rows


def maintenance(name: str, plant, model_config, repeats: int) -> list[tuple]:
    """The window network and LightGBM as the predictive-maintenance train step fits them."""
    from shopfloor.families.predictive_maintenance.config import GateConfig, PredictiveMaintenanceConfig
    from shopfloor.families.predictive_maintenance.evaluation import predict
    from shopfloor.families.predictive_maintenance.family import train_engines
    from shopfloor.families.predictive_maintenance.labelling import label_windows

    config = PredictiveMaintenanceConfig()
    ingested = ingested_plant(plant, config)
    windows = label_windows(ingested.sensors, ingested.events, ingested.features, ["failure"], config.labeling)
    trained = train_engines(windows, model_config, GateConfig())
    test = windows.part("test")
    scores = lambda model, x: predict(model, x)[0]  # noqa: E731
    return measured(name, trained.engines, trained.choice, trained.seconds, scores, test.x, test.failure, repeats)


def detection(name: str, windows, model_config, repeats: int) -> list[tuple]:
    """The autoencoder and the PCA detector as the anomaly-detection train step fits them."""
    from shopfloor.families.anomaly_detection.family import challenge_autoencoder
    from shopfloor.families.anomaly_detection.model import anomaly_scores, normal_windows, train_autoencoder
    from shopfloor.families.classical import ENGINE_NETWORK, ENGINE_PCA, fit_pca_detector

    started = time.perf_counter()
    result = train_autoencoder(windows, model_config)
    seconds = {ENGINE_NETWORK: time.perf_counter() - started}
    started = time.perf_counter()
    normal = normal_windows(windows)
    fit_pca_detector(normal.train, normal.mean, normal.std, windows.features)  # timed alone; the same fit follows
    seconds[ENGINE_PCA] = time.perf_counter() - started
    choice, detector = challenge_autoencoder(result, windows, model_config)
    engines = {ENGINE_NETWORK: result.model, ENGINE_PCA: detector}
    test = windows.part("test")
    return measured(name, engines, choice, seconds, anomaly_scores, test.x, test.failure, repeats)


def demo_detection(name: str, plant, model_config, repeats: int) -> list[tuple]:
    """Anomaly detection on a demo plant (windows before failures are abnormal)."""
    from shopfloor.families.anomaly_detection.config import AnomalyDetectionConfig
    from shopfloor.families.anomaly_detection.labelling import label_anomaly_windows

    config = AnomalyDetectionConfig()
    ingested = ingested_plant(plant, config)
    windows = label_anomaly_windows(ingested.sensors, ingested.events, ingested.features, ["failure"], config.labeling)
    return detection(name, windows, model_config or config.model, repeats)


def ecg_detection(name: str, model_config, repeats: int) -> list[tuple]:
    """Anomaly detection on the real ECG sktime ships, with its own config (as the tests run it)."""
    from shopfloor.components.ingest.ingest import ingest
    from shopfloor.demo.real_sensors import write_ecg_plant_layout
    from shopfloor.families.anomaly_detection.labelling import label_anomaly_windows
    from shopfloor.families.scenarios import load_config

    with tempfile.TemporaryDirectory() as scratch:
        paths = write_ecg_plant_layout(Path(scratch))
        config = load_config(paths["config"]).resolve_data(Path(scratch))
        data = ingest(config.data.sensors, config.data.events, config.data)
    windows = label_anomaly_windows(
        data.sensors, data.events, data.features, config.data.failure_values, config.labeling
    )
    return detection(name, windows, model_config or config.model, repeats)


def inspection(name: str, images, cnn_config, repeats: int) -> list[tuple]:
    """The CNN and the trees on coarse pixels as the visual-inspection train step fits them (target recall 0.95)."""
    from shopfloor.families.classical import ENGINE_LIGHTGBM_IMAGES, ENGINE_NETWORK
    from shopfloor.families.visual_inspection.family import challenge_cnn
    from shopfloor.families.visual_inspection.inference import defect_scores
    from shopfloor.families.visual_inspection.model import predict_probabilities, train_vision_model

    started = time.perf_counter()
    result = train_vision_model(images, cnn_config, target_defect_recall=0.95)
    seconds = {ENGINE_NETWORK: time.perf_counter() - started}
    started = time.perf_counter()
    choice, trees = challenge_cnn(result.model, images, 0.95, cnn_config.seed)  # fits the trees, then chooses
    seconds[ENGINE_LIGHTGBM_IMAGES] = time.perf_counter() - started
    test = images.part("test")
    engines = {ENGINE_NETWORK: result.model, ENGINE_LIGHTGBM_IMAGES: trees}
    score = lambda model, x: defect_scores(predict_probabilities(model, x), images.ok_index)  # noqa: E731
    return measured(name, engines, choice, seconds, score, test.images, test.is_defect, repeats)


def image_set(write, config_text: str | None = None):
    """An image set written by ``write(folder)`` and loaded as the pipeline loads it (with its config, if any)."""
    from shopfloor.common.vision_config import ImageDataConfig, ImageSplitConfig
    from shopfloor.components.ingest.images import ingest_images
    from shopfloor.contracts.images import load_image_set
    from shopfloor.families.visual_inspection.config import CnnConfig

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write(root)
        section = yaml.safe_load(config_text) if config_text else {}
        data = ImageDataConfig(**section.get("data", {}))
        images = load_image_set(ingest_images(str(root), data).manifest, data, ImageSplitConfig(), root=str(root))
        return images, CnnConfig(**section.get("model", {}))


def print_table(rows: list[tuple[str, str, dict]]) -> None:
    """One line per data set and model, then the shipped-vs-best-classical ratio per data set."""
    columns = ("validation_pr_auc", "pr_auc", "roc_auc", "f1", "fit_s", "ms_per_window")
    print(f"{'data set':<30}{'model':<28}" + "".join(f"{c:>19}" for c in columns))
    for data_set, model, found in rows:
        print(f"{data_set:<30}{model:<28}" + "".join(f"{found.get(c, float('nan')):>19.4f}" for c in columns))
    print()
    for data_set in dict.fromkeys(row[0] for row in rows):
        mine = {model: found for name, model, found in rows if name == data_set}
        shipped = next(found for model, found in mine.items() if model.startswith("shipped"))
        classical = next(found for model, found in mine.items() if model not in ("keras",) and "(" not in model)
        print(
            f"{data_set}: shipped / classical test PR-AUC {shipped['pr_auc'] / classical['pr_auc']:.3f}; "
            f"network / classical test PR-AUC {mine['keras']['pr_auc'] / classical['pr_auc']:.3f}; "
            f"latency network / classical {mine['keras']['ms_per_window'] / classical['ms_per_window']:.2f}"
        )


def main() -> None:
    """Measure every data set and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="one small plant, one epoch: a check that it runs")
    args = parser.parse_args()

    from shopfloor.demo.parts import PartsDataSpec, write_parts_data
    from shopfloor.demo.plant import PlantDataSpec
    from shopfloor.demo.real_images import DIGITS_CONFIG, write_digits_layout
    from shopfloor.families.anomaly_detection.config import AutoencoderConfig
    from shopfloor.families.predictive_maintenance.config import ModelConfig

    if args.short:
        small = PlantDataSpec(sites=2, assets_per_site=3, days=40)
        rows = maintenance("PM small plant (2x3, 40 d)", small, ModelConfig(epochs=1), 3)
        rows += demo_detection("AD small plant (2x3, 40 d)", small, AutoencoderConfig(epochs=1), 3)
        parts, cnn = image_set(lambda root: write_parts_data(root, PartsDataSpec(count=120, defect_share=0.5)))
        rows += inspection("VI small parts (120)", parts, cnn.model_copy(update={"epochs": 1}), 3)
    else:
        rows = maintenance("PM demo plant", PlantDataSpec(), ModelConfig(), 20)
        rows += maintenance(
            "PM small fleet (2x4, 60 d)", PlantDataSpec(sites=2, assets_per_site=4, days=60), ModelConfig(), 20
        )
        rows += demo_detection("AD demo plant", PlantDataSpec(), None, 20)
        rows += ecg_detection("AD real ECG (sktime)", None, 20)
        parts, cnn = image_set(lambda root: write_parts_data(root, PartsDataSpec()))
        rows += inspection("VI demo parts", parts, cnn, 20)
        digits, cnn = image_set(write_digits_layout, DIGITS_CONFIG)
        rows += inspection("VI real digits (sklearn)", digits, cnn, 20)
    print_table(rows)


if __name__ == "__main__":
    main()
