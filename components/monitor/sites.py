"""Drift by site: each site's readings against that site's own training readings, with that site's thresholds.

Sites differ in sensors, noise and operating point, so the fleet's mixture hides a site that drifts (and a batch
from one site looks drifted against the mixture when it is not). The reference is the ingest profile's ``sites``
section (one table profile per site); a site is judged on the sensors it measured in training (and, with a
``features`` overlay, only those), with its ``monitor`` overlay's thresholds. A site that drifted makes the run's
result drifted, and the summary (which the retrain request quotes) names it.

Where the site comes from: a sensor batch (``--batch``, ``--from-source``) has the site column. Payload records
carry no site (a served request is windows of numbers), so drift by site needs the site in the payloads; until
then the payload path is judged for the fleet only, and says so when the config has ``sites:``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from shopfloor.common.fleet import SITE_COLUMN, site_view
from shopfloor.common.storage import join_uri, read_json
from shopfloor.components.monitor.drift import DriftReport, DriftThresholds, detect_drift
from shopfloor.contracts.model_artifact import PROFILE_FILE

if TYPE_CHECKING:
    from shopfloor.common.config import MonitorConfig
    from shopfloor.components.monitor.records import MonitorResult, Reference

__all__ = [
    "NO_SITES_IN_PAYLOADS",
    "SiteDrift",
    "batch_site_drift",
    "site_drift",
    "site_metrics",
    "site_monitor_settings",
    "with_site_drift",
]

NO_SITES_IN_PAYLOADS = (
    "drift by site needs the site in payloads (served records carry none): use --batch or --from-source"
)


@dataclasses.dataclass(frozen=True)
class SiteDrift:
    """One site's drift over its own sensors, and whether enough of them drifted to act (its own threshold)."""

    site: str
    report: DriftReport
    features: list[str]
    drifted: bool

    @property
    def summary(self) -> str:
        """One phrase naming the site and what drifted."""
        if not self.report.enough_data:
            return f"site {self.site}: {self.report.rows} readings, not enough to judge"
        if self.report.drifted:
            return (
                f"site {self.site}: drift in {len(self.report.drifted)} of {len(self.features)} sensors "
                f"({', '.join(self.report.drifted)})"
            )
        return f"site {self.site}: no drift in {len(self.features)} sensors"


def site_monitor_settings(config: object) -> dict[str, MonitorConfig]:
    """Each overlaid site's ``monitor`` section (the fleet's with its overlay); sites without one use the fleet's."""
    return {site: site_view(cast(Any, config), site).monitor for site in sorted(getattr(config, "sites", {}) or {})}


def _thresholds(settings: MonitorConfig) -> DriftThresholds:
    """The drift thresholds of a monitor section."""
    return DriftThresholds(
        psi_threshold=settings.psi_threshold,
        alpha=settings.alpha,
        min_effect=settings.min_effect,
        min_rows=settings.min_rows,
    )


def _site_features(profile: dict, features: list[str], overlay_features: list[str] | None) -> list[str]:
    """The sensors a site is judged on: measured in its training readings, and in its overlay's list if any."""
    measured = [f for f in features if profile.get(f, {}).get("count", 0) > 0]
    return [f for f in measured if overlay_features is None or f in overlay_features]


def site_drift(
    table: pd.DataFrame,
    profile_sites: dict,
    features: list[str],
    fleet: MonitorConfig,
    by_site: dict[str, MonitorConfig],
    site_features: dict[str, list[str] | None] | None = None,
) -> dict[str, SiteDrift]:
    """Drift of every site in ``table`` that training saw, each against its own profile and with its own settings."""
    found = {}
    for site, rows in table.groupby(table[SITE_COLUMN].astype(str), sort=True):
        name = str(site)
        if name not in profile_sites:
            continue  # a site training never saw has no reference; the fleet's drift still covers its readings
        columns = profile_sites[name]["columns"]
        judged = _site_features(columns, features, (site_features or {}).get(name))
        if not judged:
            continue
        settings = by_site.get(name, fleet)
        readings = rows[judged].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        report = detect_drift(readings, judged, {f: columns[f] for f in judged}, _thresholds(settings))
        drifted = report.enough_data and report.share_drifted >= settings.min_share_drifted
        found[name] = SiteDrift(site=name, report=report, features=judged, drifted=drifted)
    return found


def batch_site_drift(
    batch_uri: str, version_uri: str, reference: Reference, fleet: MonitorConfig, config: object | None
) -> dict[str, SiteDrift]:
    """Drift by site of a sensor batch against the published version's per-site profile ({} if either has none)."""
    from shopfloor.common.tables import read_table

    table = read_table(batch_uri)
    profile = read_json(join_uri(version_uri, PROFILE_FILE))
    if SITE_COLUMN not in table.columns or not profile.get("sites"):
        return {}
    overlays = getattr(config, "sites", {}) or {}
    site_features = {site: getattr(overlay, "features", None) for site, overlay in overlays.items()}
    return site_drift(table, profile["sites"], reference.features, fleet, site_monitor_settings(config), site_features)


def with_site_drift(
    result: MonitorResult,
    batch_uri: str,
    version_uri: str,
    reference: Reference,
    fleet: MonitorConfig,
    config: object | None,
) -> MonitorResult:
    """The monitoring result with drift by site: drifted when the fleet or any site drifted, the sites named.

    ``config`` is the scenario config (its ``sites:`` overlays); ``None`` (the pipeline's monitor step, which
    gets only the monitor section) judges sites with the fleet's settings.
    """
    if not batch_uri:
        fleet_config = bool(getattr(config, "sites", None))
        return (
            dataclasses.replace(result, summary=f"{result.summary}; {NO_SITES_IN_PAYLOADS}") if fleet_config else result
        )
    found = batch_site_drift(batch_uri, version_uri, reference, fleet, config)
    if not found:
        return result
    drifted = sorted(name for name, site in found.items() if site.drifted)
    shown = [found[name].summary for name in drifted] or [f"no site drifted ({', '.join(found)})"]
    return dataclasses.replace(
        result,
        sites=found,
        drifted=result.drifted or bool(drifted),
        summary=f"{result.summary}; " + "; ".join(shown),
    )


def site_metrics(found: dict[str, SiteDrift]) -> dict[str, float]:
    """Flat per-site values for the dashboard: ``site/<site>/share_drifted``, ``.../drifted``, ``.../readings``."""
    values = {}
    for name, site in sorted(found.items()):
        values[f"site/{name}/share_drifted"] = float(site.report.share_drifted)
        values[f"site/{name}/drifted"] = float(site.drifted)
        values[f"site/{name}/readings"] = float(site.report.rows)
    return values
