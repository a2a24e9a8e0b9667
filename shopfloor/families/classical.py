"""The classical challengers of the window models: gradient-boosted trees (LightGBM) and PCA reconstruction.

A plant should never get a network that a colleague's ten-line model beats. The train step of a window family
fits this challenger on the same split as the network, and the better of the two on validation is the model that
is evaluated, published and served (``model_info["engine"]``). Both live in the model folder, so the evaluation
can show them side by side on the test split.

LightGBM because it is the maintained gradient-boosting library that needs nothing else (no TensorFlow version
lock like TF Decision Forests, no CUDA stack like XGBoost's wheels), handles missing readings natively (a NaN
goes down the learned side of each split), saves as plain text (no pickle) and computes exact tree SHAP values
(``pred_contrib``), which explain a served answer the same way integrated gradients explain the network's.

Features per sensor: mean, standard deviation, minimum, maximum, last reading, slope (last minus first over the
window) and the share of missing readings. The challenger has no time axis; its attributions are per sensor.

Layout in a model folder (``classical/``): ``failure.txt`` and ``rul.txt`` (LightGBM text models) and
``classical.json`` (features, statistics, RUL cap, library version).

The anomaly detector's challenger is PCA reconstruction of normal windows (``PcaDetector``): the squared
prediction error (SPE) that process monitoring has used for decades, in the autoencoder's units, so it answers
the same score and per-sensor errors; saved as ``classical/pca.npz`` + ``classical.json``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shopfloor.common.attributions import Attributions
from shopfloor.contracts.model_artifact import CLASSICAL_DIR, load_keras_model, load_model_info, resolve_model_dir

if TYPE_CHECKING:
    import lightgbm

    from shopfloor.contracts.images import ImageSet
    from shopfloor.contracts.windows import LabelledWindows

__all__ = [
    "CLASSICAL_DIR",
    "ENGINE_LIGHTGBM",
    "ENGINE_LIGHTGBM_IMAGES",
    "ENGINE_NETWORK",
    "ENGINE_PCA",
    "STATISTICS",
    "BoostedImages",
    "BoostedWindows",
    "EngineChoice",
    "PcaDetector",
    "choose_engine",
    "choose_on_validation",
    "fit_boosted_images",
    "fit_boosted_windows",
    "fit_pca_detector",
    "as_engine",
    "load_engine",
    "other_engines",
    "load_scoring_model",
    "image_features",
    "statistic_names",
    "window_statistics",
]

ENGINE_NETWORK = "keras"
ENGINE_LIGHTGBM = "lightgbm"
ENGINE_PCA = "pca"
ENGINE_LIGHTGBM_IMAGES = "lightgbm-images"
STATISTICS = ("mean", "std", "min", "max", "last", "slope", "missing")
_INFO = "classical.json"
# Small trees, shrinkage and subsampling: sound on a few hundred windows as on a fleet's; early stopping on the
# validation split picks the number of trees, so the same defaults hold from small to large data.
_PARAMETERS = {
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
    "verbose": -1,
}
_ROUNDS = 600
_PATIENCE = 50


def window_statistics(x: np.ndarray) -> np.ndarray:
    """Per-window statistics of each sensor, [n, features * len(STATISTICS)], sensor-major (NaN where all missing)."""
    x = np.asarray(x, dtype=np.float32)
    n, window, features = x.shape
    with warnings.catch_warnings():  # an all-missing sensor in a window gives NaN, which the trees handle
        warnings.simplefilter("ignore", RuntimeWarning)
        first = _first_present(x)
        last = _first_present(x[:, ::-1])
        columns = [
            np.nanmean(x, axis=1),
            np.nanstd(x, axis=1),
            np.nanmin(x, axis=1),
            np.nanmax(x, axis=1),
            last,
            (last - first) / max(window - 1, 1),
            np.isnan(x).mean(axis=1),
        ]
    return np.stack(columns, axis=2).reshape(n, features * len(STATISTICS)).astype(np.float32)


def _first_present(x: np.ndarray) -> np.ndarray:
    """Each window's first present reading per sensor, [n, features] (NaN where none is)."""
    present = ~np.isnan(x)
    index = present.argmax(axis=1)
    found = np.take_along_axis(x, index[:, None, :], axis=1)[:, 0, :]
    return np.where(present.any(axis=1), found, np.nan)


def statistic_names(features: list[str]) -> list[str]:
    """Column names of ``window_statistics``: ``sensor__statistic`` (characters LightGBM refuses become ``_``)."""
    return [
        re.sub(r'[",:\[\]{}\s]', "_", f"{feature}__{statistic}") for feature in features for statistic in STATISTICS
    ]


@dataclasses.dataclass(frozen=True)
class BoostedWindows:
    """Failure probability and remaining useful life from window statistics, answering as the network does.

    Called like the Keras model (``model(x)`` and ``model.predict(x)`` return ``{"failure": [n, 1], "rul": [n,
    1]}``), so evaluation, explanation and the server score either engine with the same code.
    """

    failure: lightgbm.Booster
    rul: lightgbm.Booster
    features: list[str]
    rul_cap_hours: float

    def __call__(self, x: Any, training: bool = False) -> dict[str, np.ndarray]:
        """Both outputs for a batch of windows."""
        statistics = window_statistics(np.asarray(x))
        failure = np.asarray(self.failure.predict(statistics, num_threads=1))
        rul = np.clip(np.asarray(self.rul.predict(statistics, num_threads=1)), 0.0, self.rul_cap_hours)
        return {"failure": failure.reshape(-1, 1).astype(np.float32), "rul": rul.reshape(-1, 1).astype(np.float32)}

    def predict(self, x: Any, batch_size: int | None = None, verbose: int = 0) -> dict[str, np.ndarray]:
        """Keras' ``predict`` signature; the trees score the whole batch at once."""
        return self(x)

    def attributions(self, x: np.ndarray) -> Attributions:
        """Tree SHAP of the failure probability per sensor, spread evenly over the window (the trees see no time).

        SHAP values are exact in log-odds; they are scaled so each window's sum is its probability minus the
        baseline's (the trees' expected value), as integrated gradients' are.
        """
        x = np.asarray(x, dtype=np.float32)
        n, window, features = x.shape
        contributions = np.asarray(self.failure.predict(window_statistics(x), pred_contrib=True))
        per_statistic, base = contributions[:, :-1], contributions[:, -1]
        per_sensor = per_statistic.reshape(n, features, len(STATISTICS)).sum(axis=2)
        logit = base + per_sensor.sum(axis=1)
        score, baseline_score = _sigmoid(logit), _sigmoid(base)
        total = per_sensor.sum(axis=1)
        scale = np.divide(score - baseline_score, total, out=np.zeros_like(total), where=np.abs(total) > 1e-12)
        spread = (per_sensor * scale[:, None])[:, None, :] / window
        return Attributions(
            values=np.repeat(spread, window, axis=1).astype(np.float32),
            score=score.astype(np.float32),
            baseline_score=baseline_score.astype(np.float32),
        )

    def files(self) -> dict[str, bytes]:
        """The challenger's files, relative to the model folder."""
        info = {
            "features": self.features,
            "statistics": list(STATISTICS),
            "rul_cap_hours": self.rul_cap_hours,
            "trees": {"failure": self.failure.num_trees(), "rul": self.rul.num_trees()},
            "lightgbm": _lightgbm_version(),
        }
        return {
            f"{CLASSICAL_DIR}/failure.txt": self.failure.model_to_string().encode(),
            f"{CLASSICAL_DIR}/rul.txt": self.rul.model_to_string().encode(),
            f"{CLASSICAL_DIR}/{_INFO}": json.dumps(info, indent=2, sort_keys=True).encode(),
        }

    @classmethod
    def load(cls, model_dir: str | Path) -> BoostedWindows:
        """The challenger saved in a model folder (text models: nothing is unpickled)."""
        import lightgbm

        folder = Path(model_dir) / CLASSICAL_DIR
        info = json.loads((folder / _INFO).read_text())
        return cls(
            failure=lightgbm.Booster(model_str=(folder / "failure.txt").read_text()),
            rul=lightgbm.Booster(model_str=(folder / "rul.txt").read_text()),
            features=list(info["features"]),
            rul_cap_hours=float(info["rul_cap_hours"]),
        )


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-z))


def _lightgbm_version() -> str:
    """The installed LightGBM version, recorded with the model."""
    import lightgbm

    return str(lightgbm.__version__)


def fit_boosted_windows(windows: LabelledWindows, seed: int, init: BoostedWindows | None = None) -> BoostedWindows:
    """Fit both boosters on the train split, the number of trees chosen by early stopping on validation.

    Failure: binary log-loss, stopped on validation average precision (failures are rare, as for the network).
    RUL: L1 loss on windows whose RUL is known, stopped on validation MAE. With ``init`` (a fleet's trees, for
    one site's windows) boosting continues from its trees instead of starting from nothing.
    """
    import lightgbm

    train, validation = windows.part("train"), windows.part("validation")
    x_train, x_validation = window_statistics(train.x), window_statistics(validation.x)
    names = statistic_names(windows.features)
    parameters = {**_PARAMETERS, "seed": seed}

    def fit(
        objective: str,
        metric: str,
        fitted: tuple[np.ndarray, np.ndarray],
        checked: tuple[np.ndarray, np.ndarray],
        start: lightgbm.Booster | None = None,
    ):
        data = lightgbm.Dataset(*fitted, feature_name=names, free_raw_data=False)
        return lightgbm.train(
            {**parameters, "objective": objective, "metric": metric},
            data,
            num_boost_round=_ROUNDS,
            valid_sets=[lightgbm.Dataset(*checked, reference=data)],
            callbacks=[lightgbm.early_stopping(_PATIENCE, verbose=False)],
            init_model=start,
        )

    failure = fit(
        "binary",
        "average_precision",
        (x_train, train.failure.astype(np.float32)),
        (x_validation, validation.failure.astype(np.float32)),
        init.failure if init else None,
    )
    cap = float(windows.info["rul_cap_hours"])
    known, known_validation = train.rul >= 0, validation.rul >= 0
    if not known.any():  # no asset of the train split failed: nothing to learn RUL from but the cap
        known = np.ones(train.rul.size, bool)
    fitted = (x_train[known], np.where(train.rul[known] >= 0, np.clip(train.rul[known], 0.0, cap), cap))
    checked = (x_validation[known_validation], validation.rul[known_validation])
    rul = fit("regression_l1", "l1", fitted, checked if known_validation.any() else fitted, init.rul if init else None)
    return BoostedWindows(failure=failure, rul=rul, features=list(windows.features), rul_cap_hours=cap)


def load_engine(model_dir: str | Path, engine: str) -> Any:
    """One engine of a model folder: the Keras network, or the classical challenger beside it."""
    if engine == ENGINE_LIGHTGBM:
        return BoostedWindows.load(resolve_model_dir(model_dir))
    if engine == ENGINE_PCA:
        return PcaDetector.load(resolve_model_dir(model_dir))
    if engine == ENGINE_LIGHTGBM_IMAGES:
        return BoostedImages.load(resolve_model_dir(model_dir))
    return load_keras_model(model_dir)


def load_scoring_model(model_dir: str | Path) -> Any:
    """The model that answers for this folder: the engine training chose (``engine``; Keras when absent)."""
    return load_engine(model_dir, load_model_info(model_dir).get("engine", ENGINE_NETWORK))


@dataclasses.dataclass(frozen=True)
class EngineChoice:
    """Which engine answers and why: each engine's validation score, the metric, and each one's alarm threshold."""

    chosen: str
    metric: str
    validation: dict[str, float]
    thresholds: dict[str, dict]

    def record(self) -> dict:
        """What the model description keeps of the choice (``model_info["challenger"]``)."""
        return {
            "chosen": self.chosen,
            "metric": self.metric,
            "validation": {engine: round(value, 6) for engine, value in self.validation.items()},
            "thresholds": self.thresholds,
        }

    def line(self) -> str:
        """One line for the run's progress: ``validation PR-AUC keras 0.610 vs lightgbm 0.640: lightgbm answers``."""
        scores = " vs ".join(f"{engine} {value:.3f}" for engine, value in self.validation.items())
        return f"{self.metric} {scores}: {self.chosen} answers"


def choose_engine(validation: dict[str, float], metric: str, thresholds: dict[str, dict]) -> EngineChoice:
    """The engine with the best validation score; on a tie (or no score) the first, the network.

    The network keeps a tie because it also has gradients for explanations and a TFLite export for the edge.
    """
    usable = {engine: value for engine, value in validation.items() if np.isfinite(value)}
    chosen = max(usable, key=lambda engine: usable[engine]) if usable else next(iter(validation))
    first = next(iter(validation))
    if first in usable and usable[first] >= usable[chosen]:
        chosen = first
    return EngineChoice(chosen, metric, dict(validation), thresholds)


def other_engines(model_info: dict) -> list[str]:
    """The engines trained beside the one that answers (none for a model without a challenger)."""
    challenger = model_info.get("challenger") or {}
    return [engine for engine in challenger.get("validation", {}) if engine != challenger.get("chosen")]


def as_engine(model_info: dict, engine: str) -> dict:
    """The model description as if ``engine`` answered: its own alarm threshold, chosen on the same validation."""
    thresholds = (model_info.get("challenger") or {}).get("thresholds", {})
    return {**model_info, "engine": engine, "threshold": thresholds.get(engine, model_info.get("threshold"))}


@dataclasses.dataclass(frozen=True)
class PcaDetector:
    """The anomaly detector's classical challenger: PCA reconstruction of standardized windows (process SPE).

    The squared prediction error of a PCA model of normal operation is the classic detector of process monitoring.

    ``model(x)`` returns ``{"score": [n], "feature_errors": [n, features]}``: the mean squared reconstruction error
    of the window and of each sensor in standard units, over present readings only (a missing reading is the
    training mean, as for the autoencoder), so thresholds, explanations and the server work unchanged.
    """

    mean: np.ndarray  # [features]
    std: np.ndarray  # [features]
    center: np.ndarray  # [window * features]: the mean standardized window
    components: np.ndarray  # [k, window * features], orthonormal rows
    features: list[str]

    def __call__(self, x: Any, training: bool = False) -> dict[str, np.ndarray]:
        """The score and per-sensor errors for a batch of windows."""
        x = np.asarray(x, dtype=np.float32)
        n, window, features = x.shape
        present = ~np.isnan(x)
        standardized = np.where(present, (x - self.mean) / self.std, 0.0).reshape(n, -1) - self.center
        reconstructed = (standardized @ self.components.T) @ self.components
        squared = ((standardized - reconstructed) ** 2).reshape(n, window, features) * present
        per_feature = squared.sum(axis=1) / np.maximum(present.sum(axis=1), 1)
        score = squared.sum(axis=(1, 2)) / np.maximum(present.sum(axis=(1, 2)), 1)
        return {"score": score.astype(np.float32), "feature_errors": per_feature.astype(np.float32)}

    def predict(self, x: Any, batch_size: int | None = None, verbose: int = 0) -> dict[str, np.ndarray]:
        """Keras' ``predict`` signature."""
        return self(x)

    def files(self) -> dict[str, bytes]:
        """The detector's files, relative to the model folder (arrays in an ``.npz``, no pickled objects)."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, mean=self.mean, std=self.std, center=self.center, components=self.components)
        info = {"features": self.features, "components": int(self.components.shape[0]), "engine": ENGINE_PCA}
        return {
            f"{CLASSICAL_DIR}/pca.npz": buffer.getvalue(),
            f"{CLASSICAL_DIR}/{_INFO}": json.dumps(info, indent=2, sort_keys=True).encode(),
        }

    @classmethod
    def load(cls, model_dir: str | Path) -> PcaDetector:
        """The detector saved in a model folder."""
        folder = Path(model_dir) / CLASSICAL_DIR
        info = json.loads((folder / _INFO).read_text())
        with np.load(folder / "pca.npz", allow_pickle=False) as arrays:
            return cls(
                **{name: arrays[name] for name in ("mean", "std", "center", "components")}, features=info["features"]
            )


def fit_pca_detector(
    normal_train: np.ndarray, mean: list[float], std: list[float], features: list[str], variance: float = 0.95
) -> PcaDetector:
    """Fit PCA on normal training windows, keeping the components that explain ``variance`` of their variance."""
    x = np.asarray(normal_train, dtype=np.float32)
    mean_array = np.asarray(mean, dtype=np.float32)
    std_array = np.where(np.asarray(std, dtype=np.float32) > 0, np.asarray(std, dtype=np.float32), 1.0)
    flat = np.where(np.isnan(x), 0.0, (x - mean_array) / std_array).reshape(len(x), -1)
    center = flat.mean(axis=0)
    _, singular, rows = np.linalg.svd(flat - center, full_matrices=False)
    explained = np.cumsum(singular**2) / max(float(np.sum(singular**2)), 1e-12)
    keep = int(np.searchsorted(explained, variance) + 1)
    keep = min(keep, max(1, len(x) - 1), rows.shape[0])
    return PcaDetector(mean_array, std_array, center.astype(np.float32), rows[:keep].astype(np.float32), list(features))


def choose_on_validation(
    scores: dict[str, np.ndarray], labels: np.ndarray, threshold: Callable[[np.ndarray], dict]
) -> EngineChoice:
    """Choose between engines by the validation PR-AUC of their scores, each with its threshold from ``threshold``.

    Without both classes among the validation labels there is nothing to choose by: the first engine stays.
    """
    from shopfloor.families.shared import average_precision

    return choose_engine(
        {engine: average_precision(labels, score) for engine, score in scores.items()},
        "validation PR-AUC",
        {engine: threshold(score) for engine, score in scores.items()},
    )


IMAGE_GRID = 16  # an image becomes this many x this many block means (plus its brightness statistics)


def image_features(images: np.ndarray, grid: int = IMAGE_GRID) -> np.ndarray:
    """Gray block means on a ``grid`` x ``grid`` raster (0-1) and the image's mean, std, min and max: [n, grid² + 4].

    Coarse pixels keep where a defect is and how dark it is, which is what a tree can split on; the statistics
    carry lighting. Blocks are equal slices of the image, so any image size maps to the same features. (Defects
    that appear anywhere on parts photographed in varying positions are the CNN's strength, not the trees'.)
    """
    gray = np.asarray(images, dtype=np.float32).mean(axis=-1) / 255.0  # [n, height, width]
    n, height, width = gray.shape
    rows = np.array_split(np.arange(height), grid)
    columns = np.array_split(np.arange(width), grid)
    blocks = np.stack(
        [gray[:, r[0] : r[-1] + 1, c[0] : c[-1] + 1].mean(axis=(1, 2)) for r in rows for c in columns], axis=1
    )
    flat = gray.reshape(n, -1)
    statistics = np.stack([flat.mean(axis=1), flat.std(axis=1), flat.min(axis=1), flat.max(axis=1)], axis=1)
    return np.concatenate([blocks, statistics], axis=1).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class BoostedImages:
    """The inspection CNN's classical challenger: LightGBM over coarse gray pixels, answering as the CNN does.

    ``model.predict(images)`` returns class probabilities [n, classes] for raw images [n, height, width,
    channels] (0-255), so thresholds, evaluation and the server need no other path; ``evidence`` gives a heatmap
    per image from exact tree SHAP, as Grad-CAM does for the CNN.
    """

    booster: lightgbm.Booster
    classes: list[str]
    ok_class: str
    grid: int = IMAGE_GRID

    @property
    def output_shape(self) -> tuple[None, int]:
        """Keras' ``output_shape``: a batch of class probabilities."""
        return (None, len(self.classes))

    def predict(self, images: Any, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        """Class probabilities [n, classes] (Keras' ``predict`` signature)."""
        found = np.asarray(self.booster.predict(image_features(images, self.grid), num_threads=1))
        return found.reshape(len(found), len(self.classes)).astype(np.float32)

    def __call__(self, images: Any, training: bool = False) -> np.ndarray:
        """Class probabilities, as calling the Keras model does."""
        return self.predict(images)

    def evidence(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the trees see a defect: heatmaps [n, height, width] in [0, 1] and the predicted class per image.

        A block's heat is its tree SHAP contribution against "ok" (negative contributions count as none).
        """
        images = np.asarray(images)
        n, height, width = images.shape[:3]
        k = len(self.classes)
        contributions = np.asarray(self.booster.predict(image_features(images, self.grid), pred_contrib=True))
        per_class = contributions.reshape(n, k, -1)
        against_ok = -per_class[:, self.classes.index(self.ok_class), : self.grid * self.grid]
        maps = np.clip(against_ok, 0.0, None).reshape(n, self.grid, self.grid)
        rows = np.array_split(np.arange(height), self.grid)
        columns = np.array_split(np.arange(width), self.grid)
        row_of = np.concatenate([np.full(len(r), i) for i, r in enumerate(rows)])
        column_of = np.concatenate([np.full(len(c), j) for j, c in enumerate(columns)])
        full = maps[:, row_of][:, :, column_of]
        peak = full.reshape(n, -1).max(axis=1).reshape(n, 1, 1)
        heatmaps = np.divide(full, peak, out=np.zeros_like(full), where=peak > 0)
        return heatmaps.astype(np.float32), self.predict(images).argmax(axis=1)

    def files(self) -> dict[str, bytes]:
        """The challenger's files, relative to the model folder (a LightGBM text model: nothing is unpickled)."""
        info = {
            "classes": self.classes,
            "ok_class": self.ok_class,
            "grid": self.grid,
            "trees": self.booster.num_trees(),
            "lightgbm": _lightgbm_version(),
        }
        return {
            f"{CLASSICAL_DIR}/images.txt": self.booster.model_to_string().encode(),
            f"{CLASSICAL_DIR}/{_INFO}": json.dumps(info, indent=2, sort_keys=True).encode(),
        }

    @classmethod
    def load(cls, model_dir: str | Path) -> BoostedImages:
        """The challenger saved in a model folder."""
        import lightgbm

        folder = Path(model_dir) / CLASSICAL_DIR
        info = json.loads((folder / _INFO).read_text())
        booster = lightgbm.Booster(model_str=(folder / "images.txt").read_text())
        return cls(booster, list(info["classes"]), str(info["ok_class"]), int(info["grid"]))


def fit_boosted_images(images: ImageSet, seed: int) -> BoostedImages:
    """Fit multiclass trees on the train split, the number of trees chosen by early stopping on validation.

    Classes are weighted inversely to their frequency (as the CNN's loss is), so rare defects count.
    """
    import lightgbm

    train, validation = images.part("train"), images.part("validation")
    k = len(images.classes)
    counts = np.bincount(train.labels, minlength=k).astype(np.float64)
    weights = (len(train.labels) / (k * np.maximum(counts, 1.0)))[train.labels]
    grid = min(IMAGE_GRID, *images.images.shape[1:3])  # an 8x8 scan is its own 8x8 raster
    data = lightgbm.Dataset(image_features(train.images, grid), train.labels, weight=weights, free_raw_data=False)
    checks = lightgbm.Dataset(image_features(validation.images, grid), validation.labels, reference=data)
    booster = lightgbm.train(
        {**_PARAMETERS, "seed": seed, "objective": "multiclass", "num_class": k, "metric": "multi_logloss"},
        data,
        num_boost_round=_ROUNDS,
        valid_sets=[checks],
        callbacks=[lightgbm.early_stopping(_PATIENCE, verbose=False)],
    )
    return BoostedImages(booster, list(images.classes), images.ok_class, grid)
