"""Annotations: Label Studio / CSV imports, an append-only label history, conflicts, and corrections that win."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from shopfloor.common.errors import DataValidationError
from shopfloor.common.storage import read_bytes
from shopfloor.common.vision_config import DEFECT_CLASSES, AnnotationConfig
from shopfloor.families.visual_inspection.labelling import (
    HISTORY_COLUMNS,
    append_history,
    apply_labels,
    manifest_events,
    read_annotation_csv,
    read_history,
    read_label_studio,
    resolve_labels,
    update_history,
    write_resolution,
)

CLASSES = list(DEFECT_CLASSES)
DELIVERED = "2026-03-01T08:00:00Z"


@pytest.fixture
def manifest() -> pd.DataFrame:
    """An ingested image manifest: six parts, the plant labelled five of them."""
    rows = [
        ("images/part_00001.png", "ok"),
        ("images/part_00002.png", "ok"),
        ("images/part_00003.png", "scratch"),
        ("images/part_00004.png", "dent"),
        ("images/part_00005.png", "ok"),
        ("images/part_00006.png", None),
    ]
    return pd.DataFrame(
        {"path": [p for p, _ in rows], "sha256": [f"{i:064x}" for i in range(1, 7)], "label": [lb for _, lb in rows]}
    )


def _task(task_id: int, image: str, *annotations: dict) -> dict:
    return {"id": task_id, "data": {"image": image}, "annotations": list(annotations), "project": 3}


def _annotation(choice: str, user: object, when: str, **extra) -> dict:
    result = [{"from_name": "defect", "to_name": "img", "type": "choices", "value": {"choices": [choice]}}]
    return {"id": f"{user}@{when}", "result": result, "completed_by": user, "updated_at": when, **extra}


def _export(tmp_path, tasks: list[dict], name: str = "export.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(tasks))
    return str(path)


def _history(manifest, *batches) -> pd.DataFrame:
    history = append_history(None, manifest_events(manifest, DELIVERED, "labels.csv"), DELIVERED)
    for recorded, events in batches:
        history = append_history(history, events, recorded)
    return history


def test_label_studio_export_is_read_into_events(tmp_path, manifest):
    tasks = [
        _task(
            1, "/data/local-files/?d=plant-7/images/part_00001.png", _annotation("scratch", 4, "2026-03-05T10:00:00Z")
        ),
        _task(
            2,
            "/data/upload/3/1a2b3c4d-part_00002.png",
            _annotation("ok", {"id": 5, "email": "ben@plant"}, "2026-03-05T11:00:00.5+01:00"),
        ),
        _task(
            3, "s3://line-2/images/part_00003.png", _annotation("dent", 4, "2026-03-05T12:00:00Z", was_cancelled=True)
        ),
        _task(4, "http://ls:8080/data/images/part_00006.png", _annotation("crack", 4, "2026-03-06T09:00:00Z")),
    ]
    batch = read_label_studio(_export(tmp_path, tasks), manifest, CLASSES, AnnotationConfig())
    events = batch.events
    assert events["path"].tolist() == ["images/part_00001.png", "images/part_00002.png", "images/part_00006.png"]
    assert events["label"].tolist() == ["scratch", "ok", "crack"]
    assert events["annotator"].tolist() == ["label-studio:4", "ben@plant", "label-studio:4"]
    assert events["sha256"].tolist() == [f"{i:064x}" for i in (1, 2, 6)]
    assert events["annotated_at"].iloc[1] == pd.Timestamp("2026-03-05T10:00:00.5Z")
    assert (events["kind"] == "label-studio").all() and events["source"].iloc[0].endswith("export.json#task=1")
    assert [(s.path, s.reason) for s in batch.skipped] == [("images/part_00003.png", "cancelled")]


@pytest.mark.parametrize(
    ("task", "reason", "message"),
    [
        (_task(7, "/data/upload/3/part_00042.png", _annotation("ok", 1, DELIVERED)), "unknown_image", "part_00042"),
        (_task(8, "images/part_00001.png", _annotation("scrach", 1, DELIVERED)), "unknown_class", "'scrach'"),
        (
            _task(9, "images/part_00001.png", {"result": [], "completed_by": 1, "updated_at": DELIVERED}),
            "bad_choice",
            "no choices",
        ),
        ({"id": 10, "data": {"img": "x.png"}}, "bad_task", "no data.image"),
    ],
)
def test_bad_label_studio_annotations_error_or_skip(tmp_path, manifest, task, reason, message):
    good = _task(1, "images/part_00001.png", _annotation("crack", 1, DELIVERED))
    uri = _export(tmp_path, [good, task])
    with pytest.raises(DataValidationError, match=message) as info:
        read_label_studio(uri, manifest, CLASSES, AnnotationConfig())
    assert str(info.value).startswith(uri) and "\n" not in str(info.value)
    batch = read_label_studio(uri, manifest, CLASSES, AnnotationConfig(on_invalid="skip"))
    assert batch.events["label"].tolist() == ["crack"]
    assert [s.reason for s in batch.skipped] == [reason]


def test_not_a_label_studio_export(tmp_path, manifest):
    (tmp_path / "e.json").write_text('{"tasks": []}')
    with pytest.raises(DataValidationError, match="top level is not a list"):
        read_label_studio(str(tmp_path / "e.json"), manifest, CLASSES, AnnotationConfig(on_invalid="skip"))


def test_csv_annotations_with_and_without_optional_columns(tmp_path, manifest):
    (tmp_path / "a.csv").write_text(
        "path,label,annotator,annotated_at\nimages/part_00004.png,crack,anna,2026-03-10T09:00:00Z\n"
    )
    batch = read_annotation_csv(str(tmp_path / "a.csv"), manifest, CLASSES, AnnotationConfig())
    assert batch.events[["path", "label", "annotator"]].values.tolist() == [["images/part_00004.png", "crack", "anna"]]
    (tmp_path / "b.csv").write_text("path,label\npart_00005.png,dent\nimages/part_00077.png,ok\n")
    with pytest.raises(DataValidationError, match="column 'annotator' not found"):
        read_annotation_csv(str(tmp_path / "b.csv"), manifest, CLASSES, AnnotationConfig())
    batch = read_annotation_csv(
        str(tmp_path / "b.csv"),
        manifest,
        CLASSES,
        AnnotationConfig(on_invalid="skip"),
        annotator="qa-review",
        annotated_at="2026-03-11T00:00:00Z",
    )
    assert batch.events[["path", "label", "annotator"]].values.tolist() == [
        ["images/part_00005.png", "dent", "qa-review"]
    ]
    assert [(s.path, s.reason) for s in batch.skipped] == [("images/part_00077.png", "unknown_image")]


def test_an_expert_correction_wins_over_the_plant_label(manifest):
    correction = pd.DataFrame(
        [
            {
                "sha256": f"{2:064x}",
                "path": "images/part_00002.png",
                "label": "scratch",
                "annotator": "anna",
                "annotated_at": pd.Timestamp("2026-03-09T10:00:00Z"),
                "source": "fix.csv#row=1",
                "kind": "csv",
            }
        ]
    )
    history = _history(manifest, ("2026-03-09T12:00:00Z", correction))
    resolution = resolve_labels(history, AnnotationConfig())
    row = resolution.labels.set_index("path").loc["images/part_00002.png"]
    assert (row["label"], row["status"], row["corrected"]) == ("scratch", "agreed", True)
    assert resolution.conflicts.empty
    labelled = apply_labels(manifest, resolution)
    assert labelled.set_index("path")["label"].to_dict() == {
        "images/part_00001.png": "ok",
        "images/part_00002.png": "scratch",
        "images/part_00003.png": "scratch",
        "images/part_00004.png": "dent",
        "images/part_00005.png": "ok",
        "images/part_00006.png": None,
    }
    assert labelled.set_index("path").loc["images/part_00006.png", "label_status"] == "unlabelled"

    # the next delivery repeats the old plant labels: that is not new information, the correction still wins
    again = append_history(history, manifest_events(manifest, "2026-03-15T08:00:00Z", "labels.csv"), "2026-03-15")
    pd.testing.assert_frame_equal(again, history)
    # ... but a label the plant itself changes later is a new event, and the newest label wins
    changed = manifest.assign(label=manifest["label"].where(manifest["path"] != "images/part_00002.png", "dent"))
    later = append_history(history, manifest_events(changed, "2026-03-20T08:00:00Z", "labels.csv"), "2026-03-20")
    assert len(later) == len(history) + 1
    pd.testing.assert_frame_equal(later.iloc[: len(history)], history)  # append-only
    assert (
        resolve_labels(later, AnnotationConfig()).labels.set_index("path").loc["images/part_00002.png", "label"]
        == "dent"
    )


def test_annotators_who_disagree_are_a_conflict(tmp_path, manifest):
    tasks = [
        _task(
            1,
            "images/part_00005.png",
            _annotation("dent", 1, "2026-03-05T10:00:00Z"),
            _annotation("scratch", 2, "2026-03-05T11:00:00Z"),
            _annotation("dent", 3, "2026-03-05T12:00:00Z"),
        ),
        _task(
            2,
            "images/part_00001.png",
            _annotation("crack", 1, "2026-03-05T10:00:00Z"),
            _annotation("ok", 2, "2026-03-05T10:30:00Z"),
        ),
    ]
    batch = read_label_studio(_export(tmp_path, tasks), manifest, CLASSES, AnnotationConfig())
    history = _history(manifest, ("2026-03-06T00:00:00Z", batch.events))

    excluded = resolve_labels(history, AnnotationConfig(on_conflict="exclude"))
    conflicts = excluded.conflicts.set_index("path")
    assert sorted(conflicts.index) == ["images/part_00001.png", "images/part_00005.png"]
    assert conflicts.loc["images/part_00005.png", "votes"] == "dent:2, scratch:1"
    assert conflicts.loc["images/part_00005.png", "annotators"] == (
        "label-studio:1=dent; label-studio:2=scratch; label-studio:3=dent"
    )
    assert conflicts["label"].isna().all() and (conflicts["status"] == "excluded").all()
    labelled = apply_labels(manifest, excluded).set_index("path")
    assert labelled.loc["images/part_00005.png", "label"] is None
    assert labelled.loc["images/part_00005.png", "label_status"] == "excluded"

    majority = resolve_labels(history, AnnotationConfig(on_conflict="majority")).conflicts.set_index("path")
    assert (majority.loc["images/part_00005.png", "label"], majority.loc["images/part_00005.png", "status"]) == (
        "dent",
        "majority",
    )
    # a tie has no majority: it stays excluded and reported
    assert majority.loc["images/part_00001.png", "status"] == "excluded"


def test_an_annotator_correcting_themselves_is_not_a_conflict(tmp_path, manifest):
    first = [_task(1, "images/part_00003.png", _annotation("dent", 1, "2026-03-05T10:00:00Z"))]
    fixed = [_task(1, "images/part_00003.png", _annotation("crack", 1, "2026-03-05T15:00:00Z"))]
    history = _history(
        manifest,
        (
            "2026-03-05T11:00Z",
            read_label_studio(_export(tmp_path, first, "a.json"), manifest, CLASSES, AnnotationConfig()).events,
        ),
        (
            "2026-03-05T16:00Z",
            read_label_studio(_export(tmp_path, fixed, "b.json"), manifest, CLASSES, AnnotationConfig()).events,
        ),
    )
    resolution = resolve_labels(history, AnnotationConfig(conflict_window_hours=0))
    assert resolution.labels.set_index("path").loc["images/part_00003.png", "label"] == "crack"
    assert resolution.conflicts.empty
    # even within a wide window the plant's delivered 'scratch' is no second opinion: the expert corrects it
    wide = resolve_labels(history, AnnotationConfig(conflict_window_hours=24 * 30))
    assert wide.conflicts.empty
    decided = wide.labels.set_index("path").loc["images/part_00003.png"]
    assert decided["label"] == "crack" and bool(decided["corrected"])


def test_reimporting_an_export_adds_nothing(tmp_path, manifest):
    tasks = [_task(1, "images/part_00001.png", _annotation("crack", 1, "2026-03-05T10:00:00Z"))]
    events = read_label_studio(_export(tmp_path, tasks), manifest, CLASSES, AnnotationConfig()).events
    once = _history(manifest, ("2026-03-06", events))
    twice = append_history(once, events, "2026-03-07")
    pd.testing.assert_frame_equal(once, twice)
    assert list(once.columns) == list(HISTORY_COLUMNS)
    assert (once["recorded_at"].iloc[-1], once["annotator"].iloc[-1]) == (
        pd.Timestamp("2026-03-06", tz="UTC"),
        "label-studio:1",
    )


@pytest.mark.parametrize("where", ["local", "s3"])
def test_history_on_disk_is_append_only(tmp_path, manifest, request, where):
    base = str(tmp_path) if where == "local" else f"s3://{request.getfixturevalue('s3_bucket')}/labels"
    uri = f"{base}/history.parquet"
    assert read_history(uri).empty
    first = update_history(uri, manifest_events(manifest, DELIVERED, "labels.csv"), DELIVERED)
    assert len(first) == 5
    fix = manifest_events(manifest.iloc[[0]].assign(label="dent"), "2026-03-09T00:00:00Z", "fix.csv", annotator="anna")
    second = update_history(uri, fix, "2026-03-09T01:00:00Z")
    stored = read_history(uri)
    pd.testing.assert_frame_equal(stored, second)
    pd.testing.assert_frame_equal(stored.iloc[:5], first)
    resolution = resolve_labels(stored, AnnotationConfig())
    write_resolution(resolution, f"{base}/labels.parquet", f"{base}/conflicts.parquet")
    labels = pd.read_parquet(io.BytesIO(read_bytes(f"{base}/labels.parquet")))
    assert labels.set_index("path").loc["images/part_00001.png", "label"] == "dent"
