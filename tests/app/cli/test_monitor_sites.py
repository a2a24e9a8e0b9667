"""`shopfloor monitor` on a fleet model served by site: the decision line, the saved retrain, `approvals list` and
an approval name the site that drifted; the approval starts the retrain of the sites of its own request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopfloor.app.cli import main
from shopfloor.app.cli.monitor import MonitorRequest, save_retrain, saved_retrain
from shopfloor.app.cli.run import RunRequest
from shopfloor.components.monitor.policy import RetrainState
from tests.components.monitor import test_sites_served

fleet_served = test_sites_served.drifting  # the monitor tests' fleet: served by site, site-b worn


@pytest.mark.slow  # serves a fleet and runs the CLI (~10 s each): runs with the whole suite
def test_shopfloor_monitor_names_the_drifted_site_and_approvals_list_shows_it(
    fleet_served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, logs = fleet_served
    config = tmp_path / "fleet.yaml"
    config.write_text("model_name: pm\nmonitor: {retrain: {mode: approval, cooldown_hours: 0}}\n")
    work = tmp_path / "work"
    common = ["--config", str(config), "--work-dir", str(work)]
    argv = ["monitor", "predictive-maintenance", *common, "--model-store", str(store), "--payload-log", str(logs)]
    assert main([*argv, "--days", "1"]) == 0
    out = capsys.readouterr().out
    assert "decision: request-approval for sites site-b - " in out and "site site-b: drift in " in out
    [request] = RetrainState(str(work / "monitor"), "pm").requests()
    assert request.sites == ("site-b",)
    saved = json.loads((work / "monitor" / "pm" / "retrain-arguments.json").read_text())
    assert saved["sites"] == ["site-b"]
    assert saved_retrain(str(work / "monitor"), "pm").sites == ("site-b",)  # JSON's list comes back a tuple

    assert main(["approvals", "list", *common]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1 and listed[0].startswith(f"{request.id}  pending  ") and "sites: site-b  " in listed[0]
    assert main(["approvals", "list", *common, "--status", "approved"]) == 0
    assert capsys.readouterr().out.strip() == "no approved retrain requests for pm"


def test_the_retrain_request_carries_the_decisions_sites() -> None:
    request = MonitorRequest(scenario="predictive-maintenance", config="fleet.yaml")
    assert request.retrain_request().sites == ()
    retrain = request.retrain_request(("site-b", "site-c"))
    assert retrain.sites == ("site-b", "site-c") and retrain.config == "fleet.yaml"
    assert RunRequest.from_json(json.loads(json.dumps(retrain.to_json()))) == retrain


@pytest.mark.slow  # serves a fleet and runs the CLI (~10 s each): runs with the whole suite
def test_an_approval_starts_the_sites_of_its_request_not_of_the_latest_run(
    fleet_served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Approved after a later monitor run saved other sites, the retrain is for the request's own sites."""
    store, _ = fleet_served
    state_root = tmp_path / "work" / "monitor"
    state = RetrainState(str(state_root), "pm")
    request = state.create_request("site site-b: drift in 3 of 5 sensors", sites=("site-b",))
    empty = tmp_path / "no-readings"
    empty.mkdir()
    config = tmp_path / "fleet.yaml"
    config.write_text("model_name: pm\nfleet: {strategy: per-site}\nmonitor: {retrain: {cooldown_hours: 0}}\n")
    later = RunRequest(  # what the latest monitor run saved: site-a fleet_served then
        scenario="predictive-maintenance",
        data=str(empty),
        config=str(config),
        work_dir=tmp_path / "work",
        model_store=str(store),
        no_hpo=True,
        sites=("site-a",),
    )
    save_retrain(str(state_root), "pm", later)
    code = main(["approve", request.id, "--by", "olga", "--note", "pumps replaced", *_cli(config, tmp_path)])
    captured = capsys.readouterr()
    assert f"{request.id} for sites site-b: approved by olga (pumps replaced)" in captured.out
    assert "retrain for site-b: " in captured.err, captured.err  # the run was asked for the request's site
    assert "retrain for site-a" not in captured.err
    assert code != 0  # no readings to train on: the run itself fails, after it was asked for site-b
    assert state.get(request.id).status == "started"


def _cli(config: Path, tmp_path: Path) -> list[str]:
    """The config and work dir options of `shopfloor approve`."""
    return ["--config", str(config), "--work-dir", str(tmp_path / "work")]
