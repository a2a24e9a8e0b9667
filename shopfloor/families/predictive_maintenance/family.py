"""The predictive-maintenance family as the steps see it: failure-within-horizon + RUL on labelled windows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shopfloor.common.config import HpoConfig, validated
from shopfloor.common.storage import join_uri, read_bytes, sha256_hex
from shopfloor.contracts.model_artifact import write_model
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
from shopfloor.families.predictive_maintenance.config import GateConfig, LabelingConfig, ModelConfig
from shopfloor.families.registry import ModelKind
from shopfloor.families.shared import final_metrics, split_rates

if TYPE_CHECKING:
    import pandas as pd

    from shopfloor.families.predictive_maintenance.evaluation import Evaluation
    from shopfloor.families.search import SearchProblem

__all__ = [
    "PredictiveMaintenance",
]


def operating_point(model_info: dict, gate: GateConfig) -> dict:
    """The alarm threshold training chose on validation (method, value, what it achieved there).

    A model trained before operating points existed has none: the gate's fixed threshold stands in.
    """
    return model_info.get("threshold") or {"method": "fixed", "value": gate.decision_threshold}


class PredictiveMaintenance(ModelFamily[LabelledWindows, "Evaluation"]):
    """A window model that predicts failure within a horizon and the remaining useful life, per asset."""

    key = ModelKind.PREDICTIVE_MAINTENANCE
    data_kind = "windows"
    score_output = "failure_probability"
    served_model = "shopfloor.serving.predictor:WindowModel"
    headline_metrics = ("roc_auc", "pr_auc", "f1", "rul_mae_hours")

    def alarm_threshold(self, model_info: dict, blessing: dict) -> float:
        """The gate's decision threshold, which the evaluation blessed the model at."""
        return float(blessing["gate"]["decision_threshold"])

    def label_sensors(
        self,
        sensors: pd.DataFrame,
        events: pd.DataFrame,
        features: list[str],
        failure_values: list[str],
        labeling: dict,
    ) -> SensorLabels:
        """Windows labelled "fails within the horizon" with the remaining useful life, split by asset."""
        from shopfloor.families.predictive_maintenance.labelling import label_windows

        config = validated(LabelingConfig, labeling, "pipeline parameter labeling")
        windows = label_windows(sensors, events, features, failure_values, config)
        rates = split_rates(windows)
        summary = f"{windows.failure.size:,} windows; failing within {config.horizon_hours:g} h: {rates}"
        return SensorLabels(windows, summary, "positive_rate")

    def train(self, data_path: str, hyperparameters: dict, inputs: StepInputs, model_dir: str) -> Trained:
        """Fit the failure/RUL model on the labelled windows; the windows file's hash goes into the model."""
        from shopfloor.families.predictive_maintenance.evaluation import predict
        from shopfloor.families.predictive_maintenance.model import train_model
        from shopfloor.families.shared import operating_threshold

        config = validated(ModelConfig, hyperparameters, "hyperparameters artifact")
        gate = validated(GateConfig, inputs.gate, "pipeline parameter gate")
        data_sha256 = sha256_hex(read_bytes(join_uri(data_path, "windows.npz")))
        windows = load_windows(data_path)
        result = train_model(windows, config, data_sha256)
        validation = windows.part("validation")
        score, _ = predict(result.model, validation.x)
        result.info["threshold"] = operating_threshold(
            validation.failure, score, gate.operating_point, gate.decision_threshold, gate.target_recall, gate.miss_cost
        )
        write_model(result, model_dir)
        metadata = {key: result.info[key] for key in ("epochs_run", "features", "window")}
        return Trained(result.history, {"framework": "keras", **metadata}, final_metrics(result.history))

    def load_evaluation_data(self, data_path: str, inputs: StepInputs) -> LabelledWindows:
        """The labelled windows (evaluation scores their test split)."""
        return load_windows(data_path)

    def evaluate(self, model: Any, model_info: dict, data: LabelledWindows, inputs: StepInputs) -> Evaluation:
        """Failure and RUL metrics on the test split at the gate's decision threshold, and the gate."""
        from shopfloor.families.predictive_maintenance.evaluation import evaluate_model

        gate = validated(GateConfig, inputs.gate, "pipeline parameter gate")
        return evaluate_model(model, data, gate, operating_point(model_info, gate))

    def comparable_inputs(self, model_info: dict, data: LabelledWindows) -> dict:
        """Production's model scores these windows only if it reads the same sensors over the same window."""
        return {"features": data.features, "window": int(data.info["window"])}

    def champion_metric(self, result: Evaluation) -> tuple[str, Literal[">=", "<="]]:
        """PR-AUC: failures are rare, so ranking them above healthy windows is what matters."""
        return "pr_auc", ">="

    def reference_scores(self, result: Evaluation) -> np.ndarray:
        """The test windows' failure probabilities."""
        return result.failure_score

    def confusion_labels(self, result: Evaluation) -> list[str]:
        """Healthy windows, then windows followed by a failure within the horizon."""
        return ["ok", "fails"]

    def render(self, result: Evaluation, record: ModelRecord, data: LabelledWindows) -> Rendered:
        """ROC/PR curves, RUL and one asset's risk over time; the model card quotes the labels' settings."""
        from shopfloor.families.predictive_maintenance.report import model_task, render_report, render_summary
        from shopfloor.families.reporting import render_model_card

        return Rendered(
            report=render_report(result, record.history, record.model_name),
            summary=render_summary(result, record.model_name),
            model_card=render_model_card(record, data.info, result, model_task(record.model_info)),
        )

    def progress_line(self, result: Evaluation) -> str:
        """Ranking, F1 at the threshold and the RUL error."""
        m = result.metrics
        ranking = f"ROC-AUC {m['roc_auc']:.3f}, PR-AUC {m['pr_auc']:.3f}"
        return f"{ranking}, F1 {m['f1']:.3f}, RUL MAE {m['rul_mae_hours']:.1f} h"

    def explain(
        self, model: Any, model_info: dict, data_path: str, inputs: StepInputs, request: ExplainRequest
    ) -> Explained:
        """Integrated gradients on a sample of test windows: sensor importance and the showcased cases' heatmaps."""
        from shopfloor.families.predictive_maintenance.explanation import (
            explain_windows,
            render_explain_report,
            render_explain_summary,
        )

        gate = validated(GateConfig, inputs.gate, "pipeline parameter gate")
        threshold = float(operating_point(model_info, gate)["value"])
        found = explain_windows(
            model, load_windows(data_path), model_info, sample_size=request.sample_size, threshold=threshold
        )
        top = sorted(found.importance, key=lambda name: found.importance[name], reverse=True)[:3]
        return Explained(
            report=render_explain_report(found, request.model_name),
            summary=render_explain_summary(found, request.model_name),
            importance=found.importance,
            progress=f"explained {found.attributions.values.shape[0]} windows; top sensors: {', '.join(top)}",
        )

    def search_problem(
        self, data_path: str, hyperparameters: dict, inputs: StepInputs, config: HpoConfig
    ) -> SearchProblem:
        """Maximize the validation failure PR-AUC over the window model's space."""
        from shopfloor.families.predictive_maintenance.search import problem_at

        return problem_at(data_path, hyperparameters, inputs.data_schema, inputs.split, config)
