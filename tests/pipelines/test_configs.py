"""The example config shipped with the package documents exactly the built-in defaults."""

from pathlib import Path

import pipelines
from components.common.config import PredictiveMaintenanceConfig, load_config
from pipelines.predictive_maintenance import pipeline_arguments, predictive_maintenance


def test_example_config_equals_defaults() -> None:
    path = Path(pipelines.__file__).parent / "configs" / "predictive_maintenance.yaml"
    assert load_config(path) == PredictiveMaintenanceConfig()


def test_pipeline_defaults_match_config_defaults() -> None:
    """The dashboard's defaults and `shopfloor run`'s defaults are the same values."""
    arguments = pipeline_arguments(PredictiveMaintenanceConfig())
    inputs = predictive_maintenance.component_spec.inputs
    for name, value in arguments.items():
        if name in ("sensors_uri", "events_uri"):
            assert inputs[name].default is None
        else:
            assert inputs[name].default == value, name
