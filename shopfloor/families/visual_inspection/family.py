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
from shopfloor.families.registry import ModelKind
from shopfloor.families.shared import final_metrics
from shopfloor.families.visual_inspection.config import CnnConfig, TfliteConfig, VisionGateConfig

if TYPE_CHECKING:
    from shopfloor.families.search import SearchProblem
    from shopfloor.families.visual_inspection.evaluation import VisionEvaluation

__all__ = ["VisualInspection"]


def _images(data_path: str, inputs: StepInputs) -> ImageSet:
    """The labelled images of the manifest, read with the image schema and split the pipeline was given."""
    data = validated(ImageDataConfig, inputs.data_schema, "pipeline parameter image_schema")
    return load_image_set(data_path, data, validated(ImageSplitConfig, inputs.split, "pipeline parameter split"))


class VisualInspection(ModelFamily[ImageSet, "VisionEvaluation"]):
    """A small CNN that rejects a part when its defect score passes the threshold chosen for the target recall."""

    key = ModelKind.VISUAL_INSPECTION
    data_kind = "images"
    score_output = "defect_score"
    served_model = "shopfloor.serving.predictor:ImageModel"
    headline_metrics = ("accuracy", "roc_auc", "defect_recall", "false_reject_rate")

    def train(self, data_path: str, hyperparameters: dict, inputs: StepInputs, model_dir: str) -> Trained:
        """Fit the CNN, choose its defect threshold, and export float32 and int8 TFLite models next to it."""
        from shopfloor.families.visual_inspection.model import train_vision_model
        from shopfloor.families.visual_inspection.tflite import export_tflite, write_tflite

        images = _images(data_path, inputs)
        target = validated(VisionGateConfig, inputs.gate, "pipeline parameter gate").target_defect_recall
        config = validated(CnnConfig, hyperparameters, "hyperparameters artifact")
        result = train_vision_model(images, config, target_defect_recall=target, data_sha256=images.content_sha256)
        threshold = result.info["threshold"]["value"]
        edge = validated(TfliteConfig, inputs.edge, "pipeline parameter edge")
        exported = export_tflite(result.model, images, threshold, edge)
        result.info["edge"] = exported.info
        write_model(result, model_dir)
        write_tflite(exported, join_uri(model_dir, "edge"))
        metrics = {**final_metrics(result.history), "threshold": threshold}
        for variant, record in exported.info["variants"].items():
            metrics[f"{variant}_bytes"] = record["bytes"]
            metrics[f"{variant}_accuracy"] = round(record["accuracy"], 4)
            report_progress(f"edge {variant}: {record['bytes']:,} bytes, test accuracy {record['accuracy']:.3f}")
        metadata = {"framework": "keras", "model_type": self.key.value, "classes": list(images.classes)}
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
        from shopfloor.families.visual_inspection.evaluation import (
            render_vision_model_card,
            render_vision_report,
            render_vision_summary,
        )

        return Rendered(
            report=render_vision_report(
                result, record.history, record.model_name, record.model_info.get("early_stopping")
            ),
            summary=render_vision_summary(result, record.model_name),
            model_card=render_vision_model_card(
                record.model_name, record.version, record.model_info, record.profile, result
            ),
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
        """Grad-CAM of the test split's most confidently wrong and most confident parts, with operators' feedback.

        Grad-CAM explains one image at a time, so there is no global importance to log.
        """
        from shopfloor.contracts.feedback import read_feedback
        from shopfloor.families.visual_inspection.explanation import render_gradcam_report, render_gradcam_summary
        from shopfloor.families.visual_inspection.model import predict_probabilities

        test = _images(data_path, inputs).part("test")
        feedback = read_feedback(request.model_store_uri, request.model_name) if request.model_store_uri else []
        probabilities = predict_probabilities(model, test.images)
        report = render_gradcam_report(model, test, request.model_name, feedback=feedback, probabilities=probabilities)
        summary = render_gradcam_summary(test, probabilities, request.model_name, feedback=feedback)
        wrong = int((probabilities.argmax(axis=1) != test.labels).sum())
        progress = f"Grad-CAM over {len(test.labels)} test images ({wrong} misclassified); {len(feedback)} verdicts"
        return Explained(report, summary, {}, progress)

    def search_problem(
        self, data_path: str, hyperparameters: dict, inputs: StepInputs, config: HpoConfig
    ) -> SearchProblem:
        """Maximize the validation balanced accuracy over the CNN's space."""
        from shopfloor.families.visual_inspection.search import problem_at

        return problem_at(data_path, hyperparameters, inputs.data_schema, inputs.split, config)
