"""Grad-CAM for the visual-inspection CNN: where in the image the evidence for a class lies.

Gradients of the class's logit with respect to the feature maps of the last convolution (``last_conv``), averaged
over space, weigh those maps; their positive sum, resized bilinearly to the image and scaled to [0, 1], is the
heatmap. The logit (the softmax's input, recomputed from the class layer's weights) is used rather than the
probability, whose gradient vanishes on confident predictions. The report shows the most confidently wrong and the
most confident images of a split with their heatmaps overlaid, so an operator sees what the model looks at.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io

import numpy as np
from PIL import Image

from components.common.plots import html_page
from components.train.vision import LAST_CONV, ImageSet, predict_probabilities

__all__ = ["GradCam", "box_mass", "gradcam", "overlay", "pick_cases", "render_gradcam_report"]

_CLASS_LAYER = "probabilities"
_SHOWN_SIZE = 128


@dataclasses.dataclass(frozen=True)
class GradCam:
    """Heatmaps [n, height, width] in [0, 1], the class each explains, and the model's probabilities [n, classes]."""

    heatmaps: np.ndarray
    class_index: np.ndarray
    probabilities: np.ndarray


def gradcam(  # noqa: ANN001
    model, images: np.ndarray, class_index: int | np.ndarray | None = None, layer: str = LAST_CONV, batch_size: int = 64
) -> GradCam:
    """Grad-CAM heatmaps of raw images [n, height, width, channels] for the predicted (or the given) class."""
    import keras
    import tensorflow as tf

    head = model.get_layer(_CLASS_LAYER)
    probe = keras.Model(model.inputs, [model.get_layer(layer).output, head.input, model.output])
    height, width = images.shape[1:3]
    heatmaps, chosen, probabilities = [], [], []
    for start in range(0, len(images), batch_size):
        batch = tf.convert_to_tensor(images[start : start + batch_size].astype(np.float32))
        with tf.GradientTape() as tape:
            features, pooled, probs = probe(batch, training=False)
            logits = tf.matmul(pooled, head.kernel) + head.bias
            if class_index is None:
                wanted = tf.argmax(probs, axis=1, output_type=tf.int32)
            else:
                wanted = tf.cast(np.broadcast_to(class_index, (len(batch),))[: len(batch)], tf.int32)
            target = tf.gather(logits, wanted, axis=1, batch_dims=1)
        gradients = tape.gradient(target, features)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1, keepdims=True))
        cam = tf.image.resize(cam, (height, width), method="bilinear")[..., 0].numpy()
        peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
        heatmaps.append(np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0))
        chosen.append(wanted.numpy())
        probabilities.append(probs.numpy())
    return GradCam(
        heatmaps=np.concatenate(heatmaps) if heatmaps else np.zeros((0, height, width), np.float32),
        class_index=np.concatenate(chosen) if chosen else np.zeros(0, np.int32),
        probabilities=np.concatenate(probabilities) if probabilities else np.zeros((0, model.output_shape[-1])),
    )


def box_mass(heatmap: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """The share of a heatmap's total inside the pixel box (x_min, y_min, x_max, y_max), half-open; 0 if empty."""
    x_min, y_min, x_max, y_max = box
    total = float(heatmap.sum())
    return float(heatmap[y_min:y_max, x_min:x_max].sum()) / total if total > 0 else 0.0


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The image as RGB uint8 with the heatmap blended over it in the 'jet' colour map."""
    import matplotlib

    colours = matplotlib.colormaps["jet"](np.clip(heatmap, 0.0, 1.0))[..., :3] * 255.0
    base = image if image.ndim == 3 and image.shape[-1] == 3 else np.repeat(image.reshape(*image.shape[:2], 1), 3, -1)
    return np.clip((1 - alpha) * base.astype(np.float64) + alpha * colours, 0, 255).astype(np.uint8)


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


def render_gradcam_report(  # noqa: ANN001
    model, images: ImageSet, model_name: str, count: int = 8, layer: str = LAST_CONV
) -> str:
    """A self-contained HTML grid of the most confidently wrong and most confident images with their heatmaps."""
    probabilities = predict_probabilities(model, images.images)
    sections = []
    for title, indices in pick_cases(images.labels, probabilities, count).items():
        if indices.size == 0:
            sections.append(f"<h2>{html.escape(title)}</h2><p>none</p>")
            continue
        cams = gradcam(model, images.images[indices], layer=layer)
        tiles = "".join(
            _tile(
                images.images[i],
                cams.heatmaps[k],
                f"{images.paths[i]}: {images.classes[images.labels[i]]}, predicted "
                f"{images.classes[cams.class_index[k]]} ({probabilities[i].max():.2f})",
            )
            for k, i in enumerate(indices)
        )
        sections.append(f"<h2>{html.escape(title)}</h2>{tiles}")
    body = f"""<h1>{html.escape(model_name)}: where the model looks (Grad-CAM)</h1>
<p>Each case shows the image and the evidence for the predicted class on layer {html.escape(layer)}
(red: strongest). {len(images.labels)} images considered.</p>
{"".join(sections)}"""
    return html_page(f"{model_name} Grad-CAM", body)
