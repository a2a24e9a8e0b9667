"""Scenario config files: YAML (local or s3://) -> the validated config of its scenario, errors in one line.

Each built-in scenario's config lives with its model family (``families.<kind>.config``); this module, above the
families, is the one place that knows all three.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeAlias

import yaml
from yaml.constructor import ConstructorError

from shopfloor.common.config import validated
from shopfloor.common.errors import ConfigError
from shopfloor.common.fleet import merge_overlay
from shopfloor.common.storage import is_s3_uri, join_uri, read_bytes
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


def _document(text: str, source: str) -> dict:
    """YAML text as a mapping; anything else (bad YAML, empty, a list) is a one-line error naming ``source``."""
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
    return document


def _with_base(document: dict, source: str, scenario: str | None, seen: tuple[str, ...]) -> dict:
    """``document`` over the config it ``extends`` (a path relative to ``source``'s folder, or s3://), recursively.

    The base is validated on its own first, so a mistake in it names the base file; mappings merge key by key.
    """
    base = document.get("extends")
    if base is None:
        return document
    if not isinstance(base, str) or not base:
        raise ConfigError(source, "extends is not a file name", field="extends", expected="a path to a base config")
    location = _canonical(base if is_s3_uri(base) or os.path.isabs(base) else join_uri(_folder(source), base))
    if location in seen:
        chain = " -> ".join((*seen, location))
        raise ConfigError(source, f"extends goes round in a circle: {chain}", field="extends")
    base_document = _with_base(_read_document(location), location, scenario, (*seen, location))
    _validated_document(base_document, location, scenario)
    own = {key: value for key, value in document.items() if key != "extends"}
    return merge_overlay({k: v for k, v in base_document.items() if k != "extends"}, own)


def _canonical(source: str) -> str:
    """One spelling per config file (an absolute local path, or the s3:// URI), to see a circle of ``extends``."""
    return source if is_s3_uri(source) else str(Path(source).resolve())


def _folder(source: str) -> str:
    """The folder of a config file (local path or s3:// URI), which its ``extends`` is relative to."""
    return source.rsplit("/", 1)[0] if is_s3_uri(source) else str(Path(source).resolve().parent)


def _validated_document(document: dict, source: str, scenario: str | None) -> ScenarioConfig:
    """A config mapping validated as its ``scenario`` (or the one given); errors name ``source``."""
    named = document.get("scenario", scenario or "predictive-maintenance")
    configs = scenario_configs()
    if not isinstance(named, str) or named not in configs:
        raise ConfigError(source, f"unknown scenario {named!r}", field="scenario", expected=", ".join(configs))
    if scenario is not None and named != scenario:
        raise ConfigError(source, f"a config for {named!r}, not {scenario!r}", field="scenario", expected=scenario)
    return validated(configs[named], {k: v for k, v in document.items() if k != "extends"}, source)


def parse_config(text: str, source: str, scenario: str | None = None) -> ScenarioConfig:
    """Parse YAML text into a validated config of its ``scenario`` (or the one given); errors name ``source``.

    A config may ``extends: base.yaml`` (relative to its own folder): it then says only what differs from the base,
    e.g. one plant of several that share everything else.
    """
    document = _with_base(_document(text, source), source, scenario, (_canonical(source),))
    return _validated_document(document, source, scenario)


def _read_text(location: str | os.PathLike) -> str:
    """A config file's text from a local path or S3 URI; unreadable or not UTF-8 is a one-line error."""
    try:
        raw = read_bytes(location)
    except Exception as exc:
        raise ConfigError(str(location), "cannot read config file", expected="an existing YAML file") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(str(location), "not UTF-8 text", expected="a YAML file") from None
    return text


def _read_document(location: str | os.PathLike) -> dict:
    """A config file as a mapping (a base that another config ``extends``)."""
    return _document(_read_text(location), str(location))


def load_config(location: str | os.PathLike | None, scenario: str | None = None) -> ScenarioConfig:
    """Load a scenario config from a local path or S3 URI; ``None`` gives the defaults of ``scenario``."""
    if location is None:
        return scenario_configs()[scenario or "predictive-maintenance"]()
    return parse_config(_read_text(location), str(location), scenario)
