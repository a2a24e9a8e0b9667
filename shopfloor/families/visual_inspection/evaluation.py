"""Visual-inspection evaluation: per-class metrics, defect-vs-ok ROC, the gate at the trained threshold, a report.

A part is rejected when its defect score (``1 - P(ok)``) reaches the decision threshold chosen on the validation
split for the target defect recall (:func:`shopfloor.families.visual_inspection.model.choose_defect_threshold`);
a rejected part is given its most probable defect class, a passed part the ok class. Metrics on the test split:
accuracy of that decision, defect recall (defective parts rejected), false-reject rate (good parts rejected),
defect precision, ROC-AUC and PR-AUC of the defect score, and per-class precision, recall, F1 and support. The
gate checks accuracy, defect recall, false-reject rate and ROC-AUC against :class:`VisionGateConfig`.
"""

from __future__ import annotations

import dataclasses
import html

import numpy as np
from sklearn import metrics as skm

from shopfloor.common.plots import figure_png, figures_html, html_page
from shopfloor.contracts.edge import edge_card_section
from shopfloor.contracts.images import ImageSet
from shopfloor.families.learning import learning_curves_caption, learning_curves_png
from shopfloor.families.reporting import card_results, gate_summary, gate_table_html
from shopfloor.families.shared import roc_points
from shopfloor.families.visual_inspection.config import VisionGateConfig
from shopfloor.families.visual_inspection.inference import decide, defect_scores
from shopfloor.families.visual_inspection.model import choose_defect_threshold, predict_probabilities

__all__ = [
    "VisionEvaluation",
    "evaluate_vision",
    "per_class_metrics",
    "render_vision_model_card",
    "render_vision_report",
    "render_vision_summary",
    "validation_threshold",
    "vision_gate",
    "vision_metrics",
]


@dataclasses.dataclass(frozen=True)
class VisionEvaluation:
    """Test-split probabilities and decisions, with the metrics, per-class table and the gate's verdict."""

    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    classes: list[str]
    ok_class: str
    roc: dict[str, list[float]] | None
    gate: dict
    threshold: float
    labels: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray
    paths: np.ndarray

    @property
    def scores(self) -> np.ndarray:
        """The defect score (1 - P(ok)) of every test image."""
        return defect_scores(self.probabilities, self.classes.index(self.ok_class))


def per_class_metrics(labels: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every class, for the report's table and the model card."""
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        labels, predicted, labels=list(range(len(classes))), zero_division=0
    )
    return {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": float(s)}
        for name, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    }


def vision_metrics(labels: np.ndarray, probabilities: np.ndarray, ok_index: int, threshold: float) -> dict[str, float]:
    """Accuracy, defect recall, false-reject rate and defect precision at ``threshold``; ROC/PR-AUC of the score."""
    predicted = decide(probabilities, ok_index, threshold)
    scores = defect_scores(probabilities, ok_index)
    defect = labels != ok_index
    rejected = scores >= threshold
    metrics = {
        "test_images": float(labels.size),
        "defect_images": float(defect.sum()),
        "accuracy": float((predicted == labels).mean()),
        "argmax_accuracy": float((probabilities.argmax(axis=1) == labels).mean()),
        "defect_recall": float(rejected[defect].mean()) if defect.any() else 0.0,
        "false_reject_rate": float(rejected[~defect].mean()) if (~defect).any() else 0.0,
        "defect_precision": float(defect[rejected].mean()) if rejected.any() else 0.0,
        "defect_type_accuracy": float((predicted[defect & rejected] == labels[defect & rejected]).mean())
        if (defect & rejected).any()
        else 0.0,
    }
    if defect.any() and (~defect).any():
        metrics |= {
            "roc_auc": float(skm.roc_auc_score(defect, scores)),
            "pr_auc": float(skm.average_precision_score(defect, scores)),
        }
    return metrics


def vision_gate(metrics: dict[str, float], gate: VisionGateConfig, threshold: float) -> dict:
    """The gate: accuracy, defect recall, false-reject rate, and ROC-AUC where the test split has both kinds."""
    rules = [
        ("accuracy", ">=", gate.min_accuracy),
        ("defect_recall", ">=", gate.min_defect_recall),
        ("false_reject_rate", "<=", gate.max_false_reject_rate),
    ]
    if "roc_auc" in metrics:
        rules.append(("roc_auc", ">=", gate.min_roc_auc))
    checks = []
    for metric, op, limit in rules:
        value = metrics[metric]
        passed = value <= limit if op == "<=" else value >= limit
        checks.append({"metric": metric, "value": round(value, 6), "op": op, "threshold": limit, "passed": passed})
    return {"passed": all(c["passed"] for c in checks), "checks": checks, "decision_threshold": threshold}


def validation_threshold(model, images: ImageSet, gate: VisionGateConfig) -> dict:
    """The decision threshold chosen on the validation split, for a model whose description lacks one."""
    validation = images.part("validation")
    scores = defect_scores(predict_probabilities(model, validation.images), images.ok_index)
    return choose_defect_threshold(scores, validation.is_defect, gate.target_defect_recall)


def evaluate_vision(model, images: ImageSet, threshold: float, gate: VisionGateConfig) -> VisionEvaluation:
    """Score the test split, decide at ``threshold`` (chosen on validation) and apply the gate.

    Raises:
        ValueError: If the test split holds no images.
    """
    test = images.part("test")
    if test.images.shape[0] == 0:
        raise ValueError("the test split holds no images; add images or raise split.test_fraction")
    probabilities = predict_probabilities(model, test.images)
    ok_index = images.ok_index
    predicted = decide(probabilities, ok_index, threshold)
    metrics = vision_metrics(test.labels, probabilities, ok_index, threshold)
    classes = list(images.classes)
    confusion = skm.confusion_matrix(test.labels, predicted, labels=list(range(len(classes))))
    return VisionEvaluation(
        metrics=metrics,
        per_class=per_class_metrics(test.labels, predicted, classes),
        confusion_matrix=confusion.astype(int).tolist(),
        classes=classes,
        ok_class=images.ok_class,
        roc=roc_points(test.is_defect, defect_scores(probabilities, ok_index)) if "roc_auc" in metrics else None,
        gate=vision_gate(metrics, gate, threshold),
        threshold=threshold,
        labels=test.labels,
        predicted=predicted,
        probabilities=probabilities,
        paths=test.paths,
    )


def _plots(
    evaluation: VisionEvaluation, history: dict[str, list[float]], stopping: dict | None = None
) -> dict[str, str]:
    """Every plot of the report, by title: confusion matrix, ROC, defect-score histogram, learning curves."""
    classes, threshold = evaluation.classes, evaluation.threshold
    defect = evaluation.labels != classes.index(evaluation.ok_class)
    scores = evaluation.scores

    def confusion(ax):
        matrix = np.array(evaluation.confusion_matrix)
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", color="black")
        ticks = list(range(len(classes)))
        ax.set(xticks=ticks, yticks=ticks, xlabel="decided", ylabel="actual", title="Confusion matrix (test)")
        ax.set_xticklabels(classes, rotation=30, ha="right")
        ax.set_yticklabels(classes)

    def roc(ax):
        assert evaluation.roc is not None  # drawn only when there is a curve
        ax.plot(evaluation.roc["fpr"], evaluation.roc["tpr"], label=f"AUC {evaluation.metrics['roc_auc']:.3f}")
        ax.plot([0, 1], [0, 1], "--", color="grey")
        ax.plot(
            [evaluation.metrics["false_reject_rate"]],
            [evaluation.metrics["defect_recall"]],
            "o",
            color="black",
            label=f"threshold {threshold:.3g}",
        )
        ax.set(xlabel="false-reject rate (good parts)", ylabel="defect recall", title="Defect vs. ok ROC (test)")
        ax.legend(loc="lower right")

    def histogram(ax):
        bins = np.linspace(0.0, 1.0, 41)
        ax.hist(scores[~defect], bins=bins, alpha=0.6, label="ok", density=True)
        if defect.any():
            ax.hist(scores[defect], bins=bins, alpha=0.6, color="red", label="defective", density=True)
        ax.axvline(threshold, ls="--", color="black", label="threshold")
        ax.set(xlabel="defect score 1 - P(ok)", ylabel="density", title="Defect score (test)")
        ax.legend(fontsize=7)

    draws = {"Confusion matrix": confusion, "Defect score": histogram}
    if evaluation.roc is not None:
        draws["ROC curve"] = roc
    sizes = {"Confusion matrix": (5.6, 4.4)}
    plots = {title: figure_png(draw, size=sizes.get(title, (5.2, 3.8))) for title, draw in draws.items()}
    return plots | {learning_curves_caption(stopping): learning_curves_png(history, stopping, "accuracy")}


def _per_class_html(per_class: dict[str, dict[str, float]]) -> str:
    """The per-class precision/recall/F1/support table."""
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{m['precision']:.3f}</td><td>{m['recall']:.3f}</td>"
        f"<td>{m['f1']:.3f}</td><td>{int(m['support'])}</td></tr>"
        for name, m in per_class.items()
    )
    return (
        "<h2>Per class (test, at the threshold)</h2><table><tr><th>class</th><th>precision</th><th>recall</th>"
        f"<th>F1</th><th>images</th></tr>{rows}</table>"
    )


def accuracy_sentence(metrics: dict[str, float]) -> str:
    """Which accuracy is which: decided at the threshold (what the plant gets) and by the most probable class."""
    return (
        f"Accuracy {metrics['accuracy']:.3f} is the share of test parts given their true class as served: "
        f"rejected at the threshold, then named by their most probable defect. Without the threshold (argmax, "
        f"the most probable class alone) it is {metrics['argmax_accuracy']:.3f}; class weights in training move "
        "probability towards rare defects, which the threshold, chosen on validation, corrects for."
    )


def render_vision_report(
    evaluation: VisionEvaluation,
    history: dict[str, list[float]],
    model_name: str,
    stopping: dict | None = None,
    comparison: str = "",
) -> str:
    """A self-contained HTML report (plots inline) for the KFP dashboard's HTML viewer.

    ``stopping`` is the model's early-stopping record, marked on its learning curves; ``comparison`` the HTML
    table of the engines trained (CNN and classical challenger), if any.
    """
    body = f"""<h1>{html.escape(model_name)}: visual inspection on the test split</h1>
<p>A part is rejected when its defect score 1 - P({html.escape(evaluation.ok_class)}) reaches
{evaluation.threshold:.4g} (chosen on the validation split for the target defect recall).</p>
<p>{html.escape(accuracy_sentence(evaluation.metrics))}</p>
{gate_table_html(evaluation.gate, evaluation.metrics)}{comparison}
{_per_class_html(evaluation.per_class)}
<h2>Plots</h2>{figures_html(_plots(evaluation, history, stopping))}"""
    return html_page(f"{model_name} evaluation", body)


def render_vision_summary(evaluation: VisionEvaluation, model_name: str) -> str:
    """A short Markdown summary for the dashboard's Markdown viewer."""
    detail = (
        f"Reject when the defect score reaches {evaluation.threshold:.4g}: defect recall "
        f"{evaluation.metrics['defect_recall']:.3f}, false rejects {evaluation.metrics['false_reject_rate']:.3f}."
    )
    return gate_summary(evaluation.gate, model_name, detail)


def render_vision_model_card(
    model_name: str, model_version: str, model_info: dict, profile: dict, evaluation: VisionEvaluation
) -> str:
    """The model card of an inspection model: data, code, hyperparameters, metrics, gate, and each edge variant."""
    versions = model_info.get("versions", {})
    edge = model_info.get("edge", {})
    counts = "\n".join(f"| {name} | {count} |" for name, count in profile.get("class_counts", {}).items())
    width, height = model_info["image_size"]
    return f"""# Model card: {model_name} {model_version}

- **Task:** inspect {width}x{height} {model_info["color_mode"]} photos of parts: {", ".join(model_info["classes"])};
  reject when the defect score 1 - P({model_info["ok_class"]}) reaches {evaluation.threshold:.4g}
- **Quality gate:** {"PASSED (deployable)" if evaluation.gate["passed"] else "FAILED (not deployable)"}
- **Accuracy:** {accuracy_sentence(evaluation.metrics)}
- **Code:** shopfloor {versions.get("shopfloor", "?")} (git {versions.get("git_commit") or "unknown"}),
  TensorFlow {versions.get("tensorflow", "?")}, Keras {versions.get("keras", "?")}

## Data
{profile.get("images", "?")} images (sources: {profile.get("sources", {}).get("root", "?")}).

| class | images |
| --- | --- |
{counts}

{card_results(model_info["hyperparameters"], evaluation.metrics, evaluation.gate)}
{edge_card_section(edge)}"""
