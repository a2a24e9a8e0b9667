"""`shopfloor feedback`'s command line as a FeedbackRequest (the CLI end to end is in test_run_vision)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfloor.app.cli import main, parse_request
from shopfloor.app.cli.feedback import FeedbackRequest


def test_feedback_every_flag() -> None:
    argv = ["feedback", "part.png", "--verdict", "wrong-label", "--label", "crack", "--by", "olga"]
    argv += ["--note", "a dent", "--model", "parts", "--work-dir", "runs", "--model-store", "s3://models"]
    assert parse_request(argv) == FeedbackRequest(
        image="part.png",
        verdict="wrong-label",
        by="olga",
        label="crack",
        note="a dent",
        model="parts",
        work_dir=Path("runs"),
        model_store="s3://models",
    )


def test_feedback_defaults() -> None:
    request = parse_request(["feedback", "part.png", "--verdict", "right", "--by", "olga"])
    assert request == FeedbackRequest(image="part.png", verdict="right", by="olga")
    assert request.model == "visual-inspection" and request.work_dir == Path("shopfloor-runs")


@pytest.mark.parametrize(
    "argv",
    [["feedback", "p.png", "--by", "olga"], ["feedback", "p.png", "--verdict", "meh", "--by", "olga"]],
    ids=["no-verdict", "unknown-verdict"],
)
def test_feedback_without_a_known_verdict_is_a_bad_command_line(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
