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
from shopfloor.pipelines import anomaly_detection, predictive_maintenance, visual_inspection

__all__ = ["SCENARIOS", "Scenario"]


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A pipeline, the config model that feeds it, and how to make demo data for it.

    ``pipeline`` is what is compiled and submitted (with its search stage, which a config may switch off);
    ``build(search=False)`` is the same pipeline without the search stage, for local runs whose search is off.
    """

    name: str
    pipeline: Callable
    build: Callable[[bool], Callable]
    config_model: type[ScenarioConfig]
    arguments: Callable[..., dict]
    write_demo_data: Callable[[Path], Mapping[str, str | Path]]

    def pipeline_for(self, config: ScenarioConfig) -> Callable:
        """The pipeline a run of ``config`` needs: without the search stage when its search is off."""
        hpo = getattr(config, "hpo", None)
        return self.pipeline if hpo is None or hpo.enabled else self.build(False)

    @property
    def compiled_file(self) -> str:
        """File name of the compiled YAML under ``pipelines/compiled/``."""
        return self.name.replace("-", "_") + ".yaml"


SCENARIOS: dict[str, Scenario] = {
    "predictive-maintenance": Scenario(
        name="predictive-maintenance",
        pipeline=predictive_maintenance.predictive_maintenance,
        build=predictive_maintenance.build_pipeline,
        config_model=PredictiveMaintenanceConfig,
        arguments=predictive_maintenance.pipeline_arguments,
        write_demo_data=write_plant_data,
    ),
    "anomaly-detection": Scenario(
        name="anomaly-detection",
        pipeline=anomaly_detection.anomaly_detection,
        build=anomaly_detection.build_pipeline,
        config_model=AnomalyDetectionConfig,
        arguments=anomaly_detection.pipeline_arguments,
        write_demo_data=write_plant_data,
    ),
    "visual-inspection": Scenario(
        name="visual-inspection",
        pipeline=visual_inspection.visual_inspection,
        build=visual_inspection.build_pipeline,
        config_model=VisualInspectionConfig,
        arguments=visual_inspection.pipeline_arguments,
        write_demo_data=write_parts_data,
    ),
}
