"""A fourth model family, registered from outside shopfloor: a logistic classifier on window summaries.

It is what a plant team would write to add a model kind: one class over shopfloor's contracts and shared pieces,
made known by an entry point (group ``shopfloor.families``), with no line changed in shopfloor's steps or pipelines.
Each window of sensor readings is summarized per sensor (mean, spread, last reading); the classifier predicts
whether the asset fails within the labelled horizon.
"""

from __future__ import annotations

import dataclasses
import html
import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd

from shopfloor.common.config import HpoConfig
from shopfloor.common.errors import ConfigError
from shopfloor.common.plots import html_page
from shopfloor.contracts.model_artifact import TrainResult, runtime_versions, write_model
from shopfloor.contracts.windows import LabelledWindows, load_windows
from shopfloor.families.base import (
    Explained,
    ExplainRequest,
    ModelFamily,
    ModelRecord,
    Rendered,
    SensorLabels,
    StepInputs,
    Trained,
)
from shopfloor.families.registry import ModelKind, family
from shopfloor.families.reporting import gate_summary, gate_table_html, render_model_card
from shopfloor.families.search import SearchProblem
from shopfloor.families.shared import final_metrics, roc_points

KEY = "window-features"
TASK = "probability of failure within the labelled horizon, from per-sensor window summaries"


def summarize(x: np.ndarray) -> np.ndarray:
    """Per window and sensor: mean, standard deviation and last reading; missing readings count as 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing sensor in a window
        parts = [np.nanmean(x, axis=1), np.nanstd(x, axis=1), x[:, -1, :]]
    return np.nan_to_num(np.concatenate(parts, axis=1)).astype("float32")


@dataclasses.dataclass(frozen=True)
class WindowFeaturesEvaluation:
    """Test metrics, the gate, the dashboard's curves and the test scores."""

    metrics: dict[str, float]
    gate: dict
    confusion_matrix: list[list[int]]
    roc: dict[str, list[float]] | None
    scores: np.ndarray


class WindowFeatures(ModelFamily[LabelledWindows, WindowFeaturesEvaluation]):
    """Logistic regression on window summaries: a simple model any other family should beat."""

    key = KEY
    data_kind = "windows"
    score_output = "failure_probability"

    def alarm_threshold(self, model_info: dict, blessing: dict) -> float:
        """The gate's decision threshold, as predictive maintenance's (a family may reuse another's)."""
        return family(ModelKind.PREDICTIVE_MAINTENANCE).alarm_threshold(model_info, blessing)

    def label_sensors(
        self,
        sensors: pd.DataFrame,
        events: pd.DataFrame,
        features: list[str],
        failure_values: list[str],
        labeling: dict,
    ) -> SensorLabels:
        """The same labels as predictive maintenance's: fails within the horizon."""
        labels = family(ModelKind.PREDICTIVE_MAINTENANCE)
        return labels.label_sensors(sensors, events, features, failure_values, labeling)

    def train(self, data_path: str, hyperparameters: dict, inputs: StepInputs, model_dir: str) -> Trained:
        """Fit the classifier on the train split; standardization is the model's first layer."""
        import keras

        windows = load_windows(data_path)
        train, validation = windows.part("train"), windows.part("validation")
        x = summarize(train.x)
        scale = keras.layers.Normalization(mean=x.mean(axis=0), variance=x.var(axis=0) + 1e-6)
        features = keras.Input((x.shape[1],), name="summary")
        model = keras.Model(features, keras.layers.Dense(1, activation="sigmoid")(scale(features)))
        model.compile(keras.optimizers.Adam(float(hyperparameters.get("learning_rate", 0.05))), "binary_crossentropy")
        keras.utils.set_random_seed(int(hyperparameters.get("seed", 7)))
        fit = model.fit(
            x,
            train.failure.astype("float32"),
            validation_data=(summarize(validation.x), validation.failure.astype("float32")),
            epochs=int(hyperparameters.get("epochs", 30)),
            batch_size=256,
            verbose=0,
        )
        history = {name: [float(v) for v in values] for name, values in fit.history.items()}
        info = {
            "model_type": KEY,
            "features": windows.features,
            "window": int(windows.info["window"]),
            "hyperparameters": hyperparameters,
            "versions": runtime_versions(),
        }
        write_model(TrainResult(model, history, info), model_dir)
        return Trained(history, {"framework": "keras"}, final_metrics(history))

    def load_evaluation_data(self, data_path: str, inputs: StepInputs) -> LabelledWindows:
        """The labelled windows; their test split is evaluated."""
        return load_windows(data_path)

    def evaluate(
        self, model: Any, model_info: dict, data: LabelledWindows, inputs: StepInputs
    ) -> WindowFeaturesEvaluation:
        """ROC-AUC and PR-AUC of the failure score on the test split, against the gate's min_roc_auc."""
        from sklearn import metrics as skm

        test = data.part("test")
        scores = model.predict(summarize(test.x), verbose=0).ravel()
        threshold = float(inputs.gate.get("decision_threshold", 0.5))
        metrics = {
            "roc_auc": float(skm.roc_auc_score(test.failure, scores)),
            "pr_auc": float(skm.average_precision_score(test.failure, scores)),
        }
        minimum = float(inputs.gate.get("min_roc_auc", 0.5))
        check = {"metric": "roc_auc", "value": round(metrics["roc_auc"], 6), "op": ">=", "threshold": minimum}
        check["passed"] = metrics["roc_auc"] >= minimum
        gate = {"passed": check["passed"], "checks": [check], "decision_threshold": threshold}
        matrix = skm.confusion_matrix(test.failure, (scores >= threshold).astype(int), labels=[0, 1]).tolist()
        return WindowFeaturesEvaluation(metrics, gate, matrix, roc_points(test.failure, scores), scores)

    def comparable_inputs(self, model_info: dict, data: LabelledWindows) -> dict:
        """The same sensors over the same window."""
        return {"features": data.features, "window": int(data.info["window"])}

    def champion_metric(self, result: WindowFeaturesEvaluation) -> tuple[str, Literal[">=", "<="]]:
        """ROC-AUC, higher is better."""
        return "roc_auc", ">="

    def reference_scores(self, result: WindowFeaturesEvaluation) -> np.ndarray:
        """The test windows' failure scores."""
        return result.scores

    def confusion_labels(self, result: WindowFeaturesEvaluation) -> list[str]:
        """Healthy windows, then failing ones."""
        return ["ok", "fails"]

    def render(self, result: WindowFeaturesEvaluation, record: ModelRecord, data: LabelledWindows) -> Rendered:
        """A one-table report, shopfloor's gate summary and model card."""
        heading = f"<h1>{html.escape(record.model_name)} (window features)</h1>"
        body = heading + gate_table_html(result.gate, result.metrics)
        detail = f"ROC-AUC {result.metrics['roc_auc']:.3f} on {len(result.scores)} test windows"
        return Rendered(
            report=html_page(record.model_name, body),
            summary=gate_summary(result.gate, record.model_name, detail),
            model_card=render_model_card(record, data.info, result, TASK),
        )

    def progress_line(self, result: WindowFeaturesEvaluation) -> str:
        """Both ranking metrics."""
        return f"ROC-AUC {result.metrics['roc_auc']:.3f}, PR-AUC {result.metrics['pr_auc']:.3f}"

    def explain(
        self, model: Any, model_info: dict, data_path: str, inputs: StepInputs, request: ExplainRequest
    ) -> Explained:
        """A linear model explains itself: each sensor's importance is the size of its standardized weights."""
        weights = np.abs(np.asarray(model.layers[-1].get_weights()[0]).reshape(3, -1)).sum(axis=0)
        share = weights / weights.sum()
        pairs = zip(model_info["features"], share, strict=True)
        importance = {sensor: round(float(value), 6) for sensor, value in pairs}
        ranked = sorted(importance, key=lambda name: importance[name], reverse=True)
        rows = "".join(f"<tr><td>{html.escape(s)}</td><td>{importance[s]:.1%}</td></tr>" for s in ranked)
        report = html_page(request.model_name, f"<h1>Standardized weights</h1><table>{rows}</table>")
        summary = "\n".join(f"- {sensor}: {importance[sensor]:.1%}" for sensor in ranked) + "\n"
        return Explained(report, summary, importance, f"top sensor: {ranked[0]}")

    def search_problem(
        self, data_path: str, hyperparameters: dict, inputs: StepInputs, config: HpoConfig
    ) -> SearchProblem:
        """This family is not searched: a run gives its hyperparameters, as with ``hpo.enabled: false``."""
        raise ConfigError("pipeline parameter hpo", f"{KEY} has no search space", field="enabled", expected="false")
