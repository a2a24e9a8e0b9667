"""Operator feedback on explanations: "this heatmap is right", "wrong region", "wrong label, it is a dent".

Operators trust an inspection model only if they can say when it looked in the wrong place. Each verdict is one
small JSON artifact (written once, never changed), so many stations can report at once to a folder or ``s3://``
prefix without locks. The next explain report shows them, and a corrected label becomes a label event of the
operator (kind ``feedback``) that the labeling step appends to the image's label history: the correction wins in
the next training run like any later expert label.

Layout: ``<store>/<model_name>/feedback/<id>.json``, one ``ExplanationFeedback`` each (see its fields).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid

from shopfloor.common.errors import DataValidationError
from shopfloor.common.storage import join_uri, list_documents, read_json, write_json
from shopfloor.contracts.model_store import ModelStore

__all__ = [
    "ExplanationFeedback",
    "VERDICTS",
    "new_feedback",
    "read_feedback",
    "record_feedback",
]

VERDICTS = ("right", "wrong-region", "wrong-label")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclasses.dataclass(frozen=True)
class ExplanationFeedback:
    """One operator's verdict on one explained image."""

    id: str
    created: str  # ISO 8601 UTC
    model_name: str
    model_version: str
    image_sha256: str  # the image's content hash, as ingest records it
    verdict: str  # right | wrong-region | wrong-label
    corrected_label: str | None
    operator: str
    note: str = ""
    request_id: str = ""
    path: str = ""


def new_feedback(
    model_name: str,
    model_version: str,
    image_sha256: str,
    verdict: str,
    operator: str,
    classes: list[str],
    corrected_label: str | None = None,
    note: str = "",
    request_id: str = "",
    path: str = "",
    now: dt.datetime | None = None,
) -> ExplanationFeedback:
    """A validated feedback record; bad input is an error naming the field and what was expected."""
    source = f"feedback on {image_sha256[:12] or 'an image'}"
    if verdict not in VERDICTS:
        raise DataValidationError(source, f"verdict {verdict!r}", field="verdict", expected=" | ".join(VERDICTS))
    if not _SHA256.match(image_sha256 or ""):
        raise DataValidationError(source, "no image hash", field="image_sha256", expected="64 lowercase hex digits")
    if not (operator or "").strip():
        raise DataValidationError(source, "empty", field="operator", expected="who gives the feedback")
    if corrected_label is not None and corrected_label not in classes:
        raise DataValidationError(
            source, f"unknown class {corrected_label!r}", field="corrected_label", expected=", ".join(classes)
        )
    if verdict == "wrong-label" and corrected_label is None:
        raise DataValidationError(
            source, "a wrong label needs the right one", field="corrected_label", expected=", ".join(classes)
        )
    created = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return ExplanationFeedback(
        id=f"fb-{created[:10].replace('-', '')}-{uuid.uuid4().hex[:8]}",
        created=created,
        model_name=model_name,
        model_version=model_version,
        image_sha256=image_sha256,
        verdict=verdict,
        corrected_label=corrected_label,
        operator=operator.strip(),
        note=note.strip(),
        request_id=request_id,
        path=path,
    )


def record_feedback(store_uri: str, feedback: ExplanationFeedback) -> str:
    """Write one feedback record (atomically, its own file) and return where it is."""
    uri = join_uri(ModelStore(store_uri).feedback_uri(feedback.model_name), f"{feedback.id}.json")
    write_json(uri, dataclasses.asdict(feedback))
    return uri


def read_feedback(store_uri: str, model_name: str) -> list[ExplanationFeedback]:
    """Every feedback record of a model, oldest first (none yet: an empty list)."""
    found = [
        ExplanationFeedback(**read_json(uri)) for uri in list_documents(ModelStore(store_uri).feedback_uri(model_name))
    ]
    return sorted(found, key=lambda f: (f.created, f.id))
