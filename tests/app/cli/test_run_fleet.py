"""`shopfloor run` on a fleet config (`extends:` + `sites:` overlays): per-site metrics, thresholds and gates."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from shopfloor import pipelines
from shopfloor.common.storage import read_json
from shopfloor.serving.codec import finite_or_none
from tests.app.cli.helpers import post_json, printed_path, shopfloor

EXAMPLE = Path(pipelines.__file__).parent / "configs" / "examples" / "fleet.yaml"


@pytest.mark.slow
def test_a_fleet_run_thresholds_and_gates_every_site_and_fails_naming_the_site_below(
    tmp_path: Path, work_dirs: list[Path]
) -> None:
    work_dirs.append(tmp_path / "work")
    data = tmp_path / "data"
    made = shopfloor("demo-data", str(data), "--sites", "3", "--assets-per-site", "4", "--days", "60")
    assert made.returncode == 0, made.stderr[-2000:]
    # the example fleet, small and quick; every gate lenient but site-b's RUL error, which no model meets
    (tmp_path / "fleet.yaml").write_text(
        f"extends: {EXAMPLE}\n"
        "hpo: {enabled: false}\n"
        "model: {epochs: 2, hidden_units: [16], conv_filters: 8}\n"
        "deploy: {target: local}\n"
        "gate: {min_roc_auc: 0.0, min_pr_auc: 0.0, max_rul_mae_hours: 100000}\n"
        "sites:\n"
        "  site-b: {gate: {min_roc_auc: 0.0, min_pr_auc: 0.0, max_rul_mae_hours: 1}}\n"
    )
    result = shopfloor(
        "run",
        "predictive-maintenance",
        "--config",
        str(tmp_path / "fleet.yaml"),
        "--data",
        str(data),
        "--work-dir",
        str(tmp_path / "work"),
    )
    assert result.returncode == 3, result.stderr[-3000:]  # the fleet's gate passes, site-b's does not
    for site in ("site-a", "site-b", "site-c"):
        assert f"gate site/{site}/roc_auc: " in result.stdout
    assert re.search(r"gate site/site-b/rul_mae_hours: [\d.]+ <= 1(\.0)?  FAIL", result.stdout), result.stdout
    assert "  why: site site-b: rul_mae_hours " in result.stdout and "above its maximum 1" in result.stdout

    evaluate = printed_path(result.stdout, "report (HTML)").parent
    gate = read_json(evaluate / "blessing")["gate"]
    fleet_checks = [c for c in gate["checks"] if "site" not in c]
    assert fleet_checks and all(c["passed"] for c in fleet_checks) and not gate["passed"]
    assert {c["site"] for c in gate["checks"] if not c["passed"]} == {"site-b"}

    threshold = read_json(printed_path(result.stdout, "model") / "shopfloor_model.json")["threshold"]
    assert sorted(threshold["by_site"]) == ["site-a", "site-b", "site-c"]
    assert threshold["by_site"]["site-c"]["method"] in (
        "target-recall",
        "fixed (no failures and non-failures to choose by)",
    )
    assert all(site["validation_windows"] > 0 for site in threshold["by_site"].values())

    metrics = read_json(evaluate / "blessing")["metrics"]
    for site, chosen in threshold["by_site"].items():  # each site's test metrics at its own threshold
        assert metrics[f"site/{site}/threshold"] == pytest.approx(chosen["value"], abs=1e-6)  # rounded
        assert metrics[f"site/{site}/test_windows"] > 0
    dashboard = json.loads((evaluate / "executor_output.json").read_text())
    assert "site/site-b/roc_auc" in json.dumps(dashboard)

    report = (evaluate / "report.html").read_text()
    assert "<h2>Sites</h2>" in report and report.count("<tr><td>site-") == 3
    labels = read_json(printed_path(result.stdout, "model").parents[1] / "label" / "windows" / "labels.json")
    assert labels["sites"]["site-b"]["horizon_hours"] == 36 and labels["sites"]["site-a"]["horizon_hours"] == 48


@pytest.mark.slow
def test_a_fleet_run_with_site_models_compares_strategies_and_serves_each_site_by_name(
    tmp_path: Path, work_dirs: list[Path]
) -> None:
    work_dirs.append(tmp_path / "work")
    data = tmp_path / "data"
    made = shopfloor("demo-data", str(data), "--sites", "3", "--assets-per-site", "4", "--days", "60")
    assert made.returncode == 0, made.stderr[-2000:]
    (tmp_path / "fleet.yaml").write_text(
        f"extends: {EXAMPLE}\n"
        "hpo: {enabled: false}\n"
        "model: {epochs: 2, hidden_units: [16], conv_filters: 8}\n"
        "deploy: {target: local}\n"
        "fleet: {strategy: per-site, compare: true, fine_tune_epochs: 2}\n"
        "monitor: {window_days: 1, retrain: {mode: auto, cooldown_hours: 0}}\n"
        "gate: {min_roc_auc: 0.0, min_pr_auc: 0.0, max_rul_mae_hours: 100000}\n"
        "sites:\n"
        "  site-b: {gate: {min_roc_auc: 0.0, min_pr_auc: 0.0}}\n"
    )
    result = shopfloor(
        "run",
        "predictive-maintenance",
        "--config",
        str(tmp_path / "fleet.yaml"),
        "--data",
        str(data),
        "--work-dir",
        str(tmp_path / "work"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    info = read_json(printed_path(result.stdout, "model") / "shopfloor_model.json")
    fleet = info["fleet"]
    assert (fleet["strategy"], fleet["sites"]) == ("per-site", ["site-a", "site-b", "site-c"])
    assert fleet["strategies"] == ["global", "per-site", "global-then-site"]
    own = fleet["models"]["per-site"]
    assert own, fleet["fallback"]  # at least one site has a model of its own

    evaluate = printed_path(result.stdout, "report (HTML)").parent
    metrics = read_json(evaluate / "blessing")["metrics"]
    compared = {key.split("/")[1] for key in metrics if key.startswith("strategy/")}
    assert compared == {"global", "per-site", "global-then-site"}
    for site in own:  # the shipped strategy's site metrics are its site model's, at that model's threshold
        assert metrics[f"site/{site}/threshold"] == pytest.approx(own[site]["threshold"]["value"], abs=1e-6)
        if f"strategy/per-site/{site}/pr_auc" in metrics:
            assert metrics[f"site/{site}/pr_auc"] == pytest.approx(metrics[f"strategy/per-site/{site}/pr_auc"])
    report = (evaluate / "report.html").read_text()
    assert "<h2>Strategies by site</h2>" in report and "per-site (ships)" in report
    assert "| site | global | per-site | global-then-site |" in (evaluate / "summary").read_text()

    card = (printed_path(result.stdout, "model").parents[1] / "deploy" / "endpoint_card").read_text()
    url = re.search(r"^Serving \S+ \S+ at (\S+) ", result.stdout, re.MULTILINE)
    assert url, result.stdout
    request_file = next((tmp_path / "work" / "serving" / "requests").glob("*-v1.json"))
    request = request_file.read_bytes()
    answers = {}
    for site in ("site-a", "site-b", "site-c"):
        assert f"{site}: curl" in result.stdout and f"/v1/models/fleet-pumps-valves-{site}:predict" in card
        status, answer = post_json(f"{url[1]}/v1/models/fleet-pumps-valves-{site}:predict", request)
        assert status == 200, answer
        answers[site] = [p["failure_probability"] for p in answer["predictions"]]
    status, fleet_answer = post_json(f"{url[1]}/v1/models/fleet-pumps-valves:predict", request)
    assert status == 200
    global_answer = [p["failure_probability"] for p in fleet_answer["predictions"]]
    for site in own:  # a site with its own model answers with it, not with the global model
        assert answers[site] != global_answer
    status, unknown = post_json(f"{url[1]}/v1/models/fleet-pumps-valves-site-x:predict", request)
    assert status == 404, unknown

    # every site endpoint speaks the Open Inference Protocol and explains, as the fleet's endpoint does
    v2 = request_file.with_name(request_file.name.replace("-v1.json", "-v2.json")).read_bytes()
    for site in ("site-a", "site-b", "site-c"):
        name = f"fleet-pumps-valves-{site}"
        status, answer = post_json(f"{url[1]}/v2/models/{name}/infer", v2)
        assert status == 200 and answer["model_name"] == name, answer
        failure = next(o for o in answer["outputs"] if o["name"] == "failure_probability")["data"]
        assert failure == pytest.approx(answers[site], abs=1e-4)  # the same site model as over V1
        status, explained = post_json(f"{url[1]}/v1/models/{name}:explain", request)
        assert status == 200 and len(explained["explanations"]) == len(answers[site]), explained

    # the loop closes by site: worn traffic at site-b's endpoint, the monitor names site-b, only its models retrain
    worn = _worn_site_b_traffic(printed_path(result.stdout, "model").parents[1] / "label" / "windows")
    for batch in np.array_split(worn, 10):
        body = json.dumps({"instances": finite_or_none(batch)}).encode()
        assert post_json(f"{url[1]}/v1/models/fleet-pumps-valves-site-b:predict", body)[0] == 200
    _wait_for_logged_windows(tmp_path / "work" / "payload-logs", "fleet-pumps-valves-site-b", len(worn))
    published = read_json(tmp_path / "work" / "model-store" / "fleet-pumps-valves" / "latest.json")["version"]
    common = ["--config", str(tmp_path / "fleet.yaml"), "--data", str(data), "--work-dir", str(tmp_path / "work")]
    monitored = shopfloor("monitor", "predictive-maintenance", *common)
    assert monitored.returncode in (0, 3), monitored.stdout[-3000:] + monitored.stderr[-3000:]  # 3: gate failed
    assert "site site-b: drift in " in monitored.stdout and "decision: retrain for sites site-b" in monitored.stdout
    assert f"retrain for site-b: the other sites keep the models of {published}" in monitored.stderr
    retrained = read_json(printed_path(monitored.stdout, "model") / "shopfloor_model.json")["fleet"]["models"]
    for site, summary in retrained["per-site"].items():  # the sites that did not change keep their models
        assert ("kept_from" in summary) == (site != "site-b"), (site, summary)


def _worn_site_b_traffic(windows_folder: Path) -> np.ndarray:
    """Site-b's windows after months of wear (hotter, shaking more, higher pressure), as a plant would send them."""
    from shopfloor.contracts.windows import load_windows

    windows = load_windows(str(windows_folder))
    features = list(windows.features)
    worn = windows.x[windows.sites == "site-b"][:400].copy()
    for name, factor in {"temperature_c": 1.15, "vibration_mm_s": 1.6, "pressure_bar": 1.4}.items():
        if name in features:
            worn[..., features.index(name)] *= factor
    return worn


def _wait_for_logged_windows(logs: Path, model_name: str, windows: int) -> None:
    """Wait until the server's payload logger has written ``windows`` windows of ``model_name`` (it batches)."""
    from shopfloor.contracts.payload_log import read_payload_logs

    deadline = time.monotonic() + 30
    while sum(len(r.inputs) for r in read_payload_logs(str(logs), model_name)) < windows:
        assert time.monotonic() < deadline, f"{model_name}: payload logs never reached {windows} windows"
        time.sleep(0.5)
