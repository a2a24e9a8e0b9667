"""Grad-CAM for the visual-inspection CNN: where in the image the evidence for a class lies.

The heatmaps come from ``shopfloor.families.visual_inspection.inference.gradcam`` (the served explainer uses the
same): gradients
of the class's log-odds with respect to the feature maps of the last convolution weigh those maps, whose main
component over the image (eigen smoothing) is resized to the image and scaled to [0, 1]. The report shows the most
confidently wrong and the most confident images of a split with their heatmaps overlaid, and operators' feedback so
far, so an operator sees what the model looks at.
"""

from __future__ import annotations

import base64
import collections
import html
import io
from typing import Any

import numpy as np
from PIL import Image

from shopfloor.common.plots import html_page
from shopfloor.contracts.images import ImageSet
from shopfloor.families.visual_inspection.inference import LAST_CONV, gradcam, overlay
from shopfloor.families.visual_inspection.model import predict_probabilities

__all__ = [
    "box_mass",
    "explanation_method",
    "heatmaps_of",
    "pick_cases",
    "render_gradcam_report",
    "render_gradcam_summary",
]

_SHOWN_SIZE = 128


def box_mass(heatmap: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """The share of a heatmap's total inside the pixel box (x_min, y_min, x_max, y_max), half-open; 0 if empty."""
    x_min, y_min, x_max, y_max = box
    total = float(heatmap.sum())
    return float(heatmap[y_min:y_max, x_min:x_max].sum()) / total if total > 0 else 0.0


def pick_cases(labels: np.ndarray, probabilities: np.ndarray, count: int = 8) -> dict[str, np.ndarray]:
    """Indices of the most confidently wrong images (highest P of a wrong class) and the most confident right ones."""
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    right = np.flatnonzero(predicted == labels)
    return {
        "most confidently wrong": wrong[np.argsort(-confidence[wrong], kind="stable")][:count],
        "most confident": right[np.argsort(-confidence[right], kind="stable")][:count],
    }


def _png(pixels: np.ndarray) -> str:
    """Encode an RGB image, enlarged for the eye, as base64 PNG."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((_SHOWN_SIZE, _SHOWN_SIZE), Image.Resampling.NEAREST).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _tile(image: np.ndarray, heatmap: np.ndarray, caption: str) -> str:
    """One case: the image and its heatmap overlay side by side, with a caption."""
    plain = overlay(image, np.zeros_like(heatmap), alpha=0.0)
    return (
        f'<figure><img alt="image" src="data:image/png;base64,{_png(plain)}"/>'
        f'<img alt="Grad-CAM" src="data:image/png;base64,{_png(overlay(image, heatmap))}"/>'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _feedback_html(feedback: list) -> str:
    """Operators' verdicts on earlier explanations: counts and the latest ones, newest first."""
    if not feedback:
        return "<h2>Operator feedback</h2><p>none yet</p>"
    counts = collections.Counter(f.verdict for f in feedback)
    rows = "".join(
        f"<tr><td>{html.escape(f.created[:19])}</td><td>{html.escape(f.operator)}</td>"
        f"<td>{html.escape(f.model_version)}</td><td>{html.escape(f.path or f.image_sha256[:12])}</td>"
        f"<td>{html.escape(f.verdict)}</td><td>{html.escape(f.corrected_label or '')}</td>"
        f"<td>{html.escape(f.note)}</td></tr>"
        for f in sorted(feedback, key=lambda f: f.created, reverse=True)[:20]
    )
    summary = ", ".join(f"{verdict}: {n}" for verdict, n in sorted(counts.items()))
    return (
        f"<h2>Operator feedback</h2><p>{len(feedback)} verdicts ({html.escape(summary)}); corrected labels join the "
        "label history and count in the next training run.</p><table><tr><th>when</th><th>operator</th>"
        f"<th>model</th><th>image</th><th>verdict</th><th>corrected label</th><th>note</th></tr>{rows}</table>"
    )


def heatmaps_of(model: Any, images: np.ndarray, layer: str = LAST_CONV) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps [n, height, width] in [0, 1] and the class each explains.

    Grad-CAM for the CNN; tree SHAP per image block when the classical challenger answers (its ``evidence``).
    """
    if hasattr(model, "evidence"):
        return model.evidence(images)
    cams = gradcam(model, images, layer=layer)
    return cams.heatmaps, cams.class_index


def explanation_method(model: Any, layer: str = LAST_CONV) -> str:
    """How the heatmaps were made, in words for the report."""
    if hasattr(model, "evidence"):
        return "tree SHAP: each image block's contribution against 'ok' (the classical challenger answers)"
    return f"Grad-CAM: gradients on layer {layer}"


def render_gradcam_report(
    model,
    images: ImageSet,
    model_name: str,
    count: int = 8,
    layer: str = LAST_CONV,
    feedback: list | None = None,
    probabilities: np.ndarray | None = None,
) -> str:
    """A self-contained HTML grid of the most confidently wrong and most confident images with their heatmaps.

    ``probabilities`` are the model's class probabilities for ``images`` where the caller has them already.
    """
    if probabilities is None:
        probabilities = predict_probabilities(model, images.images)
    sections = []
    for title, indices in pick_cases(images.labels, probabilities, count).items():
        if indices.size == 0:
            sections.append(f"<h2>{html.escape(title)}</h2><p>none</p>")
            continue
        heatmaps, class_index = heatmaps_of(model, images.images[indices], layer)
        tiles = "".join(
            _tile(
                images.images[i],
                heatmaps[k],
                f"{images.paths[i]}: {images.classes[images.labels[i]]}, predicted "
                f"{images.classes[class_index[k]]} ({probabilities[i].max():.2f})",
            )
            for k, i in enumerate(indices)
        )
        sections.append(f"<h2>{html.escape(title)}</h2>{tiles}")
    method = explanation_method(model, layer)
    body = f"""<h1>{html.escape(model_name)}: where the model looks ({html.escape(method.split(":")[0])})</h1>
<p>Each case shows the image and the evidence for the predicted class, by {html.escape(method)}
(red: strongest). {len(images.labels)} images considered.</p>
{"".join(sections)}
{_feedback_html(feedback or [])}"""
    return html_page(f"{model_name} Grad-CAM", body)


def render_gradcam_summary(
    images: ImageSet, probabilities: np.ndarray, model_name: str, count: int = 8, feedback: list | None = None
) -> str:
    """Markdown for the dashboard: which images the report shows, per case, and the operator feedback so far."""
    lines = [f"# {model_name}: where the model looks (Grad-CAM)", "", "| case | image | label | predicted (P) |"]
    lines.append("| --- | --- | --- | --- |")
    for title, indices in pick_cases(images.labels, probabilities, count).items():
        for i in indices:
            predicted = int(probabilities[i].argmax())
            label, guess = images.classes[images.labels[i]], images.classes[predicted]
            lines.append(f"| {title} | {images.paths[i]} | {label} | {guess} ({probabilities[i, predicted]:.2f}) |")
    verdicts = collections.Counter(f.verdict for f in feedback or [])
    said = ", ".join(f"{verdict}: {n}" for verdict, n in sorted(verdicts.items())) or "none yet"
    lines += ["", f"Operator feedback on earlier explanations: {said}."]
    return "\n".join(lines) + "\n"
