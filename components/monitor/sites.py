"""Drift and performance by site: each site against its own training readings and test metrics, with its settings.

Sites differ in sensors, noise and operating point, so the fleet's mixture hides a site that drifts (and a batch
from one site looks drifted against the mixture when it is not). The reference is the ingest profile's ``sites``
section (one table profile per site); a site is judged on the sensors it measured in training (and, with a
``features`` overlay, only those), with its ``monitor`` overlay's thresholds (the fleet's in the pipeline's
monitor step, which gets only the monitor section). A site that drifted makes the run's result drifted, and the
summary (which the retrain request quotes) names it; the decision names it too (``MonitorResult.flagged_sites``).

Where a site's readings come from: a sensor batch (``--batch``, ``--from-source``) has the site column. Served
payloads carry no site, but a fleet model's server answers each site on an endpoint of its own, ``<model>-<site>``
(the sites are the published model's ``fleet.sites``), which logs its payloads under that name: each endpoint's
logs are that site's served readings. With labels, each site endpoint's labelled windows are also measured against
that site's test metrics (the evaluation's ``site/<site>/<metric>``) at the threshold the endpoint answers with.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from shopfloor.common.fleet import SITE_COLUMN, site_view
from shopfloor.common.storage import join_uri, read_json
from shopfloor.components.monitor.drift import DriftReport, DriftThresholds, detect_drift
from shopfloor.components.monitor.performance import Performance, labelled_scores, measure_performance
from shopfloor.contracts.model_artifact import MODEL_INFO, PROFILE_FILE
from shopfloor.contracts.model_artifact import site_endpoints as site_endpoints_of

if TYPE_CHECKING:
    from shopfloor.common.config import MonitorConfig
    from shopfloor.components.monitor.records import CurrentWindow, MonitorResult, Reference

__all__ = [
    "NO_SITES_IN_PAYLOADS",
    "SiteDrift",
    "SiteEndpoint",
    "batch_site_drift",
    "drift_thresholds",
    "served_site_drift",
    "site_drift",
    "site_endpoints",
    "site_metrics",
    "site_monitor_settings",
    "site_performance",
    "site_test_metrics",
    "with_site_drift",
    "with_site_performance",
]

NO_SITES_IN_PAYLOADS = (
    "no drift by site: the served model has no site endpoints (<model>-<site>, a fleet model's) and no batch with "
    "a site column was given (--batch, --from-source)"
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


def drift_thresholds(settings: MonitorConfig) -> DriftThresholds:
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


def _overlay_features(config: object | None) -> dict[str, list[str] | None]:
    """Each overlaid site's ``features`` list (None: every sensor it measured in training)."""
    overlays = getattr(config, "sites", {}) or {}
    return {site: getattr(overlay, "features", None) for site, overlay in overlays.items()}


def _judge_site(
    name: str,
    rows: pd.DataFrame,
    profile_sites: dict,
    features: list[str],
    settings: MonitorConfig,
    overlay_features: list[str] | None,
) -> SiteDrift | None:
    """One site's readings against its own profile with its settings; None when training never saw the site."""
    if name not in profile_sites:
        return None  # a site training never saw has no reference; the fleet's drift still covers its readings
    columns = profile_sites[name]["columns"]
    judged = _site_features(columns, features, overlay_features)
    if not judged:
        return None
    readings = rows[judged].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    report = detect_drift(readings, judged, {f: columns[f] for f in judged}, drift_thresholds(settings))
    drifted = report.enough_data and report.share_drifted >= settings.min_share_drifted
    return SiteDrift(site=name, report=report, features=judged, drifted=drifted)


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
        judged = _judge_site(
            name, rows, profile_sites, features, by_site.get(name, fleet), (site_features or {}).get(name)
        )
        if judged is not None:
            found[name] = judged
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
    by_site = site_monitor_settings(config)
    return site_drift(table, profile["sites"], reference.features, fleet, by_site, _overlay_features(config))


@dataclasses.dataclass(frozen=True)
class SiteEndpoint:
    """A fleet model's site endpoint: its site, the name it serves and logs payloads under, its alarm threshold."""

    site: str
    model_name: str
    threshold: float


def site_endpoints(version_uri: str, model_name: str, default_threshold: float) -> list[SiteEndpoint]:
    """The site endpoints a server loads for a published version: its model's ``fleet.sites`` ([] if not a fleet).

    The same reading of the model's fleet record as the server's (``contracts.model_artifact.site_endpoints``).
    """
    served = site_endpoints_of(read_json(join_uri(version_uri, "model", MODEL_INFO)))
    return [
        SiteEndpoint(
            site=e.site,
            model_name=f"{model_name}-{e.site}",
            threshold=default_threshold if e.threshold is None else e.threshold,
        )
        for e in served
    ]


def served_site_drift(
    site_windows: dict[str, CurrentWindow],
    version_uri: str,
    reference: Reference,
    fleet: MonitorConfig,
    config: object | None,
) -> dict[str, SiteDrift]:
    """Drift of each site endpoint's served readings against that site's profile ({} if the profile has no sites).

    Every endpoint is judged, one that served nothing as "not enough to judge", so a silent site shows.
    """
    if not site_windows:
        return {}
    profile = read_json(join_uri(version_uri, PROFILE_FILE))
    if not profile.get("sites"):
        return {}
    by_site, overlays = site_monitor_settings(config), _overlay_features(config)
    found = {}
    for site, window in sorted(site_windows.items()):
        rows = pd.DataFrame(window.readings, columns=reference.features)
        judged = _judge_site(
            site, rows, profile["sites"], reference.features, by_site.get(site, fleet), overlays.get(site)
        )
        if judged is not None:
            found[site] = judged
    return found


def with_site_drift(
    result: MonitorResult,
    batch_uri: str,
    version_uri: str,
    reference: Reference,
    fleet: MonitorConfig,
    config: object | None,
    site_windows: dict[str, CurrentWindow] | None = None,
) -> MonitorResult:
    """The monitoring result with drift by site: drifted when the fleet or any site drifted, the sites named.

    The sites' readings come from the batch (``batch_uri``) or else from the site endpoints' payload logs
    (``site_windows``: site -> its current window). ``config`` is the scenario config (its ``sites:`` overlays);
    ``None`` (the pipeline's monitor step, which gets only the monitor section) judges sites with the fleet's
    settings. A fleet config with neither source is told so in the summary.
    """
    if batch_uri:
        found = batch_site_drift(batch_uri, version_uri, reference, fleet, config)
    else:
        found = served_site_drift(site_windows or {}, version_uri, reference, fleet, config)
    if not found:
        told = not batch_uri and not site_windows and bool(getattr(config, "sites", None))
        return dataclasses.replace(result, summary=f"{result.summary}; {NO_SITES_IN_PAYLOADS}") if told else result
    drifted = sorted(name for name, site in found.items() if site.drifted)
    shown = [found[name].summary for name in drifted] or [f"no site drifted ({', '.join(found)})"]
    return dataclasses.replace(
        result,
        sites=found,
        drifted=result.drifted or bool(drifted),
        summary=f"{result.summary}; " + "; ".join(shown),
    )


def site_test_metrics(test_metrics: dict[str, float], site: str) -> dict[str, float]:
    """A site's own test metrics out of the evaluation's (``site/<site>/<metric>`` keys), by metric name."""
    prefix = f"site/{site}/"
    return {key[len(prefix) :]: value for key, value in test_metrics.items() if key.startswith(prefix)}


def site_performance(
    served: dict[str, list],
    endpoints: list[SiteEndpoint],
    labels: pd.DataFrame,
    reference: Reference,
    score_output: str,
    fleet: MonitorConfig,
    config: object | None,
) -> dict[str, Performance]:
    """Each site endpoint's labelled windows against that site's test metrics, at the threshold it answers with.

    ``served`` maps a site to its endpoint's payload records. A site none of whose windows got a label is left out;
    request ids are unique, so a label of another site's request is not counted as unmatched here.
    """
    by_site = site_monitor_settings(config)
    found = {}
    for endpoint in endpoints:
        mine = [r for r in served.get(endpoint.site, []) if r.model_version == reference.model_version]
        y, scores, _ = labelled_scores(mine, labels, score_output)
        if not y.size:
            continue
        settings = by_site.get(endpoint.site, fleet)
        found[endpoint.site] = measure_performance(
            y,
            scores,
            endpoint.threshold,
            site_test_metrics(reference.test_metrics, endpoint.site),
            settings.max_performance_drop,
            settings.min_labels,
        )
    return found


def with_site_performance(result: MonitorResult, found: dict[str, Performance]) -> MonitorResult:
    """The result with each site's performance; the summary names a site whose performance degraded."""
    degraded = [f"site {name}: {found[name].summary}" for name in sorted(found) if found[name].degraded]
    summary = "; ".join([result.summary, *degraded])
    return dataclasses.replace(result, site_performance=found, summary=summary)


def site_metrics(found: dict[str, SiteDrift], performance: dict[str, Performance] | None = None) -> dict[str, float]:
    """Flat per-site values for the dashboard: ``site/<site>/share_drifted``, ``.../drifted``, ``.../readings``.

    With labels also ``site/<site>/labelled_windows``, ``.../performance_degraded`` and ``.../<metric>_on_labels``.
    """
    values = {}
    for name, site in sorted(found.items()):
        values[f"site/{name}/share_drifted"] = float(site.report.share_drifted)
        values[f"site/{name}/drifted"] = float(site.drifted)
        values[f"site/{name}/readings"] = float(site.report.rows)
    for name, measured in sorted((performance or {}).items()):
        values[f"site/{name}/labelled_windows"] = float(measured.labelled)
        values[f"site/{name}/performance_degraded"] = float(measured.degraded)
        for metric, value in sorted(measured.metrics.items()):
            values[f"site/{name}/{metric}_on_labels"] = float(value)
    return values
