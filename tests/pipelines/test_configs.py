"""The example configs shipped with the package document exactly the built-in defaults of their scenario."""

from pathlib import Path

import pytest

from shopfloor import pipelines
from shopfloor.families.scenarios import load_config
from shopfloor.pipelines.scenarios import SCENARIOS


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_example_config_equals_defaults(name: str) -> None:
    scenario = SCENARIOS[name]
    path = Path(pipelines.__file__).parent / "configs" / scenario.compiled_file
    assert load_config(path, name) == scenario.config_model()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_pipeline_defaults_match_config_defaults(name: str) -> None:
    """The dashboard's defaults and `shopfloor run`'s defaults are the same values."""
    scenario = SCENARIOS[name]
    arguments = scenario.arguments(scenario.config_model())
    inputs = scenario.pipeline.component_spec.inputs
    for argument, value in arguments.items():
        if argument in ("sensors_uri", "events_uri", "data_root"):
            assert inputs[argument].default is None
        else:
            assert inputs[argument].default == value, argument
