"""The event schema: stable ids per fact, the gate and rollback events' content, and a round trip."""

from __future__ import annotations

import json

import pytest

from shopfloor.common.errors import DataValidationError
from shopfloor.contracts.events import EVENT_SCHEMA, gate_failed_event, parse_event, rollback_event

GATE = {
    "passed": False,
    "checks": [
        {"metric": "roc_auc", "value": 0.91, "op": ">=", "threshold": 0.8, "passed": True},
        {"metric": "pr_auc", "value": 0.412345, "op": ">=", "threshold": 0.5, "passed": False},
    ],
}


def test_a_failed_gate_names_the_failed_checks_and_its_id_is_the_versions() -> None:
    event = gate_failed_event("predictive-maintenance", "v-0123456789ab", GATE)
    assert event.summary == (
        "predictive-maintenance v-0123456789ab failed its quality gate: pr_auc 0.4123 (needs >= 0.5)"
    )
    assert event.details == {"failed_checks": [GATE["checks"][1]]}
    assert gate_failed_event("predictive-maintenance", "v-0123456789ab", GATE).id == event.id
    assert gate_failed_event("predictive-maintenance", "v-ffffffffffff", GATE).id != event.id
    assert parse_event(event.to_json()) == event


def test_a_rollback_event_round_trips() -> None:
    event = rollback_event("anomaly-detection", "v-1", "rolled back to v-0 (canary removed)")
    document = json.loads(event.to_json())
    assert document["schema"] == EVENT_SCHEMA and document["type"] == "rollback"
    assert document["summary"] == "anomaly-detection v-1 not deployed: rolled back to v-0 (canary removed)"
    assert parse_event(event.to_json()) == event
    with pytest.raises(DataValidationError, match=r"^event: type: 'drift' \(expected plant-alert \| approval"):
        parse_event(json.dumps({**document, "type": "drift"}))


def test_sites_are_optional_and_round_trip() -> None:
    from shopfloor.contracts.events import make_event

    fleet = make_event("approval-requested", "pumps", "pm-1", "site site-b: drift", request_id="pm-1")
    assert "sites" not in json.loads(fleet.to_json()) and parse_event(fleet.to_json()).sites == ()
    named = make_event("approval-requested", "pumps", "pm-2", "site site-b: drift", sites=("site-b",))
    assert json.loads(named.to_json())["sites"] == ["site-b"] and parse_event(named.to_json()) == named
    document = json.loads(named.to_json())
    with pytest.raises(DataValidationError, match=r"^event: sites: 'site-b' \(expected a list of site names\)"):
        parse_event(json.dumps({**document, "sites": "site-b"}))
