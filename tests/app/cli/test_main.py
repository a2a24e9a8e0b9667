"""The command line as a whole: every command parses into its request, bad command lines exit 2, errors exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfloor.app.cli import (
    CompileRequest,
    DecisionRequest,
    DemoDataRequest,
    DemoDriftRequest,
    FeedbackRequest,
    ListenRequest,
    MonitorRequest,
    RunRequest,
    ScheduleRequest,
    ServeRequest,
    StopRequest,
    SubmitRequest,
    ValidateRequest,
    main,
    parse_request,
)

EVERY_COMMAND = {
    "run": (["run", "predictive-maintenance"], RunRequest),
    "validate": (["validate", "anomaly-detection"], ValidateRequest),
    "serve": (["serve", "models/pm/v-1"], ServeRequest),
    "stop": (["stop"], StopRequest),
    "monitor": (["monitor", "predictive-maintenance"], MonitorRequest),
    "approve": (["approve", "req-1", "--by", "alice", "--note", "worn"], DecisionRequest),
    "reject": (["reject", "req-1", "--by", "alice", "--note", "fine"], DecisionRequest),
    "approvals": (["approvals", "listen", "--config", "plant.yaml"], ListenRequest),
    "feedback": (["feedback", "part.png", "--verdict", "right", "--by", "olga"], FeedbackRequest),
    "compile": (["compile"], CompileRequest),
    "submit": (["submit", "predictive-maintenance", "--data", "s3://plant", "--wait"], SubmitRequest),
    "schedule": (["schedule", "monitoring", "--cron", "0 0 * * * *"], ScheduleRequest),
    "demo-drift": (["demo-drift"], DemoDriftRequest),
    "demo-data": (["demo-data", "out"], DemoDataRequest),
}


@pytest.mark.parametrize("command", EVERY_COMMAND)
def test_every_command_parses_into_its_frozen_request(command: str) -> None:
    argv, request_type = EVERY_COMMAND[command]
    request = parse_request(argv)
    assert type(request) is request_type
    with pytest.raises(AttributeError):  # frozen: a command cannot change what it was asked for
        request.work_dir = Path("elsewhere")  # type: ignore[misc]


def test_help_lists_every_command_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: shopfloor")
    assert "{" + ",".join(EVERY_COMMAND) + "}" in out.replace("\n", "").replace(" ", "")


@pytest.mark.parametrize(
    "argv",
    [[], ["fly"], ["run"], ["run", "no-such-scenario"], ["serve", "m", "--port", "eighty"], ["approve", "r1"]],
    ids=["no-command", "unknown-command", "no-scenario", "unknown-scenario", "port-not-a-number", "no-by-note"],
)
def test_a_bad_command_line_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "shopfloor" in capsys.readouterr().err


def test_bad_input_is_one_error_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    assert main(["validate", "predictive-maintenance", "--data", str(missing), "--work-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: {missing}: --data: data folder not found "
        "(expected a folder (or s3:// prefix) holding the files the config names)"
    ]
