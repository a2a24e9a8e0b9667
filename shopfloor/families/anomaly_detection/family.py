"""The anomaly-detection family as the steps see it: a window autoencoder and its alarm threshold."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shopfloor.common.config import HpoConfig, validated
from shopfloor.common.progress import report_progress
from shopfloor.common.storage import join_uri, read_bytes, sha256_hex
from shopfloor.contracts.model_artifact import TrainResult, write_model
from shopfloor.contracts.windows import LabelledWindows, load_windows
from shopfloor.families.anomaly_detection.config import AnomalyGateConfig, AnomalyLabelingConfig, AutoencoderConfig
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
from shopfloor.families.classical import ENGINE_NETWORK, ENGINE_PCA, EngineChoice, PcaDetector
from shopfloor.families.registry import ModelKind
from shopfloor.families.shared import final_metrics, split_rates

if TYPE_CHECKING:
    import pandas as pd

    from shopfloor.families.anomaly_detection.evaluation import AnomalyEvaluation
    from shopfloor.families.search import SearchProblem

__all__ = ["AnomalyDetection", "challenge_autoencoder"]


def challenge_autoencoder(
    result: TrainResult, windows: LabelledWindows, config: AutoencoderConfig
) -> tuple[EngineChoice, PcaDetector]:
    """Fit the PCA detector on the autoencoder's normal windows and choose the better on validation PR-AUC.

    Each gets its own threshold by the config's rule on the same validation windows; a validation period without
    anomalies has nothing to choose by, and the autoencoder stays.
    """
    from shopfloor.families.anomaly_detection.model import anomaly_scores, choose_threshold, normal_windows
    from shopfloor.families.classical import choose_on_validation, fit_pca_detector

    normal = normal_windows(windows)
    detector = fit_pca_detector(normal.train, normal.mean, normal.std, windows.features)
    validation = windows.part("validation")
    x, labels = (validation.x, validation.failure) if len(validation.x) else (normal.validation, None)
    labels = labels if labels is not None else np.zeros(len(x), np.int8)
    engines = {ENGINE_NETWORK: result.model, ENGINE_PCA: detector}
    scores = {engine: anomaly_scores(model, x) for engine, model in engines.items()}
    choice = choose_on_validation(scores, labels, lambda score: choose_threshold(score, labels, config))
    return choice, detector


class AnomalyDetection(ModelFamily[LabelledWindows, "AnomalyEvaluation"]):
    """An autoencoder trained on normal operation; a window whose reconstruction error passes the threshold alarms."""

    key = ModelKind.ANOMALY_DETECTION
    data_kind = "windows"
    score_output = "anomaly_score"
    served_model = "shopfloor.serving.predictor:AnomalyWindowModel"
    headline_metrics = ("roc_auc", "pr_auc", "f1", "false_alarm_rate")

    def label_sensors(
        self,
        sensors: pd.DataFrame,
        events: pd.DataFrame,
        features: list[str],
        failure_values: list[str],
        labeling: dict,
        sites: dict | None = None,  # a fleet's overlays: anomaly labelling has no per-site settings yet
    ) -> SensorLabels:
        """Windows marked normal or abnormal (near an anomaly event), split in time order per asset."""
        from shopfloor.families.anomaly_detection.labelling import label_anomaly_windows

        config = validated(AnomalyLabelingConfig, labeling, "pipeline parameter labeling")
        windows = label_anomaly_windows(sensors, events, features, failure_values, config)
        rates = split_rates(windows)
        return SensorLabels(windows, f"{windows.failure.size:,} windows; abnormal: {rates}", "abnormal_rate")

    def train(self, data_path: str, hyperparameters: dict, inputs: StepInputs, model_dir: str) -> Trained:
        """Fit on normal windows, choose the alarm threshold on validation; the threshold is logged too."""
        from shopfloor.contracts.edge import EDGE_DIR
        from shopfloor.families.anomaly_detection.edge import export_detector
        from shopfloor.families.anomaly_detection.model import train_autoencoder
        from shopfloor.families.edge_export import EdgeConfig, no_export, write_edge

        config = validated(AutoencoderConfig, hyperparameters, "hyperparameters artifact")
        gate = validated(AnomalyGateConfig, inputs.gate, "pipeline parameter gate")
        data_sha256 = sha256_hex(read_bytes(join_uri(data_path, "windows.npz")))
        windows = load_windows(data_path)
        result = train_autoencoder(windows, config, data_sha256)
        extra: dict[str, bytes] = {}
        if gate.challenger != "none":
            choice, detector = challenge_autoencoder(result, windows, config)
            result.info.update(engine=choice.chosen, threshold=choice.thresholds[choice.chosen])
            result.info["challenger"] = choice.record()
            extra = detector.files()
            report_progress(choice.line())
        threshold = result.info["threshold"]["value"]
        exported = None
        if result.info.get("engine", ENGINE_NETWORK) == ENGINE_NETWORK:
            exported = export_detector(result.model, windows, threshold, validated(EdgeConfig, inputs.edge, "edge"))
            result.info["edge"] = exported.info
        else:
            result.info["edge"] = no_export(result.info["engine"])
        write_model(result, model_dir, extra)
        if exported is not None:
            write_edge(exported, join_uri(model_dir, EDGE_DIR))
        framework = result.info.get("engine", ENGINE_NETWORK)
        metadata = {"framework": framework, "model_type": self.key.value, "threshold": threshold}
        metadata.update({key: result.info[key] for key in ("features", "window")})
        return Trained(result.history, metadata, {**final_metrics(result.history), "threshold": threshold})

    def load_evaluation_data(self, data_path: str, inputs: StepInputs) -> LabelledWindows:
        """The windows labelled normal/abnormal (evaluation raises alarms on the test part)."""
        return load_windows(data_path)

    def evaluate(self, model: Any, model_info: dict, data: LabelledWindows, inputs: StepInputs) -> AnomalyEvaluation:
        """Alarms on the held-out period at the model's own threshold, against the gate."""
        from shopfloor.families.anomaly_detection.evaluation import evaluate_detector

        gate = validated(AnomalyGateConfig, inputs.gate, "pipeline parameter gate")
        return evaluate_detector(model, data, model_info["threshold"]["value"], gate)

    def comparable_inputs(self, model_info: dict, data: LabelledWindows) -> dict:
        """Production's detector scores these windows only if it reads the same sensors over the same window."""
        return {"features": data.features, "window": int(data.info["window"])}

    def champion_metric(self, result: AnomalyEvaluation) -> tuple[str, Literal[">=", "<="]]:
        """F1 where the held-out period has anomalies; otherwise the false-alarm rate, lower being better."""
        return ("f1", ">=") if "f1" in result.metrics else ("false_alarm_rate", "<=")

    def reference_scores(self, result: AnomalyEvaluation) -> np.ndarray:
        """The test windows' anomaly scores."""
        return result.scores

    def confusion_labels(self, result: AnomalyEvaluation) -> list[str]:
        """Normal windows, then abnormal ones."""
        return ["normal", "abnormal"]

    def render(self, result: AnomalyEvaluation, record: ModelRecord, data: LabelledWindows) -> Rendered:
        """Reconstruction error over time against the threshold; the card quotes the labels' settings."""
        from shopfloor.families.anomaly_detection.evaluation import (
            detector_task,
            render_anomaly_report,
            render_anomaly_summary,
        )
        from shopfloor.families.reporting import engines_card_section, engines_html, render_model_card

        names = self.headline_metrics
        card = render_model_card(record, data.info, result, detector_task(record.model_info))
        return Rendered(
            report=render_anomaly_report(
                result,
                record.history,
                record.model_name,
                engines_html(record, result.metrics, names),
                record.model_info.get("early_stopping"),
            ),
            summary=render_anomaly_summary(result, record.model_name),
            model_card=card + engines_card_section(record, result.metrics, names),
        )

    def progress_line(self, result: AnomalyEvaluation) -> str:
        """False alarms, and ranking, precision, recall and F1 where anomalies were held out."""
        m = result.metrics
        names = {"roc_auc": "ROC-AUC", "pr_auc": "PR-AUC", "precision": "precision", "recall": "recall", "f1": "F1"}
        found = ", ".join(f"{shown} {m[k]:.3f}" for k, shown in names.items() if k in m)
        return f"false alarms {m['false_alarm_rate']:.1%}{', ' + found if found else ''}"

    def explain(
        self, model: Any, model_info: dict, data_path: str, inputs: StepInputs, request: ExplainRequest
    ) -> Explained:
        """The error per sensor on every test window: which sensors set the alarms off (no sampling: it is cheap)."""
        from shopfloor.families.anomaly_detection.explanation import (
            explain_detector,
            render_detector_report,
            render_detector_summary,
        )

        found = explain_detector(model, load_windows(data_path), float(model_info["threshold"]["value"]))
        top = sorted(found.importance, key=lambda name: found.importance[name], reverse=True)[:3]
        alarms = int(found.alarms.sum())
        return Explained(
            report=render_detector_report(found, request.model_name),
            summary=render_detector_summary(found, request.model_name),
            importance=found.importance,
            progress=f"explained {alarms} alarms in {len(found.scores)} test windows; top sensors: {', '.join(top)}",
        )

    def search_problem(
        self, data_path: str, hyperparameters: dict, inputs: StepInputs, config: HpoConfig
    ) -> SearchProblem:
        """Maximize the validation PR-AUC of the anomaly score over the autoencoder's space."""
        from shopfloor.families.anomaly_detection.search import problem_at

        return problem_at(data_path, hyperparameters, inputs.data_schema, inputs.split, config)
