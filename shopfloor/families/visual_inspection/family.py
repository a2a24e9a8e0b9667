"""The visual-inspection family as the steps see it: a CNN on part photos, its defect threshold, edge exports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shopfloor.common.config import HpoConfig, validated
from shopfloor.common.progress import report_progress
from shopfloor.common.storage import join_uri
from shopfloor.common.vision_config import ImageDataConfig, ImageSplitConfig
from shopfloor.contracts.images import ImageSet, load_image_set
from shopfloor.contracts.model_artifact import write_model
from shopfloor.families.base import (
    Explained,
    ExplainRequest,
    ModelFamily,
    ModelRecord,
    Rendered,
    StepInputs,
    Trained,
)
from shopfloor.families.classical import ENGINE_LIGHTGBM_IMAGES, ENGINE_NETWORK, BoostedImages, EngineChoice
from shopfloor.families.registry import ModelKind
from shopfloor.families.shared import final_metrics
from shopfloor.families.visual_inspection.config import CnnConfig, TfliteConfig, VisionGateConfig

if TYPE_CHECKING:
    from shopfloor.families.search import SearchProblem
    from shopfloor.families.visual_inspection.evaluation import VisionEvaluation

__all__ = ["VisualInspection", "challenge_cnn"]


def _images(data_path: str, inputs: StepInputs) -> ImageSet:
    """The labelled images of the manifest, read with the image schema and split the pipeline was given."""
    data = validated(ImageDataConfig, inputs.data_schema, "pipeline parameter image_schema")
    return load_image_set(data_path, data, validated(ImageSplitConfig, inputs.split, "pipeline parameter split"))


def challenge_cnn(
    network: Any, images: ImageSet, target_defect_recall: float, seed: int
) -> tuple[EngineChoice, BoostedImages]:
    """Fit the trees on the CNN's split and choose the better on validation defect-vs-ok PR-AUC.

    Each gets its own defect threshold for the target recall on the same validation images.
    """
    from shopfloor.families.classical import choose_on_validation, fit_boosted_images
    from shopfloor.families.visual_inspection.inference import defect_scores
    from shopfloor.families.visual_inspection.model import choose_defect_threshold, predict_probabilities

    challenger = fit_boosted_images(images, seed)
    validation = images.part("validation")
    engines = {ENGINE_NETWORK: network, ENGINE_LIGHTGBM_IMAGES: challenger}
    scores = {
        engine: defect_scores(predict_probabilities(model, validation.images), images.ok_index)
        for engine, model in engines.items()
    }
    defective = validation.is_defect

    def threshold(score: np.ndarray) -> dict:
        return choose_defect_threshold(score, defective, target_defect_recall)

    return choose_on_validation(scores, defective, threshold), challenger


class VisualInspection(ModelFamily[ImageSet, "VisionEvaluation"]):
    """A small CNN that rejects a part when its defect score passes the threshold chosen for the target recall."""

    key = ModelKind.VISUAL_INSPECTION
    data_kind = "images"
    score_output = "defect_score"
    served_model = "shopfloor.serving.predictor:ImageModel"
    headline_metrics = ("accuracy", "roc_auc", "defect_recall", "false_reject_rate")

    def train(self, data_path: str, hyperparameters: dict, inputs: StepInputs, model_dir: str) -> Trained:
        """Fit the CNN, choose its defect threshold, and export float32 and int8 TFLite models next to it."""
        from shopfloor.families.edge_export import no_export
        from shopfloor.families.visual_inspection.model import train_vision_model
        from shopfloor.families.visual_inspection.tflite import export_tflite, write_tflite

        images = _images(data_path, inputs)
        gate = validated(VisionGateConfig, inputs.gate, "pipeline parameter gate")
        config = validated(CnnConfig, hyperparameters, "hyperparameters artifact")
        result = train_vision_model(
            images, config, target_defect_recall=gate.target_defect_recall, data_sha256=images.content_sha256
        )
        extra: dict[str, bytes] = {}
        if gate.challenger != "none":
            choice, challenger = challenge_cnn(result.model, images, gate.target_defect_recall, config.seed)
            result.info.update(engine=choice.chosen, threshold=choice.thresholds[choice.chosen])
            result.info["challenger"] = choice.record()
            extra = challenger.files()
            report_progress(choice.line())
        threshold = result.info["threshold"]["value"]
        metrics = {**final_metrics(result.history), "threshold": threshold}
        exported = None
        if result.info.get("engine", ENGINE_NETWORK) == ENGINE_NETWORK:
            exported = export_tflite(result.model, images, threshold, validated(TfliteConfig, inputs.edge, "edge"))
            result.info["edge"] = exported.info
            for variant, record in exported.info["variants"].items():
                metrics[f"{variant}_bytes"] = record["bytes"]
                metrics[f"{variant}_accuracy"] = round(record["accuracy"], 4)
                report_progress(f"edge {variant}: {record['bytes']:,} bytes, test accuracy {record['accuracy']:.3f}")
        else:
            result.info["edge"] = no_export(result.info["engine"])
        write_model(result, model_dir, extra)
        if exported is not None:
            write_tflite(exported, join_uri(model_dir, "edge"))
        framework = result.info.get("engine", ENGINE_NETWORK)
        metadata = {"framework": framework, "model_type": self.key.value, "classes": list(images.classes)}
        return Trained(result.history, metadata, metrics)

    def load_evaluation_data(self, data_path: str, inputs: StepInputs) -> ImageSet:
        """The labelled images (evaluation inspects the test split)."""
        return _images(data_path, inputs)

    def evaluate(self, model: Any, model_info: dict, data: ImageSet, inputs: StepInputs) -> VisionEvaluation:
        """Reject or pass each test part at the model's own threshold, against the gate."""
        from shopfloor.families.visual_inspection.evaluation import evaluate_vision

        gate = validated(VisionGateConfig, inputs.gate, "pipeline parameter gate")
        return evaluate_vision(model, data, model_info["threshold"]["value"], gate)

    def comparable_inputs(self, model_info: dict, data: ImageSet) -> dict:
        """Production's CNN inspects these photos only with the same classes, image size and colour mode."""
        return {key: model_info[key] for key in ("classes", "image_size", "color_mode")}

    def champion_metric(self, result: VisionEvaluation) -> tuple[str, Literal[">=", "<="]]:
        """ROC-AUC of the defect score: how well defects rank above good parts, whatever the threshold."""
        return "roc_auc", ">="

    def reference_scores(self, result: VisionEvaluation) -> np.ndarray:
        """The test parts' defect scores."""
        return result.scores

    def confusion_labels(self, result: VisionEvaluation) -> list[str]:
        """The classes, in the model's order."""
        return list(result.classes)

    def render(self, result: VisionEvaluation, record: ModelRecord, data: ImageSet) -> Rendered:
        """Per-class table, confusion matrix and ROC; the card lists each edge variant's size and accuracy."""
        from shopfloor.families.reporting import engines_card_section, engines_html
        from shopfloor.families.visual_inspection.evaluation import (
            render_vision_model_card,
            render_vision_report,
            render_vision_summary,
        )

        names = self.headline_metrics
        card = render_vision_model_card(record.model_name, record.version, record.model_info, record.profile, result)
        return Rendered(
            report=render_vision_report(
                result,
                record.history,
                record.model_name,
                record.model_info.get("early_stopping"),
                engines_html(record, result.metrics, names),
            ),
            summary=render_vision_summary(result, record.model_name),
            model_card=card + engines_card_section(record, result.metrics, names),
        )

    def progress_line(self, result: VisionEvaluation) -> str:
        """Accuracy, defect recall and false rejects at the threshold."""
        m = result.metrics
        return (
            f"accuracy {m['accuracy']:.3f}, defect recall {m['defect_recall']:.3f}, "
            f"false rejects {m['false_reject_rate']:.3f}"
        )

    def explain(
        self, model: Any, model_info: dict, data_path: str, inputs: StepInputs, request: ExplainRequest
    ) -> Explained:
        """Heatmaps of the test split's most confidently wrong and most confident parts, with operators' feedback.

        Grad-CAM for the CNN, tree SHAP per image block when the trees answer; either explains one image at a
        time, so there is no global importance to log.
        """
        from shopfloor.contracts.feedback import read_feedback
        from shopfloor.families.visual_inspection.explanation import (
            explanation_method,
            render_gradcam_report,
            render_gradcam_summary,
        )
        from shopfloor.families.visual_inspection.model import predict_probabilities

        test = _images(data_path, inputs).part("test")
        feedback = read_feedback(request.model_store_uri, request.model_name) if request.model_store_uri else []
        probabilities = predict_probabilities(model, test.images)
        report = render_gradcam_report(model, test, request.model_name, feedback=feedback, probabilities=probabilities)
        summary = render_gradcam_summary(test, probabilities, request.model_name, feedback=feedback)
        wrong = int((probabilities.argmax(axis=1) != test.labels).sum())
        method = explanation_method(model).split(":")[0]
        progress = f"{method} over {len(test.labels)} test images ({wrong} misclassified); {len(feedback)} verdicts"
        return Explained(report, summary, {}, progress)

    def search_problem(
        self, data_path: str, hyperparameters: dict, inputs: StepInputs, config: HpoConfig
    ) -> SearchProblem:
        """Maximize the validation balanced accuracy over the CNN's space."""
        from shopfloor.families.visual_inspection.search import problem_at

        return problem_at(data_path, hyperparameters, inputs.data_schema, inputs.split, config)
