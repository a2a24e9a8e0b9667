"""Explanation of the anomaly detector: which sensors the autoencoder cannot reconstruct, overall and per alarm.

The detector's score is the mean reconstruction error of a window (standard units), and the model's second output
is the same error per sensor, so the explanation needs no gradients and matches what the served explainer answers.
Importance is each sensor's share of the error on the test windows in alarm: what sets the alarms off. The report
compares each sensor's error on abnormal and normal test windows, and lists the strongest alarms with the sensors
that drove them.
"""

from __future__ import annotations

import dataclasses
import html

import numpy as np

from shopfloor.common.plots import figure_png, figures_html, html_page
from shopfloor.contracts.windows import LabelledWindows

__all__ = ["DetectorExplanation", "explain_detector", "render_detector_report", "render_detector_summary"]

_TOP_SENSORS = 3


@dataclasses.dataclass(frozen=True)
class DetectorExplanation:
    """Per-sensor reconstruction errors of the test windows, and what they add up to."""

    features: list[str]
    threshold: float
    scores: np.ndarray  # [windows]
    feature_errors: np.ndarray  # [windows, sensors]
    labels: np.ndarray  # 1 = abnormal
    assets: np.ndarray
    importance: dict[str, float]

    @property
    def alarms(self) -> np.ndarray:
        """Whether each test window raises an alarm at the trained threshold."""
        return self.scores >= self.threshold

    def mean_error(self, abnormal: bool) -> np.ndarray:
        """Mean error per sensor over the abnormal (or normal) test windows; NaN where there are none."""
        chosen = self.feature_errors[self.labels == int(abnormal)]
        return chosen.mean(axis=0) if len(chosen) else np.full(len(self.features), np.nan)

    def strongest_alarms(self, count: int) -> np.ndarray:
        """Indices of the ``count`` highest-scoring windows in alarm, strongest first."""
        in_alarm = np.flatnonzero(self.alarms)
        return in_alarm[np.argsort(-self.scores[in_alarm], kind="stable")][:count]

    def top_sensors(self, index: int) -> list[str]:
        """The sensors with the largest error in one window, largest first."""
        order = np.argsort(-self.feature_errors[index], kind="stable")[:_TOP_SENSORS]
        return [self.features[i] for i in order]


def explain_detector(model, windows: LabelledWindows, threshold: float) -> DetectorExplanation:
    """Score every test window and split its error by sensor; importance from the windows in alarm.

    With no test window in alarm, importance comes from all test windows (what the model finds hardest).
    """
    test = windows.part("test")
    outputs = model.predict(test.x, batch_size=2048, verbose=0)
    scores = np.asarray(outputs["score"]).reshape(-1)
    errors = np.asarray(outputs["feature_errors"]).reshape(len(scores), len(windows.features))
    in_alarm = errors[scores >= threshold]
    per_sensor = (in_alarm if len(in_alarm) else errors).mean(axis=0)
    share = per_sensor / max(float(per_sensor.sum()), 1e-12)
    importance = dict(zip(windows.features, share.round(6).tolist(), strict=True))
    return DetectorExplanation(windows.features, threshold, scores, errors, test.failure, test.asset, importance)


def _ranked(explanation: DetectorExplanation) -> list[str]:
    """Sensors from most to least important."""
    return sorted(explanation.importance, key=lambda name: explanation.importance[name], reverse=True)


def render_detector_report(explanation: DetectorExplanation, model_name: str, count: int = 10) -> str:
    """HTML: error per sensor on abnormal vs normal windows, the importance table and the strongest alarms."""
    ranked = _ranked(explanation)
    position = {name: i for i, name in enumerate(explanation.features)}
    abnormal, normal = explanation.mean_error(True), explanation.mean_error(False)

    def bars(ax):
        rows = np.arange(len(ranked))
        ax.barh(rows + 0.2, [abnormal[position[f]] for f in ranked], height=0.4, color="#b22", label="abnormal")
        ax.barh(rows - 0.2, [normal[position[f]] for f in ranked], height=0.4, color="#26b", label="normal")
        ax.set(yticks=rows, yticklabels=ranked, xlabel="mean reconstruction error (standard units)")
        ax.set_title("Error per sensor on test windows")
        ax.invert_yaxis()
        ax.legend()

    importance_rows = "".join(
        f"<tr><td>{html.escape(f)}</td><td>{explanation.importance[f]:.1%}</td>"
        f"<td>{abnormal[position[f]]:.4g}</td><td>{normal[position[f]]:.4g}</td></tr>"
        for f in ranked
    )
    alarm_rows = "".join(
        f"<tr><td>{html.escape(str(explanation.assets[i]))}</td><td>{explanation.scores[i]:.4g}</td>"
        f"<td>{'abnormal' if explanation.labels[i] else 'normal (false alarm)'}</td>"
        f"<td>{html.escape(', '.join(explanation.top_sensors(i)))}</td></tr>"
        for i in explanation.strongest_alarms(count)
    )
    alarms = int(explanation.alarms.sum())
    body = f"""<h1>{html.escape(model_name)}: which sensors the detector cannot reconstruct</h1>
<p>{len(explanation.scores)} test windows, {alarms} in alarm at the threshold {explanation.threshold:.4g}. A window's
score is its mean reconstruction error; importance is each sensor's share of the error in the windows in alarm.</p>
<table><tr><th>sensor</th><th>share of alarm error</th><th>mean error, abnormal</th><th>mean error, normal</th></tr>
{importance_rows}</table>
{figures_html({"Error per sensor": figure_png(bars)})}
<h2>Strongest alarms</h2>
<table><tr><th>asset</th><th>score</th><th>label</th><th>sensors with the largest error</th></tr>{alarm_rows}</table>"""
    return html_page(f"{model_name} explanations", body)


def render_detector_summary(explanation: DetectorExplanation, model_name: str) -> str:
    """Markdown for the dashboard: sensors ranked by their share of the error in alarms."""
    lines = [
        f"# {model_name}: sensors behind the alarms",
        "",
        f"{int(explanation.alarms.sum())} of {len(explanation.scores)} test windows in alarm.",
        "",
        "| sensor | share of alarm error |",
        "| --- | --- |",
    ]
    lines += [f"| {f} | {explanation.importance[f]:.1%} |" for f in _ranked(explanation)]
    return "\n".join(lines) + "\n"
