"""The drift report: a table per sensor and the reference vs. current distribution of each drifted one."""

from __future__ import annotations

import html
import urllib.parse

import numpy as np

from shopfloor.common.plots import figure_png, figures_html, html_page
from shopfloor.components.monitor.records import CurrentWindow, MonitorResult, Reference

__all__ = ["dashboard_link", "render_monitor_report"]


def _histogram(reference: dict, values: np.ndarray, name: str):
    """A drawing of the training histogram against the current readings of one sensor."""
    edges = np.asarray(reference["histogram"]["edges"], dtype=float)
    counts = np.asarray(reference["histogram"]["counts"], dtype=float)

    def draw(ax) -> None:
        ax.stairs(counts / max(counts.sum(), 1), edges, fill=True, alpha=0.4, label="training")
        present = values[np.isfinite(values)]
        if present.size:
            low, high = min(edges[0], present.min()), max(edges[-1], present.max())
            current, bins = np.histogram(present, bins=np.linspace(low, high, 30))
            ax.stairs(current / current.sum() * (len(bins) - 1) / (len(edges) - 1), bins, label="now")
        ax.set(title=name, xlabel="reading", ylabel="share")
        ax.legend()

    return draw


def _site_rows(result: MonitorResult) -> str:
    """The sites section: each site's drift against its own training readings and performance on its labels."""
    names = sorted(set(result.sites) | set(result.site_performance))
    if not names:
        return ""
    rows = []
    for name in names:
        found, measured = result.sites.get(name), result.site_performance.get(name)
        drift = html.escape(found.summary.split(": ", 1)[1]) if found is not None else "not judged"
        verdict = "DRIFT" if found is not None and found.drifted else "ok"
        if measured is not None and measured.degraded:
            verdict = f"{verdict}, DEGRADED" if verdict == "DRIFT" else "DEGRADED"
        rows.append(
            f'<tr class="{"drift" if verdict != "ok" else ""}"><td>{html.escape(name)}</td>'
            f"<td>{found.report.rows if found is not None else 0}</td>"
            f"<td>{found.report.share_drifted if found is not None else 0.0:.1%}</td><td>{drift}</td>"
            f"<td>{html.escape(measured.summary) if measured is not None else 'no labels'}</td><td>{verdict}</td></tr>"
        )
    return (
        "<h2>Sites</h2><p>Each site against its own training readings and test metrics.</p>"
        "<table><tr><th>site</th><th>readings</th><th>share drifted</th><th>drift</th><th>performance</th>"
        f"<th>verdict</th></tr>{''.join(rows)}</table>"
    )


def dashboard_link(dashboard_url: str, model_name: str) -> str:
    """The Grafana dashboard (``infra/grafana/shopfloor-dashboard.json``) filtered to this model; '' for none."""
    if not dashboard_url:
        return ""
    separator = "&" if "?" in dashboard_url else "?"
    return f"{dashboard_url}{separator}{urllib.parse.urlencode({'var-model_name': model_name})}"


def render_monitor_report(
    result: MonitorResult,
    reference: Reference,
    current: CurrentWindow,
    model_name: str,
    decision: str,
    dashboard_url: str = "",
) -> str:
    """Self-contained HTML for the dashboard and for the operator who approves or rejects a retrain.

    With ``dashboard_url`` (``monitor.dashboard_url``) it links to the Grafana dashboard of this model's serving
    and monitoring metrics over time.
    """
    link = dashboard_link(dashboard_url, model_name)
    dashboard = f'<p><a href="{html.escape(link)}">Serving and monitoring over time (Grafana)</a></p>' if link else ""
    rows = []
    for name in reference.features:
        feature = result.drift.features[name]
        rows.append(
            f'<tr class="{"drift" if feature.drifted else ""}"><td>{html.escape(name)}</td>'
            f"<td>{feature.psi:.3f}</td><td>{feature.ks_pvalue:.2g}</td>"
            f"<td>{feature.wasserstein_normalized:.3f}</td><td>{feature.missing_change:+.1%}</td>"
            f"<td>{'DRIFT' if feature.drifted else 'ok'}</td></tr>"
        )
    figures = {
        n: figure_png(_histogram(reference.profile_columns[n], current.readings[:, i], n))
        for i, n in enumerate(reference.features)
        if n in result.drift.drifted[:6]
    }
    predictions = ""
    if result.predictions is not None:
        p = result.predictions
        predictions = (
            f"<p>Predicted failure probability: PSI {p.psi:.3f}, KS p {p.ks_pvalue:.2g} "
            f"({'DRIFT' if p.drifted else 'ok'}).</p>"
        )
    if result.performance is not None:
        predictions += f"<p><b>{html.escape(result.performance.summary)}</b></p>"
    if result.health is not None:
        verdict = "ABNORMAL - inspect the plant" if result.health.abnormal else "ok"
        predictions += f"<p><b>{html.escape(result.health.summary)}: {verdict}</b></p>"
    others = "".join(f"<li>{html.escape(v)}: {n} requests (not used)</li>" for v, n in current.other_versions.items())
    body = f"""<h1>{html.escape(model_name)} {html.escape(reference.model_version)}: {html.escape(result.summary)}</h1>
<p><b>Decision: {html.escape(decision)}</b></p>
{dashboard}
<p>{current.requests} requests; the newest reading of each window is compared with the training data.</p>
<table><tr><th>sensor</th><th>PSI</th><th>KS p-value</th><th>Wasserstein / std</th><th>missing change</th>
<th>verdict</th></tr>{"".join(rows)}</table>
{predictions}<ul>{others}</ul>
{_site_rows(result)}
{figures_html(figures)}"""
    return html_page(f"{model_name} drift", body)
