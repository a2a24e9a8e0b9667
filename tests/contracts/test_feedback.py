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


def test_a_corrected_label_wins_the_next_training_run() -> None:
    manifest = pd.DataFrame({"sha256": [SHA_A, SHA_B], "path": ["a.png", "b.png"], "label": ["scratch", "ok"]})
    history = append_history(None, manifest_events(manifest, "2026-11-20T08:00:00Z", "labels.csv"), "2026-11-20")
    corrections = [
        feedback(verdict="wrong-label", corrected_label="dent"),
        feedback(image_sha256=SHA_B, verdict="wrong-region"),  # no label change: no event
    ]
    events = feedback_events(corrections)
    assert events[["sha256", "label", "annotator", "kind"]].values.tolist() == [[SHA_A, "dent", "olga", "feedback"]]
    labels = resolve_labels(append_history(history, events, NOW), AnnotationConfig()).labels.set_index("sha256")
    assert labels.loc[SHA_A, "label"] == "dent" and bool(labels.loc[SHA_A, "corrected"])
    assert labels.loc[SHA_B, "label"] == "ok"


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


def test_the_labeling_step_takes_an_operators_correction_right_after_delivery(tmp_path) -> None:
    """The pipeline's labeling (label_manifest): a correction minutes after the plant's labels wins, no conflict."""
    from shopfloor.families.visual_inspection.labelling import label_manifest

    manifest = pd.DataFrame({"sha256": [SHA_A, SHA_B], "path": ["a.png", "b.png"], "label": ["scratch", "ok"]})
    history = str(tmp_path / "labels" / "history.parquet")
    empty = feedback_events([])
    first, _, _ = label_manifest(manifest, [], empty, history, CLASSES, AnnotationConfig(), pd.Timestamp(NOW))
    assert first.set_index("sha256").loc[SHA_A, "label"] == "scratch"
    correction = feedback_events(
        [feedback(verdict="wrong-label", corrected_label="dent", now=NOW + dt.timedelta(minutes=5))]
    )
    later = pd.Timestamp(NOW + dt.timedelta(hours=1))
    second, resolution, _ = label_manifest(manifest, [], correction, history, CLASSES, AnnotationConfig(), later)
    assert second.set_index("sha256").loc[SHA_A, "label"] == "dent" and resolution.conflicts.empty
    assert second.set_index("sha256").loc[SHA_B, "label"] == "ok"
