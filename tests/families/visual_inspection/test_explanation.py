"""Grad-CAM: on dented parts the model's evidence lies where the dent was drawn (defects.csv)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopfloor.families.visual_inspection.explanation import box_mass, pick_cases, render_gradcam_report
from shopfloor.families.visual_inspection.inference import gradcam, overlay
from shopfloor.families.visual_inspection.model import predict_probabilities


def test_box_mass():
    heatmap = np.zeros((8, 8))
    heatmap[2:4, 2:4] = 1.0
    heatmap[7, 7] = 4.0
    assert box_mass(heatmap, (2, 2, 4, 4)) == 0.5
    assert box_mass(np.zeros((8, 8)), (0, 0, 8, 8)) == 0.0


def _found_dents(vision_trained):
    """The model, the correctly classified dented test images, their dent boxes (defects.csv) and the dent index."""
    test = vision_trained.images.part("test")
    model = vision_trained.result.model
    probabilities = predict_probabilities(model, test.images)
    dent = test.classes.index("dent")
    found = np.flatnonzero((test.labels == dent) & (probabilities.argmax(axis=1) == dent))
    boxes = pd.read_csv(vision_trained.root / "defects.csv").set_index("path")
    box_list = [
        tuple(int(v) for v in boxes.loc[path, ["x_min", "y_min", "x_max", "y_max"]]) for path in test.paths[found]
    ]
    return model, test.images[found], box_list, dent


def _repaint(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The image with the box filled by the median of the 2 pixels around it: the surface without what the box held."""
    x_min, y_min, x_max, y_max = box
    out = image.astype(np.float32)
    around = np.concatenate(
        [
            out[max(y_min - 2, 0) : y_min, x_min:x_max].ravel(),
            out[y_max : y_max + 2, x_min:x_max].ravel(),
            out[y_min:y_max, max(x_min - 2, 0) : x_min].ravel(),
            out[y_min:y_max, x_max : x_max + 2].ravel(),
        ]
    )
    out[y_min:y_max, x_min:x_max] = np.median(around)
    return out


def test_heatmaps_fall_on_the_defect(vision_trained):
    model, images, box_list, dent = _found_dents(vision_trained)
    assert len(images) >= 10
    cams = gradcam(model, images)
    assert cams.heatmaps.shape == (len(images), 64, 64)
    assert cams.heatmaps.min() >= 0 and np.allclose(cams.heatmaps.max(axis=(1, 2)), 1.0)
    assert (cams.class_index == dent).all()

    def masses_of(heatmaps: np.ndarray) -> np.ndarray:
        return np.array([box_mass(heatmap, box) for heatmap, box in zip(heatmaps, box_list, strict=True)])

    masses = masses_of(cams.heatmaps)
    shares = np.array([(box[2] - box[0]) * (box[3] - box[1]) / (64 * 64) for box in box_list])
    # the box holds ~5% of the image; a heatmap blind to the dent would put ~5% of its mass there. Measured with this
    # fixture: 58% of the mass inside the box on average, a median of 12.5x the box's share (61% and 62%, 13x, with
    # CNN seeds 1 and 2; 0.56-0.60 with 450 images and seeds 7, 1, 2, 3; 0.53-0.58 with 300 images)
    assert np.mean(masses) > 0.5
    assert np.median(masses / shares) > 8.0
    # the plain sum of the weighted maps (no eigen smoothing) keeps a faint floor and stray spots: 52% measured; and
    # its raw-logit target (original Grad-CAM) also maps evidence shared by all classes: 40%
    plain = masses_of(gradcam(model, images, smoothing="none").heatmaps)
    assert np.mean(masses) > np.mean(plain)
    logit = masses_of(gradcam(model, images, target="logit", smoothing="none").heatmaps)
    assert np.mean(plain) > np.mean(logit)


def test_the_model_needs_what_the_heatmap_points_at(vision_trained):
    """Counterfactual check: repainting the heatmap's hottest spot removes the dent, repainting elsewhere does not."""
    model, images, box_list, dent = _found_dents(vision_trained)
    heatmaps = gradcam(model, images).heatmaps
    at_peak, elsewhere = [], []
    for image, heatmap, box in zip(images, heatmaps, box_list, strict=True):
        width, height = box[2] - box[0], box[3] - box[1]
        y, x = np.unravel_index(heatmap.argmax(), heatmap.shape)
        x_min, y_min = int(np.clip(x - width // 2, 0, 64 - width)), int(np.clip(y - height // 2, 0, 64 - height))
        at_peak.append(_repaint(image, (x_min, y_min, x_min + width, y_min + height)))
        shift = 24 if box[0] < 32 else -24
        elsewhere.append(_repaint(image, (box[0] + shift, box[1], box[2] + shift, box[3])))
    before = predict_probabilities(model, images)[:, dent]
    # measured: mean P(dent) 0.99 before, 0.02 with the peak repainted, 0.99 with as large a square 24 pixels away
    assert before.mean() > 0.9
    assert predict_probabilities(model, np.array(at_peak))[:, dent].mean() < 0.5
    assert predict_probabilities(model, np.array(elsewhere))[:, dent].mean() > 0.9


def test_explaining_another_class_gives_another_map(vision_trained):
    test = vision_trained.images.part("test")
    model = vision_trained.result.model
    images = test.images[predict_probabilities(model, test.images).argmax(axis=1) == 2][:4]
    predicted = gradcam(model, images)
    assert (predicted.class_index == 2).all()
    ok = gradcam(model, images, class_index=0)
    assert (ok.class_index == 0).all()
    assert not np.allclose(predicted.heatmaps, ok.heatmaps)


def test_overlay_and_cases():
    image = np.full((4, 4, 1), 100, np.uint8)
    blended = overlay(image, np.ones((4, 4)))
    assert blended.shape == (4, 4, 3) and blended.dtype == np.uint8
    assert (overlay(image, np.zeros((4, 4)), alpha=0.0) == 100).all()
    labels = np.array([0, 1, 0, 1])
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    cases = pick_cases(labels, probabilities, count=1)
    assert cases["most confidently wrong"].tolist() == [1] and cases["most confident"].tolist() == [0]


def test_report_grid(vision_trained):
    report = render_gradcam_report(vision_trained.result.model, vision_trained.images.part("test"), "parts", count=3)
    assert "most confidently wrong" in report and "most confident" in report
    assert 6 <= report.count("<img") <= 12 and "last_conv" in report
