"""Retrain policy: the decision rules, cooldown and storm limit, the approval flow, and state on disk and S3."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

import pydantic
import pytest

from shopfloor.common.errors import ShopfloorError
from shopfloor.common.storage import list_files, read_json, write_bytes
from shopfloor.components.monitor.policy import (
    ApprovalRequest,
    Decision,
    RetrainPolicy,
    RetrainState,
    can_start,
    decide,
    utc_now,
)

START = datetime.datetime(2026, 11, 25, 10, 0, tzinfo=datetime.UTC)
SUMMARY = "drift in 3 of 7 sensors"
AUTO = RetrainPolicy(mode="auto")
APPROVAL = RetrainPolicy(mode="approval")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime.datetime = START):
        self.now = start

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += datetime.timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(tmp_path: Path, clock: FakeClock) -> RetrainState:
    return RetrainState(str(tmp_path / "monitor"), "predictive-maintenance", clock=clock)


def _error(call, *args, **kwargs) -> ShopfloorError:
    with pytest.raises(ShopfloorError) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


# --- policy model -----------------------------------------------------------------------------------------------


def test_policy_defaults_are_conservative():
    policy = RetrainPolicy()
    assert policy.mode == "approval"
    assert policy.cooldown_hours == 24.0
    assert policy.max_runs_per_day == 2
    assert policy.request_ttl_hours == 72.0


@pytest.mark.parametrize(
    "values",
    [
        {"mode": "always"},
        {"cooldown_hours": -1},
        {"max_runs_per_day": -1},
        {"request_ttl_hours": 0},
        {"cooldown_hours": float("nan")},
        {"cooldown_hours": float("inf")},
        {"cooldwon_hours": 1},
    ],
)
def test_policy_rejects_bad_values_and_unknown_keys(values):
    with pytest.raises(pydantic.ValidationError):
        RetrainPolicy(**values)


def test_policy_is_frozen():
    with pytest.raises(pydantic.ValidationError):
        RetrainPolicy().mode = "auto"


def test_default_clock_is_utc():
    assert utc_now().utcoffset() == datetime.timedelta(0)


# --- rules 1-3, 6 -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", [AUTO, APPROVAL, RetrainPolicy(mode="off")])
def test_rule1_not_enough_data_never_retrains(state, policy):
    decision = decide(True, False, "12 of 500 readings", policy, state)
    assert decision.action == "not-enough-data"
    assert "not enough data" in decision.reason
    assert decision.reason.startswith("12 of 500 readings; ")
    assert decision.request_id is None
    assert state.runs() == [] and state.requests() == []


@pytest.mark.parametrize("policy", [AUTO, APPROVAL])
def test_rule2_no_drift_is_none(state, policy):
    decision = decide(False, True, "drift in 0 of 7 sensors", policy, state)
    assert decision == Decision("none", "drift in 0 of 7 sensors; no drift, no retrain needed")
    assert state.requests() == []


def test_rule3_mode_off_is_none_saying_retraining_is_off(state):
    decision = decide(True, True, SUMMARY, RetrainPolicy(mode="off"), state)
    assert decision.action == "none"
    assert "retraining is off" in decision.reason
    assert decision.reason.startswith(SUMMARY)
    assert state.requests() == []


def test_rule6_auto_retrains_and_caller_records_the_run(state, clock):
    decision = decide(True, True, SUMMARY, AUTO, state)
    assert decision.action == "retrain"
    assert decision.reason.startswith(f"{SUMMARY}; retraining")
    assert decision.request_id is None
    assert state.requests() == []
    state.record_run()
    assert state.runs() == [START]


def test_reason_is_one_line_even_for_a_multiline_summary(state):
    decision = decide(True, True, "drift in\n3 of 7   sensors", AUTO, state)
    assert "\n" not in decision.reason
    assert decision.reason.startswith("drift in 3 of 7 sensors; ")


# --- rule 4: cooldown and storm limit -----------------------------------------------------------------------------


def test_cooldown_suppresses_with_the_until_time_then_allows(state, clock):
    policy = RetrainPolicy(mode="auto", cooldown_hours=24, max_runs_per_day=5)
    state.record_run()
    clock.advance(minutes=10)
    decision = decide(True, True, SUMMARY, policy, state)
    assert decision.action == "suppressed"
    assert decision.reason.startswith(f"{SUMMARY}; no retrain until 2026-11-26T10:00Z")
    assert "cooldown" in decision.reason
    clock.advance(hours=23, minutes=49)  # 23:59 after the run
    assert decide(True, True, SUMMARY, policy, state).action == "suppressed"
    clock.advance(minutes=1)  # exactly 24 h after the run
    assert decide(True, True, SUMMARY, policy, state).action == "retrain"
    assert can_start(policy, state)[0] is True


def test_until_time_rounds_up_to_the_minute(state, clock):
    policy = RetrainPolicy(mode="auto", cooldown_hours=1.5 / 60, max_runs_per_day=5)  # 90 s
    state.record_run()
    allowed, why = can_start(policy, state)
    assert not allowed
    assert "until 2026-11-25T10:02Z" in why  # 10:01:30 shown as 10:02, never earlier than the truth


def test_cooldown_also_stops_new_approval_requests(state, clock):
    state.record_run()
    clock.advance(hours=1)
    decision = decide(True, True, SUMMARY, APPROVAL, state)
    assert decision.action == "suppressed"
    assert "until 2026-11-26T10:00Z" in decision.reason
    assert state.requests() == []


def test_max_runs_per_day_suppresses_until_the_oldest_run_leaves_the_window(state, clock):
    policy = RetrainPolicy(mode="auto", cooldown_hours=0, max_runs_per_day=2)
    state.record_run()
    clock.advance(hours=1)
    state.record_run()
    clock.advance(hours=1)
    allowed, why = can_start(policy, state)
    assert not allowed
    assert "until 2026-11-26T10:00Z" in why and "max_runs_per_day (2) reached in the last 24 h" in why
    decision = decide(True, True, SUMMARY, policy, state)
    assert decision.action == "suppressed" and "until 2026-11-26T10:00Z" in decision.reason
    clock.now = START + datetime.timedelta(hours=24)
    assert decide(True, True, SUMMARY, policy, state).action == "retrain"


def test_the_later_of_cooldown_and_storm_limit_is_reported(state, clock):
    policy = RetrainPolicy(mode="auto", cooldown_hours=30, max_runs_per_day=1)
    state.record_run()
    allowed, why = can_start(policy, state)
    assert not allowed and "until 2026-11-26T16:00Z" in why  # cooldown (30 h) outlasts the 24 h window


def test_max_runs_per_day_zero_never_starts(state):
    policy = RetrainPolicy(mode="auto", max_runs_per_day=0)
    decision = decide(True, True, SUMMARY, policy, state)
    assert decision.action == "suppressed"
    assert "max_runs_per_day is 0" in decision.reason


@pytest.mark.parametrize("period", [1, 2], ids=["drift-every-run", "drift-on-off"])
def test_flapping_drift_for_48h_starts_at_most_two_retrains_per_24h(state, clock, period):
    policy = RetrainPolicy(mode="auto", cooldown_hours=0, max_runs_per_day=2)
    actions = []
    for step in range(48 * 6):  # a monitoring run every 10 minutes for 48 h
        clock.now = START + datetime.timedelta(minutes=10 * step)
        decision = decide(step % period == 0, True, SUMMARY, policy, state)
        actions.append(decision.action)
        if decision.action == "retrain":
            state.record_run()
    runs = state.runs()
    assert actions.count("retrain") == len(runs) == 4
    assert actions.count("suppressed") == 48 * 6 // period - 4
    day = datetime.timedelta(hours=24)
    for first in runs:  # the busiest 24 h windows begin at a run
        assert sum(first <= r < first + day for r in runs) <= 2
    assert runs[2] - runs[0] >= day


# --- rule 5 and the approval flow ---------------------------------------------------------------------------------


def test_approval_request_is_created_once_while_pending(state, clock):
    first = decide(True, True, SUMMARY, APPROVAL, state)
    assert first.action == "request-approval"
    assert first.request_id and first.request_id in first.reason
    request = state.get(first.request_id)
    assert request.status == "pending"
    assert request.reason == SUMMARY
    assert request.model_name == "predictive-maintenance"
    assert request.created == "2026-11-25T10:00:00Z"
    assert request.id.startswith("pm-20261125-1000-") and len(request.id) == len("pm-20261125-1000-a1b2")
    for _ in range(12):  # two hours of monitoring runs every 10 minutes
        clock.advance(minutes=10)
        again = decide(True, True, SUMMARY, APPROVAL, state)
        assert again.action == "suppressed"
        assert again.request_id == first.request_id
        assert f"waiting on approval request {first.request_id}" in again.reason
    assert [r.id for r in state.requests()] == [first.request_id]


def test_approve_records_who_and_why_and_the_start(state, clock):
    request_id = decide(True, True, SUMMARY, APPROVAL, state).request_id
    clock.advance(hours=2)
    approved = state.decide(request_id, True, by="  alice ", note="new pump model on line 3, reference is stale")
    assert approved.status == "approved"
    assert approved.decided_by == "alice"
    assert approved.decided_at == "2026-11-25T12:00:00Z"
    assert approved.note == "new pump model on line 3, reference is stale"
    assert state.get(request_id) == approved
    assert state.approved_pending_start() == [approved]
    clock.advance(minutes=10)  # the next monitoring run (a cluster's schedule) starts what the operator approved
    for drifted in (True, False):  # whatever the drift is now: a person decided
        starting = decide(drifted, True, SUMMARY, APPROVAL, state)
        assert starting.action == "retrain" and starting.request_id == request_id
        assert f"starting {request_id}, approved by alice (new pump model" in starting.reason
    assert len(state.requests()) == 1

    allowed, _ = can_start(APPROVAL, state)
    assert allowed
    state.record_run(request_id)
    assert state.get(request_id).status == "started"
    assert state.approved_pending_start() == []
    assert state.runs() == [START + datetime.timedelta(hours=2, minutes=10)]
    runs_doc = read_json(Path(state.root) / "predictive-maintenance" / "runs.json")
    assert runs_doc["runs"] == [{"started": "2026-11-25T12:10:00Z", "request_id": request_id}]

    clock.advance(hours=1)  # the cooldown now applies to the approval path as well
    after = decide(True, True, SUMMARY, APPROVAL, state)
    assert after.action == "suppressed" and "until 2026-11-26T12:10Z" in after.reason


def test_approved_start_is_held_by_the_storm_limit(state, clock):
    policy = RetrainPolicy(mode="approval", cooldown_hours=0, max_runs_per_day=1)
    request_id = decide(True, True, SUMMARY, policy, state).request_id
    state.record_run()  # e.g. a manual retrain meanwhile
    state.decide(request_id, True, by="alice", note="go")
    allowed, why = can_start(policy, state)
    assert not allowed and "until 2026-11-26T10:00Z" in why


def test_reject_records_who_and_why_and_starts_nothing(state, clock):
    request_id = decide(True, True, SUMMARY, APPROVAL, state).request_id
    rejected = state.decide(request_id, False, by="bob", note="planned recipe change; drift is expected")
    assert rejected.status == "rejected"
    assert (rejected.decided_by, rejected.note) == ("bob", "planned recipe change; drift is expected")
    assert state.approved_pending_start() == []
    assert state.requests("rejected") == [rejected]
    error = _error(state.record_run, request_id)
    assert request_id in str(error) and "rejected" in str(error)
    assert state.runs() == []
    clock.advance(hours=1)  # the rejection stands: no new request straight away
    held = decide(True, True, SUMMARY, APPROVAL, state)
    assert held.action == "suppressed" and "rejected by bob" in held.reason
    assert "2026-11-28T10:00Z" in held.reason
    clock.now = START + datetime.timedelta(hours=72)  # then, with drift persisting, the monitor asks again
    again = decide(True, True, SUMMARY, APPROVAL, state)
    assert again.action == "request-approval" and again.request_id != request_id


def test_deciding_twice_is_an_error_naming_the_request(state):
    request_id = decide(True, True, SUMMARY, APPROVAL, state).request_id
    state.decide(request_id, True, by="alice", note="ok")
    error = _error(state.decide, request_id, False, by="bob", note="no")
    assert str(error).startswith(request_id)
    assert "already approved (decided by alice at 2026-11-25T10:00:00Z)" in str(error)
    assert state.get(request_id).status == "approved"


def test_unknown_id_names_it_and_lists_pending_ids(state):
    error = _error(state.get, "pm-nope")
    assert "'pm-nope'" in str(error) and "none is pending" in str(error)
    request_id = decide(True, True, SUMMARY, APPROVAL, state).request_id
    error = _error(state.decide, "pm-20991231-0000-ffff", True, by="alice", note="ok")
    assert "'pm-20991231-0000-ffff'" in str(error)
    assert f"a pending request: {request_id}" in str(error)
    assert "'../../etc/passwd'" in str(_error(state.get, "../../etc/passwd"))


def test_ids_are_forgiving_about_case_and_spaces(state):
    request_id = decide(True, True, SUMMARY, APPROVAL, state).request_id
    assert state.get(f" {request_id.upper()} ").id == request_id


@pytest.mark.parametrize(("field", "by", "note"), [("note", "alice", ""), ("note", "alice", "   "), ("by", "", "ok")])
def test_empty_who_or_why_is_an_error_naming_the_field(state, field, by, note):
    request_id = decide(True, True, SUMMARY, APPROVAL, state).request_id
    error = _error(state.decide, request_id, True, by=by, note=note)
    assert error.field == field
    assert request_id in str(error) and f": {field}: must not be empty" in str(error)
    assert state.get(request_id).status == "pending"


def test_requests_expire_after_the_ttl_and_a_new_one_can_be_created(state, clock):
    policy = RetrainPolicy(mode="approval", request_ttl_hours=6)
    first = decide(True, True, SUMMARY, policy, state).request_id
    assert state.get(first).expires == "2026-11-25T16:00:00Z"
    clock.advance(hours=5, minutes=59)
    assert decide(True, True, SUMMARY, policy, state).action == "suppressed"
    clock.advance(minutes=1)
    assert state.get(first).status == "expired"
    assert [r.id for r in state.requests("expired")] == [first]
    assert state.requests("pending") == []
    error = _error(state.decide, first, True, by="alice", note="late")
    assert first in str(error) and "expired at 2026-11-25T16:00:00Z" in str(error)
    second = decide(True, True, SUMMARY, policy, state)
    assert second.action == "request-approval" and second.request_id != first
    assert [r.status for r in state.requests()] == ["expired", "pending"]
    stored = read_json(Path(state.root) / "predictive-maintenance" / "requests" / f"{first}.json")
    assert stored["status"] == "pending"  # expiry is read from the time, not written back


def test_record_run_needs_an_approved_request(state):
    request_id = decide(True, True, SUMMARY, APPROVAL, state).request_id
    error = _error(state.record_run, request_id)
    assert "pending" in str(error) and request_id in str(error)
    assert state.runs() == []


def test_unknown_status_filter_is_an_error(state):
    assert "unknown request status" in str(_error(state.requests, "open"))


def test_invalid_model_name_is_an_error():
    error = _error(RetrainState, "/tmp/x", "../escape")
    assert error.field == "model_name"


# --- storage ------------------------------------------------------------------------------------------------------


def _exercise(root: str, clock: FakeClock) -> str:
    """Drive a request through approve and start with one state object; return its id."""
    state = RetrainState(root, "predictive-maintenance", clock=clock)
    assert state.runs() == [] and state.requests() == []
    request_id = decide(True, True, SUMMARY, APPROVAL, state).request_id
    state.decide(request_id, True, by="alice", note="new reference needed")
    clock.advance(minutes=5)
    state.record_run(request_id)
    state.create_request("second proposal")
    return request_id


def _check_reloaded(root: str, clock: FakeClock, request_id: str) -> None:
    """A fresh state object on the same root sees everything the first one wrote."""
    state = RetrainState(root, "predictive-maintenance", clock=clock)
    assert state.runs() == [START + datetime.timedelta(minutes=5)]
    requests = state.requests()
    assert [r.status for r in requests] == ["started", "pending"]
    first = requests[0]
    assert first == ApprovalRequest(
        id=request_id,
        model_name="predictive-maintenance",
        created="2026-11-25T10:00:00Z",
        status="started",
        reason=SUMMARY,
        decided_by="alice",
        decided_at="2026-11-25T10:00:00Z",
        note="new reference needed",
        expires="2026-11-28T10:00:00Z",
    )
    assert requests[1].reason == "second proposal"
    other = RetrainState(root, "another-model", clock=clock)
    assert other.runs() == [] and other.requests() == []


def test_state_round_trip_on_a_local_folder(tmp_path, clock):
    root = str(tmp_path / "monitor")
    request_id = _exercise(root, clock)
    _check_reloaded(root, clock, request_id)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert "monitor/predictive-maintenance/runs.json" in names
    assert f"monitor/predictive-maintenance/requests/{request_id}.json" in names
    assert not [n for n in names if n.endswith(".partial")]  # writes were atomic renames


def test_state_round_trip_on_s3(s3_bucket, clock):
    root = f"s3://{s3_bucket}/monitor"
    request_id = _exercise(root, clock)
    _check_reloaded(root, clock, request_id)
    files = list_files(root)
    assert f"{root}/predictive-maintenance/runs.json" in files
    assert f"{root}/predictive-maintenance/requests/{request_id}.json" in files


def test_a_writers_temporary_file_is_not_read_as_a_request(state, tmp_path):
    request_id = decide(True, True, SUMMARY, APPROVAL, state).request_id
    folder = tmp_path / "monitor" / "predictive-maintenance" / "requests"
    (folder / f".{request_id}.json.x1y2.partial").write_text("{")
    assert [r.id for r in state.requests()] == [request_id]


def test_two_monitors_creating_requests_at_once_get_separate_files(tmp_path, clock):
    root = str(tmp_path / "monitor")
    one = RetrainState(root, "predictive-maintenance", clock=clock)
    two = RetrainState(root, "predictive-maintenance", clock=clock)
    ids = {one.create_request("a").id, two.create_request("b").id}
    assert len(ids) == 2
    assert {r.reason for r in one.requests()} == {"a", "b"}


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("runs.json", "{not json", "not valid JSON"),
        ("runs.json", '{"runs": [{"when": 1}]}', "corrupt run list"),
        ("requests/pm-x.json", '{"id": "pm-x"}', "corrupt approval request"),
    ],
)
def test_corrupt_state_is_a_one_line_error_naming_the_file(state, tmp_path, name, content, problem):
    path = tmp_path / "monitor" / "predictive-maintenance" / name
    write_bytes(path, content.encode())
    error = _error(state.runs if name == "runs.json" else state.requests)
    assert str(error).startswith(str(path)) and problem in str(error)


def test_request_files_are_plain_json(state, tmp_path):
    request_id = decide(True, True, SUMMARY, APPROVAL, state).request_id
    path = tmp_path / "monitor" / "predictive-maintenance" / "requests" / f"{request_id}.json"
    document = json.loads(path.read_text())
    assert document == {
        **dataclasses.asdict(state.get(request_id)),
        "status": "pending",
        "sites": [],  # JSON has lists; the request reads them back as a tuple
    }


def test_an_approved_request_waits_for_the_storm_limit_then_starts(state, clock):
    policy = RetrainPolicy(mode="approval", cooldown_hours=0, max_runs_per_day=1)
    request_id = decide(True, True, SUMMARY, policy, state).request_id
    state.record_run()  # a manual retrain meanwhile
    state.decide(request_id, True, by="alice", note="go")
    held = decide(True, True, SUMMARY, policy, state)
    assert held.action == "suppressed" and "max_runs_per_day (1) reached" in held.reason
    clock.advance(hours=25)
    assert decide(True, True, SUMMARY, policy, state).action == "retrain"
    assert decide(True, True, SUMMARY, RetrainPolicy(mode="off"), state).action == "none", "off means off"


def test_a_plant_alert_asks_a_human_and_never_retrains(state):
    alert = "the anomaly model sees the plant abnormal"
    for drifted in (True, False):
        decision = decide(drifted, True, SUMMARY, RetrainPolicy(mode="auto"), state, plant_alert=alert)
        assert decision.action == "plant-alert"
        assert "inspect the plant; no retrain" in decision.reason and alert in decision.reason
    assert state.requests() == [] and state.runs() == []
    assert decide(True, False, SUMMARY, RetrainPolicy(mode="auto"), state, plant_alert=alert).action == (
        "not-enough-data"
    )
