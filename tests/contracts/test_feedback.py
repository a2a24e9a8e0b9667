"""Operator feedback on explanations: stored as artifacts, read back, and corrected labels win the next training."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from shopfloor.common.errors import DataValidationError
from shopfloor.common.vision_config import DEFECT_CLASSES, AnnotationConfig
from shopfloor.contracts.feedback import new_feedback, read_feedback, record_feedback
from shopfloor.families.visual_inspection.labelling import (
    append_history,
    feedback_events,
    manifest_events,
    resolve_labels,
)

CLASSES = list(DEFECT_CLASSES)
SHA_A, SHA_B = "a" * 64, "b" * 64
NOW = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC)


def feedback(**overrides):
    values = {
        "model_name": "vi",
        "model_version": "v-1",
        "image_sha256": SHA_A,
        "verdict": "right",
        "operator": "olga",
        "classes": CLASSES,
        "now": NOW,
    }
    return new_feedback(**{**values, **overrides})


@pytest.mark.parametrize("where", ["local", "s3"])
def test_feedback_round_trips_as_one_artifact_each(where: str, tmp_path, request) -> None:
    store = str(tmp_path / "store") if where == "local" else f"s3://{request.getfixturevalue('s3_bucket')}/store"
    given = [
        feedback(),
        feedback(image_sha256=SHA_B, verdict="wrong-region", note="looked at the clamp, not the scratch"),
        feedback(verdict="wrong-label", corrected_label="dent", now=NOW + dt.timedelta(minutes=1)),
    ]
    uris = [record_feedback(store, f) for f in given]
    assert len(set(uris)) == 3 and all(u.endswith(".json") and "/vi/feedback/" in u for u in uris)
    assert read_feedback(store, "vi") == sorted(given, key=lambda f: (f.created, f.id))
    assert read_feedback(store, "other-model") == []


def _delivered() -> pd.DataFrame:
    """The label history after the plant delivered image A as a scratch and B as ok."""
    manifest = pd.DataFrame({"sha256": [SHA_A, SHA_B], "path": ["a.png", "b.png"], "label": ["scratch", "ok"]})
    return append_history(None, manifest_events(manifest, "2026-11-20T08:00:00Z", "labels.csv"), "2026-11-20")


def _resolve(history: pd.DataFrame, corrections: list, **config):
    return resolve_labels(append_history(history, feedback_events(corrections), NOW), AnnotationConfig(**config))


def test_one_operators_correction_is_a_pending_proposal() -> None:
    # before: one "wrong-label -> ok" over HTTP won the next training run (label poisoning with one token)
    corrections = [
        feedback(verdict="wrong-label", corrected_label="dent"),
        feedback(image_sha256=SHA_B, verdict="wrong-region"),  # no label change: no event
    ]
    events = feedback_events(corrections)
    assert events[["sha256", "label", "annotator", "kind"]].values.tolist() == [[SHA_A, "dent", "olga", "feedback"]]
    resolution = _resolve(_delivered(), corrections)
    labels = resolution.labels.set_index("sha256")
    assert labels.loc[SHA_A, "label"] == "scratch" and not bool(labels.loc[SHA_A, "corrected"])
    assert labels.loc[SHA_B, "label"] == "ok"
    assert resolution.proposals.values.tolist() == [[SHA_A, "a.png", "dent", "olga", "pending"]]
    assert resolution.conflicts.empty


def test_a_correction_wins_when_a_quorum_of_operators_agrees() -> None:
    later = NOW + dt.timedelta(minutes=20)
    corrections = [
        feedback(verdict="wrong-label", corrected_label="dent"),
        feedback(verdict="wrong-label", corrected_label="dent", operator="ivan", now=later),
        feedback(verdict="wrong-label", corrected_label="crack", operator="mehmet", now=later),
    ]
    resolution = _resolve(_delivered(), corrections, on_conflict="majority")
    labels = resolution.labels.set_index("sha256")
    assert labels.loc[SHA_A, "label"] == "dent" and bool(labels.loc[SHA_A, "corrected"])
    assert resolution.proposals[["label", "operators", "status"]].values.tolist() == [
        ["crack", "mehmet", "pending"],
        ["dent", "ivan; olga", "accepted"],
    ]
    assert resolution.conflicts.empty, "a pending proposal never sits on the panel"


def test_the_same_operator_saying_it_twice_is_not_a_quorum() -> None:
    twice = [
        feedback(verdict="wrong-label", corrected_label="dent"),
        feedback(verdict="wrong-label", corrected_label="dent", now=NOW + dt.timedelta(minutes=1)),
    ]
    assert _resolve(_delivered(), twice).labels.set_index("sha256").loc[SHA_A, "label"] == "scratch"


def test_an_experts_label_confirms_a_proposal() -> None:
    from shopfloor.families.visual_inspection.labelling import HISTORY_COLUMNS

    expert = pd.DataFrame(
        [[SHA_A, "a.png", "dent", "anna", pd.Timestamp(NOW - dt.timedelta(hours=1)), "export.csv", "csv"]],
        columns=list(HISTORY_COLUMNS[:-1]),
    )
    history = append_history(_delivered(), expert, NOW)
    resolution = _resolve(history, [feedback(verdict="wrong-label", corrected_label="dent")])
    assert resolution.labels.set_index("sha256").loc[SHA_A, "label"] == "dent"
    assert resolution.proposals["status"].tolist() == ["accepted"]


def test_a_quorum_of_one_lets_every_operators_correction_count() -> None:
    labels = _resolve(_delivered(), [feedback(verdict="wrong-label", corrected_label="dent")], operator_quorum=1).labels
    assert labels.set_index("sha256").loc[SHA_A, "label"] == "dent"


def test_an_image_with_only_a_pending_proposal_stays_unlabelled() -> None:
    from shopfloor.families.visual_inspection.labelling import apply_labels

    manifest = pd.DataFrame({"sha256": [SHA_A], "path": ["a.png"], "label": [None]})
    resolution = _resolve(
        append_history(None, manifest_events(manifest, NOW, "m"), NOW),
        [feedback(verdict="wrong-label", corrected_label="dent")],
    )
    assert resolution.labels.empty and resolution.proposals["status"].tolist() == ["pending"]
    assert apply_labels(manifest, resolution)["label_status"].tolist() == ["unlabelled"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"verdict": "meh"}, "verdict"),
        ({"image_sha256": "xyz"}, "image_sha256"),
        ({"operator": "  "}, "operator"),
        ({"verdict": "wrong-label"}, "corrected_label"),
        ({"verdict": "wrong-label", "corrected_label": "smudge"}, "corrected_label"),
    ],
)
def test_bad_feedback_names_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(DataValidationError, match=field):
        feedback(**overrides)


def test_the_labeling_step_takes_operators_corrections_right_after_delivery(tmp_path) -> None:
    """The pipeline's labeling (label_manifest): two operators' correction minutes after delivery wins, no conflict."""
    from shopfloor.families.visual_inspection.labelling import label_manifest

    manifest = pd.DataFrame({"sha256": [SHA_A, SHA_B], "path": ["a.png", "b.png"], "label": ["scratch", "ok"]})
    history = str(tmp_path / "labels" / "history.parquet")
    empty = feedback_events([])
    first, _, _ = label_manifest(manifest, [], empty, history, CLASSES, AnnotationConfig(), pd.Timestamp(NOW))
    assert first.set_index("sha256").loc[SHA_A, "label"] == "scratch"
    correction = feedback_events(
        [
            feedback(verdict="wrong-label", corrected_label="dent", now=NOW + dt.timedelta(minutes=5)),
            feedback(verdict="wrong-label", corrected_label="dent", operator="ivan", now=NOW + dt.timedelta(minutes=9)),
        ]
    )
    later = pd.Timestamp(NOW + dt.timedelta(hours=1))
    second, resolution, _ = label_manifest(manifest, [], correction, history, CLASSES, AnnotationConfig(), later)
    assert second.set_index("sha256").loc[SHA_A, "label"] == "dent" and resolution.conflicts.empty
    assert second.set_index("sha256").loc[SHA_B, "label"] == "ok"
