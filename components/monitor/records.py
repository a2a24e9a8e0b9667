"""What one monitoring run compares and concludes: the reference, the current window, plant health, the result.

Shared by the monitoring logic and its report, so neither imports the other.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from shopfloor.components.monitor.drift import (
    DriftReport,
    FeatureDrift,
)
from shopfloor.components.monitor.performance import Performance
from shopfloor.families.registry import ModelKind

__all__ = [
    "CurrentWindow",
    "MonitorResult",
    "PlantHealth",
    "Reference",
]


@dataclasses.dataclass(frozen=True)
class Reference:
    """What a published model version was trained and tested on, and where it raises an alarm."""

    model_version: str
    features: list[str]
    window: int
    profile_columns: dict
    reference_scores: np.ndarray
    model_type: str = ModelKind.PREDICTIVE_MAINTENANCE.value
    alarm_threshold: float = 0.5
    test_metrics: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class PlantHealth:
    """The anomaly model's view of the plant over the window: how many windows it raised an alarm on."""

    windows: int
    alarms: int
    max_alarm_rate: float
    mean_score: float
    reference_mean_score: float

    @property
    def alarm_rate(self) -> float:
        """Share of windows in alarm."""
        return self.alarms / self.windows if self.windows else 0.0

    @property
    def abnormal(self) -> bool:
        """More windows in alarm than the configured limit."""
        return self.alarm_rate > self.max_alarm_rate

    @property
    def summary(self) -> str:
        """One phrase for reports and decisions."""
        return (
            f"plant health: {self.alarms} of {self.windows} windows in alarm ({self.alarm_rate:.1%}, "
            f"limit {self.max_alarm_rate:.1%}); mean anomaly score {self.mean_score:.3g} "
            f"(test data {self.reference_mean_score:.3g})"
        )


@dataclasses.dataclass(frozen=True)
class CurrentWindow:
    """The newest reading of each logged request, and the probabilities the server answered."""

    readings: np.ndarray
    scores: np.ndarray
    requests: int
    other_versions: dict[str, int]


@dataclasses.dataclass(frozen=True)
class MonitorResult:
    """Drift per sensor, drift of the predictions, and whether that amounts to drift of the model's world."""

    drift: DriftReport
    predictions: FeatureDrift | None
    drifted: bool
    summary: str
    health: PlantHealth | None = None
    performance: Performance | None = None
    sites: dict = dataclasses.field(default_factory=dict)  # site -> ``sites.SiteDrift`` (a batch or site endpoints)
    site_performance: dict[str, Performance] = dataclasses.field(default_factory=dict)  # site endpoints' labels

    @property
    def flagged_sites(self) -> tuple[str, ...]:
        """The sites that drifted or whose performance degraded, sorted: what a retrain is for (() = the fleet)."""
        drifted = {name for name, site in self.sites.items() if site.drifted}
        degraded = {name for name, found in self.site_performance.items() if found.degraded}
        return tuple(sorted(drifted | degraded))
