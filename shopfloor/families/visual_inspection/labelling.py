"""Expert annotations of part images: import Label Studio and CSV exports, keep a label history, resolve labels.

Every label is an event: which image (by content hash, so a renamed or re-delivered file keeps its labels), what
label, who gave it, when, and from which export. Events are appended to a history and never changed or removed;
the labels a training run uses are resolved from the whole history each time:

1. Each annotator's latest label of an image counts; their earlier ones were corrected.
2. The newest label of an image and every other annotator's latest label given within ``conflict_window_hours``
   before it form the panel. Labels older than that were superseded: a later label corrects them.
   The plant's own label (kind ``manifest``) never sits on a panel with a later expert or operator label: it is
   the default those correct, however soon after delivery they come.
3. A panel that agrees decides. One that disagrees is a conflict, reported; ``on_conflict: majority`` takes a
   strict majority (a tie stays unresolved), ``exclude`` leaves the image out of training until someone re-labels.

An operator's correction from the model server (kind ``feedback``) is a proposal, recorded in the history like any
event but left out of step 2 until it is accepted: when ``operator_quorum`` operators (default 2, each by their
latest word) propose the same label, or an expert's latest label (an export) says the same. One operator at a
station, or one stolen operator token, cannot relabel the training data alone. Proposals are reported, accepted
or pending, in ``LabelResolution.proposals``.

The plant's own labels (the ingest manifest) enter as events of the annotator ``plant`` (see
:func:`manifest_events`), so an expert's later correction wins over them.

Output layout:
  history   : Parquet, columns sha256, path, label, annotator, annotated_at (UTC), source, kind
              (manifest|label-studio|csv|feedback), recorded_at (UTC); append-only, in the order recorded
  labels    : Parquet, one row per image with history: sha256, path, label (null = excluded), status
              (agreed|majority|excluded), annotators (panel size), corrected (an older label was overridden),
              decided_at (UTC)
  conflicts : Parquet, one row per disagreeing panel: sha256, path, votes ("dent:2, scratch:1"), annotators
              ("anna=dent; ben=scratch"), label (the resolution, null = excluded), status
  proposals : one row per image and proposed label: sha256, path, label, operators ("ivan; olga"), status
              (accepted|pending)
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import urllib.parse
from pathlib import PurePosixPath

import pandas as pd

from shopfloor.common.errors import DataValidationError, StorageError
from shopfloor.common.storage import exists, read_bytes, sha256_hex, write_bytes
from shopfloor.common.vision_config import AnnotationConfig
from shopfloor.contracts.feedback import ExplanationFeedback
from shopfloor.contracts.images import ImageProblem

__all__ = [
    "AnnotationBatch",
    "CONFLICT_COLUMNS",
    "EVENT_COLUMNS",
    "HISTORY_COLUMNS",
    "LABEL_COLUMNS",
    "PROPOSAL_COLUMNS",
    "LabelResolution",
    "append_history",
    "apply_labels",
    "feedback_events",
    "label_manifest",
    "manifest_events",
    "read_annotation_csv",
    "read_export",
    "read_history",
    "read_label_studio",
    "resolve_labels",
    "update_history",
    "write_history",
    "write_resolution",
]

EVENT_COLUMNS: tuple[str, ...] = ("sha256", "path", "label", "annotator", "annotated_at", "source", "kind")
HISTORY_COLUMNS: tuple[str, ...] = (*EVENT_COLUMNS, "recorded_at")
LABEL_COLUMNS: tuple[str, ...] = ("sha256", "path", "label", "status", "annotators", "corrected", "decided_at")
CONFLICT_COLUMNS: tuple[str, ...] = ("sha256", "path", "votes", "annotators", "label", "status")
PROPOSAL_COLUMNS: tuple[str, ...] = ("sha256", "path", "label", "operators", "status")
_PROPOSAL_KIND = "feedback"
_EXPERT_KINDS = frozenset({"label-studio", "csv"})
_NEVER_AN_ERROR = frozenset({"cancelled"})  # a skipped task in Label Studio is a normal state, reported only


@dataclasses.dataclass(frozen=True)
class AnnotationBatch:
    """The label events read from one export, and the annotations left out with the reason."""

    events: pd.DataFrame
    skipped: list[ImageProblem]


@dataclasses.dataclass(frozen=True)
class LabelResolution:
    """The label of every image with history, images whose annotators disagree, and operators' proposals."""

    labels: pd.DataFrame
    conflicts: pd.DataFrame
    proposals: pd.DataFrame


class _ImageIndex:
    """Finds the manifest image an export refers to: by relative path, path suffix or unique file name."""

    def __init__(self, manifest: pd.DataFrame):
        self.sha = dict(zip(manifest["path"], manifest["sha256"], strict=True))
        self.by_name: dict[str, list[str]] = collections.defaultdict(list)
        for path in sorted(self.sha):
            self.by_name[PurePosixPath(path).name].append(path)

    def find(self, reference: str) -> tuple[str | None, str | None]:
        """The manifest path ``reference`` names, or None and why not."""
        text = _strip_reference(reference)
        if text in self.sha:
            return text, None
        candidates = self.by_name.get(PurePosixPath(text).name, [])
        suffix = [p for p in candidates if text.endswith("/" + p) or p.endswith("/" + text)]
        if len(suffix) == 1:
            return suffix[0], None
        if len(candidates) == 1 and not suffix:
            return candidates[0], None
        if candidates:
            return None, f"'{reference}' matches {len(candidates)} images ({', '.join(candidates[:3])})"
        return None, f"no ingested image matches '{reference}'"


def _strip_reference(reference: str) -> str:
    """The file path inside a Label Studio image URL (local-files ``?d=``, upload, s3:// or http URLs)."""
    parsed = urllib.parse.urlparse(reference.strip())
    query = urllib.parse.parse_qs(parsed.query)
    if "d" in query:  # /data/local-files/?d=relative/path.png
        return query["d"][0].lstrip("/")
    path = urllib.parse.unquote(parsed.path)
    if path.startswith("/data/upload/"):  # /data/upload/<project>/<8 hex>-<original name>
        name = PurePosixPath(path).name
        prefix, _, rest = name.partition("-")
        if rest and len(prefix) == 8 and all(c in "0123456789abcdef" for c in prefix):
            return rest
        return name
    return path.lstrip("/") if parsed.scheme in ("s3", "http", "https", "gs") else path


def _time(value: object) -> pd.Timestamp | None:
    """An ISO 8601 time as a UTC timestamp (naive times are UTC), or None if it does not parse."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]  # any JSON value: what pandas cannot parse is caught
    except (TypeError, ValueError):
        return None
    if pd.isna(stamp):
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _annotator(completed_by: object) -> str | None:
    """A Label Studio user as a stable name: the e-mail where the export has it, else ``label-studio:<id>``."""
    if isinstance(completed_by, dict):
        if completed_by.get("email"):
            return str(completed_by["email"])
        completed_by = completed_by.get("id")
    if isinstance(completed_by, bool) or completed_by is None or completed_by == "":
        return None
    return f"label-studio:{completed_by}" if isinstance(completed_by, int) else str(completed_by)


def _events_frame(rows: list[dict]) -> pd.DataFrame:
    """Events as a table with the canonical columns and a UTC time column."""
    frame = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    frame["annotated_at"] = pd.to_datetime(frame["annotated_at"], utc=True)
    return frame


def _finish(rows: list[dict], problems: list[ImageProblem], config: AnnotationConfig) -> AnnotationBatch:
    """Raise the first real problem under ``on_invalid: error``; otherwise return the events and the skips."""
    if config.on_invalid == "error":
        for problem in problems:
            if problem.reason not in _NEVER_AN_ERROR:
                raise problem.error()
    return AnnotationBatch(events=_events_frame(rows), skipped=problems)


def _choice(result: object, config: AnnotationConfig) -> tuple[str | None, str | None]:
    """The one class chosen in an annotation's result list, or None and why not."""
    if not isinstance(result, list):
        return None, "result is not a list"
    picked = [
        r
        for r in result
        if isinstance(r, dict)
        and r.get("type") == "choices"
        and (config.choices_from_name is None or r.get("from_name") == config.choices_from_name)
    ]
    if not picked:
        where = f" from '{config.choices_from_name}'" if config.choices_from_name else ""
        return None, f"no choices result{where}"
    choices = [c for r in picked for c in ((r.get("value") or {}).get("choices") or [])]
    if len(picked) > 1 or len(choices) != 1:
        return None, f"{len(choices)} choices in {len(picked)} results"
    return str(choices[0]), None


def read_label_studio(
    uri: str, manifest: pd.DataFrame, classes: list[str], config: AnnotationConfig, raw: bytes | None = None
) -> AnnotationBatch:
    """Read a Label Studio JSON export of an image-classification project into label events.

    Each task's ``data.<image_field>`` is matched to an ingested image; each annotation gives one event with its
    ``completed_by`` user and ``updated_at`` time. Cancelled (skipped) annotations are reported, never labels.
    """
    raw = read_bytes(uri) if raw is None else raw
    try:
        tasks = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataValidationError(uri, "not valid JSON", expected="a Label Studio JSON export") from None
    if not isinstance(tasks, list):
        raise DataValidationError(uri, "top level is not a list", expected="a Label Studio JSON export (task list)")
    index = _ImageIndex(manifest)
    known = ", ".join(classes)
    rows: list[dict] = []
    problems: list[ImageProblem] = []
    for position, task in enumerate(tasks, start=1):
        task_id = task.get("id", f"#{position}") if isinstance(task, dict) else f"#{position}"
        data = task.get("data") if isinstance(task, dict) else None
        reference = data.get(config.image_field) if isinstance(data, dict) else None
        if not isinstance(reference, str) or not reference.strip():
            problems.append(
                ImageProblem(
                    f"task {task_id}",
                    "bad_task",
                    f"task {task_id}: no data.{config.image_field}",
                    uri,
                    f"tasks with data.{config.image_field} (the image URL); see annotation.image_field",
                )
            )
            continue
        path, why = index.find(reference)
        if path is None:
            problems.append(
                ImageProblem(reference, "unknown_image", f"task {task_id}: {why}", uri, "an image of the ingested data")
            )
            continue
        for annotation in task.get("annotations") or []:
            where = f"task {task_id}, annotation {annotation.get('id', '?')}"
            if annotation.get("was_cancelled"):
                problems.append(ImageProblem(path, "cancelled", f"{where}: skipped by the annotator", uri))
                continue
            label, why = _choice(annotation.get("result"), config)
            annotator = _annotator(annotation.get("completed_by"))
            when = _time(annotation.get("updated_at") or annotation.get("created_at"))
            if label is None:
                problems.append(
                    ImageProblem(path, "bad_choice", f"{where}: {why}", uri, "exactly one class chosen per annotation")
                )
            elif label not in classes:
                problems.append(
                    ImageProblem(path, "unknown_class", f"{where}: unknown class '{label}'", uri, f"one of: {known}")
                )
            elif annotator is None or when is None:
                missing = "completed_by" if annotator is None else "updated_at"
                problems.append(
                    ImageProblem(path, "bad_annotation", f"{where}: no {missing}", uri, "completed_by and updated_at")
                )
            else:
                rows.append(
                    {
                        "sha256": index.sha[path],
                        "path": path,
                        "label": label,
                        "annotator": annotator,
                        "annotated_at": when,
                        "source": f"{uri}#task={task_id}",
                        "kind": "label-studio",
                    }
                )
    return _finish(rows, problems, config)


def read_annotation_csv(
    uri: str,
    manifest: pd.DataFrame,
    classes: list[str],
    config: AnnotationConfig,
    *,
    annotator: str | None = None,
    annotated_at: str | pd.Timestamp | None = None,
    raw: bytes | None = None,
) -> AnnotationBatch:
    """Read a ``path,label[,annotator][,annotated_at]`` CSV; the keyword arguments fill missing columns."""
    raw = read_bytes(uri) if raw is None else raw
    try:
        frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataValidationError(uri, f"malformed CSV ({detail})", expected="columns path,label[,annotator]") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    for column, fallback in (("path", ""), ("label", ""), ("annotator", annotator), ("annotated_at", annotated_at)):
        if column not in frame.columns and not fallback:
            raise DataValidationError(
                uri,
                f"column '{column}' not found",
                expected=f"CSV columns path,label[,annotator][,annotated_at] (has: {', '.join(frame.columns)})",
            )
    index = _ImageIndex(manifest)
    known = ", ".join(classes)
    default_time = _time(annotated_at)
    rows: list[dict] = []
    problems: list[ImageProblem] = []
    for row, record in enumerate(frame.to_dict("records"), start=1):
        reference, label = record["path"].strip(), record["label"].strip()
        who = (record.get("annotator") or "").strip() or annotator
        when = _time(record["annotated_at"]) if record.get("annotated_at", "").strip() else default_time
        path, why = index.find(reference)
        if path is None:
            problems.append(ImageProblem(reference, "unknown_image", f"row {row}: {why}", uri, "an ingested image"))
        elif label not in classes:
            problems.append(
                ImageProblem(path, "unknown_class", f"row {row}: unknown class '{label}'", uri, f"one of: {known}")
            )
        elif not who or when is None:
            missing = "annotator" if not who else "annotated_at (ISO 8601)"
            problems.append(ImageProblem(path, "bad_annotation", f"row {row}: no {missing}", uri, "a value"))
        else:
            rows.append(
                {
                    "sha256": index.sha[path],
                    "path": path,
                    "label": label,
                    "annotator": who,
                    "annotated_at": when,
                    "source": f"{uri}#row={row}",
                    "kind": "csv",
                }
            )
    return _finish(rows, problems, config)


def manifest_events(
    manifest: pd.DataFrame, annotated_at: str | pd.Timestamp, source: str, annotator: str = "plant"
) -> pd.DataFrame:
    """The labels of an ingested image manifest as events of ``annotator`` (unlabelled images give none)."""
    when = _time(annotated_at)
    if when is None:
        raise DataValidationError(source, f"'{annotated_at}' is not a time", expected="an ISO 8601 time")
    labelled = manifest[manifest["label"].notna()]
    rows = [
        {
            "sha256": sha,
            "path": path,
            "label": label,
            "annotator": annotator,
            "annotated_at": when,
            "source": source,
            "kind": "manifest",
        }
        for sha, path, label in zip(labelled["sha256"], labelled["path"], labelled["label"], strict=True)
    ]
    return _events_frame(rows)


def _empty_history() -> pd.DataFrame:
    """A history without events, with the canonical columns and time types."""
    frame = pd.DataFrame(columns=list(HISTORY_COLUMNS))
    for column in ("annotated_at", "recorded_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def append_history(history: pd.DataFrame, events: pd.DataFrame, recorded_at: str | pd.Timestamp) -> pd.DataFrame:
    """The history with the new events appended; an event repeating what its annotator last said is not new.

    Re-importing an export, or re-ingesting an unchanged label manifest, therefore adds nothing, while a changed
    label (a correction) is appended. Existing rows are kept as they are, in their order.
    """
    when = _time(recorded_at)
    if when is None:
        raise ValueError(f"recorded_at must be an ISO 8601 time, got {recorded_at!r}")
    history = _empty_history() if history is None or history.empty else history
    latest: dict[tuple[str, str], tuple[pd.Timestamp, str]] = {}
    seen: set[tuple] = set()
    for sha, who, at, label in zip(
        history["sha256"], history["annotator"], history["annotated_at"], history["label"], strict=True
    ):
        seen.add((sha, who, at, label))
        if (sha, who) not in latest or at >= latest[(sha, who)][0]:
            latest[(sha, who)] = (at, label)
    new = []
    for event in events.sort_values("annotated_at", kind="stable").to_dict("records"):
        key = (event["sha256"], event["annotator"])
        identity = (*key, event["annotated_at"], event["label"])
        current = latest.get(key)
        if identity in seen or (current is not None and current[1] == event["label"]):
            continue
        seen.add(identity)
        if current is None or event["annotated_at"] >= current[0]:
            latest[key] = (event["annotated_at"], event["label"])
        new.append({**event, "recorded_at": when})
    if not new:
        return history.reset_index(drop=True)
    added = pd.DataFrame(new, columns=list(HISTORY_COLUMNS))
    for column in ("annotated_at", "recorded_at"):
        added[column] = pd.to_datetime(added[column], utc=True)
    return pd.concat([history, added], ignore_index=True)


def resolve_labels(history: pd.DataFrame, config: AnnotationConfig) -> LabelResolution:
    """Resolve each image's label from its history (rules in the module docstring) and report conflicts."""
    window = pd.Timedelta(hours=config.conflict_window_hours)
    labels, conflicts = [], []
    ordered = history.assign(_order=range(len(history))).sort_values(
        ["sha256", "annotated_at", "recorded_at", "_order"], kind="stable"
    )
    proposals = []
    for sha, events in ordered.groupby("sha256", sort=True):
        opinions = events.drop_duplicates("annotator", keep="last")  # each annotator's latest label
        path = next((p for p in reversed(events["path"].tolist()) if p), "")  # feedback over HTTP names no path
        pending = _pending_proposals(opinions, config.operator_quorum)
        proposals += _proposal_rows(str(sha), path, opinions, pending)
        opinions = opinions[~opinions["label"].isin(pending) | (opinions["kind"] != _PROPOSAL_KIND)]
        if opinions.empty:  # nothing but pending proposals: the image keeps its manifest label
            continue
        newest = opinions["annotated_at"].max()
        delivered = opinions["kind"] == "manifest"
        experts = opinions[~delivered]
        if (
            not experts.empty
        ):  # the plant's delivered label is a default: any later expert or operator label corrects it
            superseded = delivered & (opinions["annotated_at"] <= experts["annotated_at"].max())
        else:
            superseded = delivered & False
        panel = opinions[(opinions["annotated_at"] >= newest - window) & ~superseded]
        older = opinions[(opinions["annotated_at"] < newest - window) | superseded]
        votes = collections.Counter(panel["label"])
        ranked = sorted(votes.items(), key=lambda item: (-item[1], item[0]))
        if len(votes) == 1:
            label, status = ranked[0][0], "agreed"
        elif config.on_conflict == "majority" and ranked[0][1] * 2 > len(panel):
            label, status = ranked[0][0], "majority"
        else:
            label, status = None, "excluded"
        if len(votes) > 1:
            conflicts.append(
                {
                    "sha256": sha,
                    "path": path,
                    "votes": ", ".join(f"{name}:{count}" for name, count in ranked),
                    "annotators": "; ".join(
                        f"{who}={said}" for who, said in sorted(zip(panel["annotator"], panel["label"], strict=True))
                    ),
                    "label": label,
                    "status": status,
                }
            )
        labels.append(
            {
                "sha256": sha,
                "path": path,
                "label": label,
                "status": status,
                "annotators": len(panel),
                "corrected": bool(label is not None and (older["label"] != label).any()),
                "decided_at": newest,
            }
        )
    return LabelResolution(
        labels=pd.DataFrame(labels, columns=list(LABEL_COLUMNS)),
        conflicts=pd.DataFrame(conflicts, columns=list(CONFLICT_COLUMNS)),
        proposals=pd.DataFrame(proposals, columns=list(PROPOSAL_COLUMNS)),
    )


def _pending_proposals(opinions: pd.DataFrame, quorum: int) -> set[str]:
    """Labels operators propose for one image that neither ``quorum`` operators nor an expert's label back yet."""
    proposed = opinions[opinions["kind"] == _PROPOSAL_KIND]
    confirmed = set(opinions.loc[opinions["kind"].isin(_EXPERT_KINDS), "label"])
    support = proposed.groupby("label")["annotator"].nunique()
    return {str(label) for label, operators in support.items() if operators < quorum and label not in confirmed}


def _proposal_rows(sha: str, path: str, opinions: pd.DataFrame, pending: set[str]) -> list[dict]:
    """One report row per label operators propose for an image, with who proposes it and whether it counts."""
    proposed = opinions[opinions["kind"] == _PROPOSAL_KIND]
    return [
        {
            "sha256": sha,
            "path": path,
            "label": label,
            "operators": "; ".join(sorted(group["annotator"])),
            "status": "pending" if label in pending else "accepted",
        }
        for label, group in proposed.groupby("label", sort=True)
    ]


def apply_labels(manifest: pd.DataFrame, resolution: LabelResolution) -> pd.DataFrame:
    """The image manifest with resolved labels and a ``label_status`` column; excluded images get a null label.

    Images without history keep their manifest label (status ``manifest``) or stay ``unlabelled``.
    """
    resolved = resolution.labels.set_index("sha256")
    out = manifest.copy()
    known = out["sha256"].isin(resolved.index)
    status = pd.Series("unlabelled", index=out.index, dtype=object)
    status[out["label"].notna()] = "manifest"
    status[known] = out.loc[known, "sha256"].map(resolved["status"])
    labels = out["label"].astype(object)
    labels[known] = out.loc[known, "sha256"].map(resolved["label"])
    # pandas-stubs reject None as `other`; a missing label must be None (not NaN) in the manifest
    out["label"] = labels.where(labels.notna(), None)  # type: ignore[call-overload]
    out["label_status"] = status
    return out


def _parquet(frame: pd.DataFrame) -> bytes:
    """Serialize a table to Parquet in memory so it can be written atomically."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _parse_history(uri: str, raw: bytes) -> pd.DataFrame:
    """A label history from Parquet bytes, checking its columns."""
    try:
        frame = pd.read_parquet(io.BytesIO(raw))
    except (OSError, ValueError) as exc:
        raise DataValidationError(uri, f"unreadable label history ({type(exc).__name__})", expected="Parquet") from None
    missing = [c for c in HISTORY_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(uri, f"columns missing: {', '.join(missing)}", expected=", ".join(HISTORY_COLUMNS))
    return frame[list(HISTORY_COLUMNS)]


def read_history(uri: str) -> pd.DataFrame:
    """The label history at ``uri``, or an empty one if none was written yet."""
    return _parse_history(uri, read_bytes(uri)) if exists(uri) else _empty_history()


def write_history(uri: str, history: pd.DataFrame) -> None:
    """Write the label history atomically."""
    write_bytes(uri, _parquet(history[list(HISTORY_COLUMNS)]))


def update_history(uri: str, events: pd.DataFrame, recorded_at: str | pd.Timestamp) -> pd.DataFrame:
    """Append events to the history at ``uri`` (created if absent), refusing if it changed while we appended."""
    before = read_bytes(uri) if exists(uri) else b""
    history = append_history(_parse_history(uri, before) if before else _empty_history(), events, recorded_at)
    now = read_bytes(uri) if exists(uri) else b""
    if sha256_hex(now) != sha256_hex(before):
        raise StorageError(uri, "label history changed while appending", expected="one writer at a time; run again")
    write_history(uri, history)
    return history


def write_resolution(resolution: LabelResolution, labels_uri: str, conflicts_uri: str) -> None:
    """Write the resolved labels and the conflict report (Parquet), each atomically."""
    write_bytes(labels_uri, _parquet(resolution.labels))
    write_bytes(conflicts_uri, _parquet(resolution.conflicts))


def read_export(uri: str, manifest: pd.DataFrame, classes: list[str], config: AnnotationConfig) -> AnnotationBatch:
    """An annotation export by its suffix: Label Studio JSON (``.json``) or CSV (anything else)."""
    if PurePosixPath(uri.split("?")[0]).suffix.lower() == ".json":
        return read_label_studio(uri, manifest, classes, config)
    return read_annotation_csv(uri, manifest, classes, config)


def label_manifest(
    manifest: pd.DataFrame,
    exports: list[str],
    extra_events: pd.DataFrame,
    history_uri: str,
    classes: list[str],
    config: AnnotationConfig,
    now: pd.Timestamp,
) -> tuple[pd.DataFrame, LabelResolution, list[ImageProblem]]:
    """The labelling step: every label event appended to the history, resolved, applied to the manifest.

    Events are the plant's manifest labels, the expert exports and ``extra_events`` (operator feedback). Returns
    the labelled manifest, the resolution (labels and conflicts) and the exports' skipped entries.
    """
    batches = [read_export(uri, manifest, classes, config) for uri in exports]
    events = pd.concat(
        [manifest_events(manifest, now, "image manifest"), *(b.events for b in batches), extra_events],
        ignore_index=True,
    )
    history = update_history(history_uri, events, now)
    resolution = resolve_labels(history, config)
    return apply_labels(manifest, resolution), resolution, [p for b in batches for p in b.skipped]


def feedback_events(feedback: list[ExplanationFeedback]) -> pd.DataFrame:
    """Corrected labels as label-history events of their operators, for ``annotations.append_history``."""
    rows = [
        {
            "sha256": f.image_sha256,
            "path": f.path,
            "label": f.corrected_label,
            "annotator": f.operator,
            "annotated_at": f.created,
            "source": f"feedback {f.id}",
            "kind": "feedback",
        }
        for f in feedback
        if f.corrected_label is not None
    ]
    frame = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    frame["annotated_at"] = pd.to_datetime(frame["annotated_at"], utc=True)
    return frame
