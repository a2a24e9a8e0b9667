"""Scenario config -> pipeline parameters: the one mapping behind every pipeline's defaults and arguments.

A pipeline's parameter defaults are its scenario config's defaults, and ``shopfloor run`` (or a notebook) turns a
config file into arguments the same way, so the dashboard, a notebook and the CLI start from the same values.
Sections travel through ``as_parameter`` (JSON types, '' for null, which KFP parameters cannot hold).
"""

from __future__ import annotations

from typing import Any

from shopfloor.common.config import as_parameter
from shopfloor.common.fleet import sites_parameter
from shopfloor.common.sources import location_parameter
from shopfloor.families.anomaly_detection.config import AnomalyDetectionConfig
from shopfloor.families.predictive_maintenance.config import PredictiveMaintenanceConfig
from shopfloor.families.scenarios import ScenarioConfig
from shopfloor.families.visual_inspection.config import VisualInspectionConfig

__all__ = ["config_parameters", "image_data_parameters", "pipeline_arguments", "sensor_data_parameters"]


def config_parameters(config: ScenarioConfig) -> dict[str, Any]:
    """Every section a scenario config sets besides its data, under the pipeline parameter's name."""
    parameters: dict[str, Any] = {
        "labeling": as_parameter(config.labeling),
        "hyperparameters": as_parameter(config.model),
        "hpo": as_parameter(config.hpo, exclude={"workers"}),
        "hpo_workers": list(range(config.hpo.workers)),
        "gate": as_parameter(config.gate),
        "model_name": config.model_name,
        "deployment": as_parameter(config.deploy),
        "alerts": as_parameter(config.monitor.alerts),
    }
    if isinstance(config, VisualInspectionConfig):
        parameters["split"] = as_parameter(config.split)
        parameters["edge"] = as_parameter(config.edge)
        parameters["annotations"] = list(config.annotations)
    return parameters


def sensor_data_parameters(config: PredictiveMaintenanceConfig | AnomalyDetectionConfig) -> dict[str, Any]:
    """Where a sensor scenario's tables are and what their columns mean (the schema without locations).

    A fleet's per-site overlays (``sites:``) travel in the schema too (key ``sites``, only when there are any):
    every sensor step receives it already, and an overlay describes what the data of one site means.
    """
    return {
        "sensors_uri": location_parameter(config.data.sensors),
        "events_uri": location_parameter(config.data.events),
        "data_schema": {**config.data.schema_parameter(), **sites_parameter(config), **_fleet_parameter(config)},
    }


def _fleet_parameter(config: PredictiveMaintenanceConfig | AnomalyDetectionConfig) -> dict[str, Any]:
    """A non-default ``fleet`` section (model strategy) as it travels in ``data_schema``; {} otherwise.

    Only a changed section travels, so a plain config's pipeline parameters (and the compiled defaults) stay as
    they were.
    """
    fleet = getattr(config, "fleet", None)
    if fleet is None or not fleet.model_dump(mode="json", exclude_defaults=True):
        return {}
    return {"fleet": fleet.model_dump(mode="json")}


def image_data_parameters(config: VisualInspectionConfig) -> dict[str, Any]:
    """Where an image scenario's photos are and how they are read."""
    return {"data_root": config.data_root, "image_schema": as_parameter(config.data)}


def pipeline_arguments(data: dict[str, Any], config: ScenarioConfig, model_store_uri: str | None) -> dict[str, Any]:
    """Arguments of one run: the data's parameters, every config section, and the model store if given."""
    arguments = {**data, **config_parameters(config)}
    if model_store_uri is not None:
        arguments["model_store_uri"] = model_store_uri
    return arguments
