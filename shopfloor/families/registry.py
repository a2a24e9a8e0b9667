"""The model-family registry: a key names a family; steps, pipelines, the server and the monitor ask here.

The three built-in families are registered below. Another package adds a family without a line changed here or
in the steps: it declares an entry point in the group ``shopfloor.families`` (``key = package.module:FamilyClass``),
and every process that has the package installed (a step's container, the local runner's subprocesses) finds it.
Families are imported when first asked for, so the registry itself imports no model code.
"""

from __future__ import annotations

import enum
import functools
import importlib
from importlib import metadata

from shopfloor.common.errors import ConfigError
from shopfloor.families.base import ModelFamily

__all__ = ["ENTRY_POINT_GROUP", "ModelKind", "family", "family_keys"]

ENTRY_POINT_GROUP = "shopfloor.families"


class ModelKind(enum.StrEnum):
    """The built-in families' keys: the ``model_type`` their models carry and the scenario each serves."""

    PREDICTIVE_MAINTENANCE = "predictive-maintenance"
    ANOMALY_DETECTION = "anomaly-detection"
    VISUAL_INSPECTION = "visual-inspection"


_BUILT_IN: dict[str, str] = {
    ModelKind.PREDICTIVE_MAINTENANCE: "shopfloor.families.predictive_maintenance.family:PredictiveMaintenance",
    ModelKind.ANOMALY_DETECTION: "shopfloor.families.anomaly_detection.family:AnomalyDetection",
    ModelKind.VISUAL_INSPECTION: "shopfloor.families.visual_inspection.family:VisualInspection",
}


@functools.cache
def _locations() -> dict[str, str]:
    """Every registered family's ``module:attribute``, built-ins first; a plugin cannot replace a built-in."""
    found = {str(key): location for key, location in _BUILT_IN.items()}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry.value)
    return found


def family_keys() -> list[str]:
    """The keys of every registered family, sorted."""
    return sorted(_locations())


@functools.cache
def family(key: str) -> ModelFamily:
    """The family registered under ``key``; an unknown key is a one-line error naming the known ones."""
    location = _locations().get(str(key))
    if location is None:
        raise ConfigError("model family", f"unknown family {key!r}", field="family", expected=", ".join(family_keys()))
    module_name, _, attribute = location.partition(":")
    found = getattr(importlib.import_module(module_name), attribute)
    instance = found() if isinstance(found, type) else found
    if not isinstance(instance, ModelFamily) or str(instance.key) != str(key):
        raise ConfigError(
            location, f"is not the ModelFamily {key!r}", field="family", expected="a ModelFamily with that key"
        )
    return instance
