"""Scenario config files: YAML (local or s3://) -> the validated config of its scenario, errors in one line.

Each built-in scenario's config lives with its model family (``families.<kind>.config``); this module, above the
families, is the one place that knows all three.
"""

from __future__ import annotations

import os
from typing import Any, TypeAlias

import yaml
from yaml.constructor import ConstructorError

from shopfloor.common.config import validated
from shopfloor.common.errors import ConfigError
from shopfloor.common.storage import read_bytes
from shopfloor.families.anomaly_detection.config import AnomalyDetectionConfig
from shopfloor.families.predictive_maintenance.config import PredictiveMaintenanceConfig
from shopfloor.families.visual_inspection.config import VisualInspectionConfig

__all__ = [
    "ScenarioConfig",
    "load_config",
    "parse_config",
    "scenario_configs",
]


# One of the built-in scenarios' configs, each defined by its family.
ScenarioConfig: TypeAlias = PredictiveMaintenanceConfig | AnomalyDetectionConfig | VisualInspectionConfig


def scenario_configs() -> dict[str, type[ScenarioConfig]]:
    """Every scenario's config model by name."""
    return {
        "predictive-maintenance": PredictiveMaintenanceConfig,
        "anomaly-detection": AnomalyDetectionConfig,
        "visual-inspection": VisualInspectionConfig,
    }


class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader; a value its constructors refuse (``!!int x``, ``2026-02-30``) is an error at its line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """Construct one node, turning a constructor's own exception into a ``ConstructorError`` marking the node."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            raise ConstructorError(None, None, f"cannot read this value: {exc}", node.start_mark) from None


def parse_config(text: str, source: str, scenario: str | None = None) -> ScenarioConfig:
    """Parse YAML text into a validated config of its ``scenario`` (or the one given); errors name ``source``."""
    try:
        document = yaml.load(text, Loader=_ConfigLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "unknown line"
        problem = getattr(exc, "problem", None)
        raise ConfigError(source, f"not valid YAML at {where}" + (f" ({problem})" if problem else "")) from None
    except RecursionError:  # lists or mappings nested thousands deep: PyYAML builds them recursively
        raise ConfigError(source, "nested too deeply", expected="mappings and lists a few levels deep") from None
    if document is None:
        raise ConfigError(source, "empty config file", expected="a YAML mapping with a 'scenario' key")
    if not isinstance(document, dict):
        raise ConfigError(source, "top level is not a mapping", expected="keys such as scenario, data, labeling")
    named = document.get("scenario", scenario or "predictive-maintenance")
    configs = scenario_configs()
    if not isinstance(named, str) or named not in configs:
        raise ConfigError(source, f"unknown scenario {named!r}", field="scenario", expected=", ".join(configs))
    if scenario is not None and named != scenario:
        raise ConfigError(source, f"a config for {named!r}, not {scenario!r}", field="scenario", expected=scenario)
    return validated(configs[named], document, source)


def load_config(location: str | os.PathLike | None, scenario: str | None = None) -> ScenarioConfig:
    """Load a scenario config from a local path or S3 URI; ``None`` gives the defaults of ``scenario``."""
    if location is None:
        return scenario_configs()[scenario or "predictive-maintenance"]()
    try:
        raw = read_bytes(location)
    except Exception as exc:
        raise ConfigError(str(location), "cannot read config file", expected="an existing YAML file") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(str(location), "not UTF-8 text", expected="a YAML file") from None
    return parse_config(text, str(location), scenario)
