"""The scenarios ``shopfloor`` knows: each pairs a pipeline with its config schema, arguments and demo data."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

from shopfloor.demo.parts import write_parts_data
from shopfloor.demo.plant import write_plant_data
from shopfloor.families.anomaly_detection.config import AnomalyDetectionConfig
from shopfloor.families.predictive_maintenance.config import PredictiveMaintenanceConfig
from shopfloor.families.scenarios import ScenarioConfig
from shopfloor.families.visual_inspection.config import VisualInspectionConfig
from shopfloor.pipelines import anomaly_detection, visual_inspection
from shopfloor.pipelines.predictive_maintenance import pipeline_arguments, predictive_maintenance

__all__ = ["SCENARIOS", "Scenario"]


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A pipeline, the config model that feeds it, and how to make demo data for it."""

    name: str
    pipeline: Callable
    config_model: type[ScenarioConfig]
    arguments: Callable[..., dict]
    write_demo_data: Callable[[Path], Mapping[str, str | Path]]

    @property
    def compiled_file(self) -> str:
        """File name of the compiled YAML under ``pipelines/compiled/``."""
        return self.name.replace("-", "_") + ".yaml"


SCENARIOS: dict[str, Scenario] = {
    "predictive-maintenance": Scenario(
        name="predictive-maintenance",
        pipeline=predictive_maintenance,
        config_model=PredictiveMaintenanceConfig,
        arguments=pipeline_arguments,
        write_demo_data=write_plant_data,
    ),
    "anomaly-detection": Scenario(
        name="anomaly-detection",
        pipeline=anomaly_detection.anomaly_detection,
        config_model=AnomalyDetectionConfig,
        arguments=anomaly_detection.pipeline_arguments,
        write_demo_data=write_plant_data,
    ),
    "visual-inspection": Scenario(
        name="visual-inspection",
        pipeline=visual_inspection.visual_inspection,
        config_model=VisualInspectionConfig,
        arguments=visual_inspection.pipeline_arguments,
        write_demo_data=write_parts_data,
    ),
}
