"""The retrain decision for one monitoring run, and the human-in-the-loop state behind it.

The monitor computes a drift verdict; this module decides what to do with it. Rules, first match wins:

0. An operator approved a request that has not started yet, and the cooldown and storm limit allow a start:
   ``retrain`` with that request's id (on a cluster, approval is recorded from the CLI and the next scheduled
   monitoring run starts it).
1. Not enough data: ``not-enough-data``; never retrain on too little data.
1b. The anomaly model sees the plant abnormal (a plant alert): ``plant-alert``, asking a human to inspect the
   plant; never a retrain, which would teach the model the fault as normal operation.
2. No drift: ``none``.
3. Drift, mode ``off``: ``none``, the reason saying retraining is off.
4. Drift, but a retrain started within ``cooldown_hours``, or ``max_runs_per_day`` retrains started in the last
   24 h (a rolling window): ``suppressed``, the reason giving the time a retrain becomes possible again.
5. Drift, mode ``approval``: if an open request exists, ``suppressed`` naming it, so requests never pile up.
   Open means pending and unexpired, or approved or rejected less than ``request_ttl_hours`` ago (an approved
   one is waiting to be started; a rejection stands that long, then the monitor asks again if drift persists).
   Otherwise a new request is created: ``request-approval`` with its id.
6. Drift, mode ``auto``: ``retrain``; the caller starts the run, then calls ``RetrainState.record_run()``.

Sites: in a fleet, the decision and the request it creates name the sites that drifted or degraded
(``Decision.sites``, ``ApprovalRequest.sites``; empty = the fleet as a whole, or not a fleet), so the retrain is
for those sites' models. A request keeps its sites: approved later, it starts a retrain of the sites it named, not
of whatever the latest monitoring run found. Requests stored before sites were named read as the whole fleet.

An approved request is started by ``shopfloor approve ID`` on one machine, or by the next monitoring run (rule 0);
both check ``can_start`` first, so the cooldown and the storm limit hold for approved starts too, then call
``record_run(request_id)``.

State lives under a folder or ``s3://`` prefix: ``<root>/<model>/requests/<id>.json`` (one file per request, so
two writers never touch the same file) and ``<root>/<model>/runs.json`` (retrain start times). Every write is
atomic, so readers never see a partial file. ``runs.json`` is read-modify-write: one monitor per model is
assumed; two writers at once can lose a run entry, never corrupt the file.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
import secrets
from collections.abc import Callable
from typing import Literal

from shopfloor.common.config import RetrainPolicy
from shopfloor.common.errors import ShopfloorError, StorageError
from shopfloor.common.storage import join_uri, list_documents, read_json, write_json

__all__ = [
    "ApprovalRequest",
    "Decision",
    "RetrainPolicy",
    "RetrainState",
    "can_start",
    "decide",
    "utc_now",
]

_MAX_HOURS = 24.0 * 366 * 10
_DAY = datetime.timedelta(hours=24)
_MODEL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_REQUEST_ID = re.compile(r"^[a-z0-9][-a-z0-9]{0,80}$")
_STATUSES = ("pending", "approved", "rejected", "expired", "started")


def utc_now() -> datetime.datetime:
    """The current time in UTC (the default clock; tests inject a fake one)."""
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass(frozen=True)
class Decision:
    """What one monitoring run decided, with one human sentence saying why."""

    action: Literal["none", "retrain", "request-approval", "not-enough-data", "suppressed", "plant-alert"]
    reason: str
    request_id: str | None = None
    sites: tuple[str, ...] = ()  # the drifted or degraded sites a retrain is for; () = the fleet as a whole


@dataclasses.dataclass(frozen=True)
class ApprovalRequest:
    """A proposal to retrain, waiting for (or carrying) an operator's decision and its why."""

    id: str  # short and human-typable: "pm-20261126-0930-a1b2"
    model_name: str
    created: str  # ISO 8601 UTC
    status: Literal["pending", "approved", "rejected", "expired", "started"]
    reason: str  # why retraining was proposed (the drift summary)
    decided_by: str | None = None
    decided_at: str | None = None  # ISO 8601 UTC
    note: str | None = None  # the operator's why, required to approve or reject
    expires: str | None = None  # ISO 8601 UTC; a pending request reads as "expired" from then on
    sites: tuple[str, ...] = ()  # the sites whose models retrain once approved; () = the fleet as a whole


def _as_utc(moment: datetime.datetime) -> datetime.datetime:
    """The same instant in UTC; a naive time is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def _iso(moment: datetime.datetime) -> str:
    """ISO 8601 UTC with a ``Z`` suffix, as stored in state files."""
    return _as_utc(moment).isoformat().replace("+00:00", "Z")


def _show(moment: datetime.datetime) -> str:
    """Minute-precision UTC for reasons, rounded up so "until" is never earlier than the real time."""
    moment = _as_utc(moment)
    if moment.second or moment.microsecond:
        moment = moment.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def _parse_time(text: object, source: str, field: str) -> datetime.datetime:
    """Read a stored ISO 8601 time, naming the file and field when it is not one."""
    try:
        return _as_utc(datetime.datetime.fromisoformat(str(text)))
    except ValueError:
        raise ShopfloorError(source, f"not a time: {text!r}", field=field, expected="ISO 8601 UTC") from None


def _hours(value: float) -> str:
    """Hours for a reason: ``24`` rather than ``24.0``."""
    return f"{value:g}"


def _request_from(document: object, source: str) -> ApprovalRequest:
    """An ``ApprovalRequest`` from its stored JSON, with a one-line error naming the file if it is malformed."""
    names = {f.name for f in dataclasses.fields(ApprovalRequest)}
    required = {f.name for f in dataclasses.fields(ApprovalRequest) if f.default is dataclasses.MISSING}
    if not isinstance(document, dict) or not required <= document.keys():
        raise ShopfloorError(source, "corrupt approval request", expected=f"a JSON object with {sorted(required)}")
    if document["status"] not in _STATUSES:
        raise ShopfloorError(
            source, f"unknown status {document['status']!r}", field="status", expected=", ".join(_STATUSES)
        )
    sites = document.get("sites") or []  # a request stored before sites were named has none: the whole fleet
    if not isinstance(sites, list) or not all(isinstance(site, str) for site in sites):
        raise ShopfloorError(source, f"sites: {sites!r}", field="sites", expected="a list of site names")
    return ApprovalRequest(**{k: v for k, v in document.items() if k in names} | {"sites": tuple(sites)})


def _id_prefix(model_name: str) -> str:
    """Initials of the model name for request ids: ``predictive-maintenance`` gives ``pm``."""
    return "".join(part[0] for part in model_name.split("-") if part)[:4]


class RetrainState:
    """Persistent state under a folder or s3:// prefix: ``<root>/<model>/requests/<id>.json`` and ``runs.json``.

    ``runs.json`` holds retrain start times; one monitor per model is assumed for it (see the module docstring).
    """

    def __init__(self, root: str, model_name: str, clock: Callable[[], datetime.datetime] = utc_now):
        if not _MODEL_NAME.match(model_name or ""):
            raise ShopfloorError(
                repr(model_name), "not a valid model name", field="model_name", expected="lowercase a-z, 0-9 and '-'"
            )
        self.root = str(root)
        self.model_name = model_name
        self.clock = clock
        self._base = join_uri(self.root, model_name)
        self._runs_uri = join_uri(self._base, "runs.json")
        self._requests_uri = join_uri(self._base, "requests")

    def _now(self) -> datetime.datetime:
        """The injected clock's time, in UTC."""
        return _as_utc(self.clock())

    def _read_runs(self) -> list[dict]:
        """The stored run entries; none when ``runs.json`` does not exist yet."""
        try:
            document = read_json(self._runs_uri)
        except StorageError as exc:
            if exc.problem in ("file not found", "no such object"):
                return []
            raise
        runs = document.get("runs") if isinstance(document, dict) else None
        if not isinstance(runs, list) or not all(isinstance(r, dict) and "started" in r for r in runs):
            raise ShopfloorError(self._runs_uri, "corrupt run list", expected='{"runs": [{"started": ISO time}]}')
        return runs

    def runs(self) -> list[datetime.datetime]:
        """Start times of every recorded retrain, oldest first."""
        return sorted(_parse_time(r["started"], self._runs_uri, "runs.started") for r in self._read_runs())

    def record_run(self, request_id: str | None = None) -> None:
        """Record that a retrain started now; with ``request_id``, that approved request becomes "started".

        The run is written before the request, so a crash in between over-counts runs (safe for the storm limit)
        rather than forgetting one.
        """
        request = None
        if request_id is not None:
            request = self.get(request_id)
            if request.status != "approved":
                raise ShopfloorError(
                    request.id, f"cannot start a retrain for a {request.status} request", expected="an approved request"
                )
        now = self._now()
        runs = self._read_runs()
        runs.append({"started": _iso(now), "request_id": request.id if request else None})
        write_json(self._runs_uri, {"model_name": self.model_name, "runs": runs})
        if request is not None:
            self._write(dataclasses.replace(request, status="started"))

    def _request_uri(self, request_id: str) -> str:
        """Where one request's file is."""
        return join_uri(self._requests_uri, f"{request_id}.json")

    def _write(self, request: ApprovalRequest) -> None:
        """Store one request atomically in its own file."""
        write_json(self._request_uri(request.id), dataclasses.asdict(request))

    def _effective(self, request: ApprovalRequest, now: datetime.datetime) -> ApprovalRequest:
        """The request as of ``now``: a pending one past its expiry reads as "expired"."""
        if request.status == "pending" and request.expires is not None:
            if now >= _parse_time(request.expires, self._request_uri(request.id), "expires"):
                return dataclasses.replace(request, status="expired")
        return request

    def _load(self, uri: str) -> ApprovalRequest:
        """Read one stored request file."""
        return _request_from(read_json(uri), uri)

    def requests(self, status: str | None = None) -> list[ApprovalRequest]:
        """Every request (or those with ``status``), oldest first; pending ones past their expiry read as "expired"."""
        if status is not None and status not in _STATUSES:
            raise ShopfloorError(repr(status), "unknown request status", field="status", expected=", ".join(_STATUSES))
        now = self._now()
        found = []
        for uri in list_documents(self._requests_uri):
            found.append(self._effective(self._load(uri), now))
        found.sort(key=lambda r: (r.created, r.id))
        return [r for r in found if status is None or r.status == status]

    def get(self, request_id: str) -> ApprovalRequest:
        """One request by id; an unknown id is an error naming it and listing the pending ids."""
        wanted = (request_id or "").strip().lower()
        if _REQUEST_ID.match(wanted):
            try:
                return self._effective(self._load(self._request_uri(wanted)), self._now())
            except StorageError as exc:
                if exc.problem not in ("file not found", "no such object"):
                    raise
        pending = [r.id for r in self.requests("pending")]
        raise ShopfloorError(
            repr(request_id),
            f"no such approval request for model {self.model_name!r}",
            expected=f"a pending request: {', '.join(pending)}" if pending else "a request id; none is pending",
        )

    def create_request(self, reason: str, *, ttl_hours: float = 72.0, sites: tuple[str, ...] = ()) -> ApprovalRequest:
        """Create a pending request to retrain (``sites``' models; () = the fleet's), expiring after ``ttl_hours``."""
        if not (isinstance(ttl_hours, int | float) and math.isfinite(ttl_hours) and 0 < ttl_hours <= _MAX_HOURS):
            raise ShopfloorError(repr(ttl_hours), "invalid request lifetime", field="ttl_hours", expected="hours > 0")
        now = self._now()
        stamp = now.strftime("%Y%m%d-%H%M")
        existing = {r.id for r in self.requests()}
        while True:  # a random suffix: two monitors creating requests in the same minute get distinct files
            request_id = f"{_id_prefix(self.model_name)}-{stamp}-{secrets.token_hex(2)}"
            if request_id not in existing:
                break
        request = ApprovalRequest(
            id=request_id,
            model_name=self.model_name,
            created=_iso(now),
            status="pending",
            reason=reason,
            expires=_iso(now + datetime.timedelta(hours=ttl_hours)),
            sites=tuple(sites),
        )
        self._write(request)
        return request

    def decide(self, request_id: str, approve: bool, by: str, note: str) -> ApprovalRequest:
        """Approve or reject a pending, unexpired request, recording who decided and why (both required)."""
        for field, value, expected in (("by", by, "who decides"), ("note", note, "why it is approved or rejected")):
            if not isinstance(value, str) or not value.strip():
                raise ShopfloorError(repr(request_id), "must not be empty", field=field, expected=expected)
        request = self.get(request_id)
        if request.status == "expired":
            raise ShopfloorError(
                request.id, f"expired at {request.expires}", expected="a pending request; the monitor asks again"
            )
        if request.status != "pending":
            who = f" (decided by {request.decided_by} at {request.decided_at})" if request.decided_by else ""
            raise ShopfloorError(request.id, f"already {request.status}{who}", expected="a pending request")
        decided = dataclasses.replace(
            request,
            status="approved" if approve else "rejected",
            decided_by=by.strip(),
            decided_at=_iso(self._now()),
            note=note.strip(),
        )
        self._write(decided)
        return decided

    def approved_pending_start(self) -> list[ApprovalRequest]:
        """Approved requests whose retrain has not started yet, oldest first."""
        return self.requests("approved")


def can_start(policy: RetrainPolicy, state: RetrainState) -> tuple[bool, str]:
    """Whether a retrain may start now under the cooldown and the storm limit, and why (or until when) not.

    Used by both paths that start retrains: ``decide`` in mode "auto" and the operator's approval.
    """
    now = state._now()
    if policy.max_runs_per_day == 0:
        return False, "max_runs_per_day is 0, so no retrain can start"
    runs = state.runs()
    blocked_until: list[tuple[datetime.datetime, str]] = []
    if runs and policy.cooldown_hours > 0:
        until = runs[-1] + datetime.timedelta(hours=policy.cooldown_hours)
        if now < until:
            blocked_until.append(
                (until, f"cooldown of {_hours(policy.cooldown_hours)} h after the retrain started {_show(runs[-1])}")
            )
    recent = [r for r in runs if r > now - _DAY]
    if len(recent) >= policy.max_runs_per_day:
        # possible again once enough of the oldest runs in the window have left it
        until = recent[len(recent) - policy.max_runs_per_day] + _DAY
        blocked_until.append((until, f"max_runs_per_day ({policy.max_runs_per_day}) reached in the last 24 h"))
    if blocked_until:
        until, why = max(blocked_until)
        return False, f"no retrain until {_show(until)}: {why}"
    return True, f"{len(recent)} of {policy.max_runs_per_day} retrains started in the last 24 h"


def _open_request(policy: RetrainPolicy, state: RetrainState) -> tuple[ApprovalRequest, str] | None:
    """The request that stops a new one from being created, and why; ``None`` when a new one may be created."""
    now = state._now()
    window = datetime.timedelta(hours=policy.request_ttl_hours)
    requests = state.requests()
    for request in requests:
        if request.status == "pending":
            expires = _parse_time(request.expires, request.id, "expires") if request.expires else None
            return request, f"waiting on approval request {request.id}" + (
                f" (open until {_show(expires)})" if expires else ""
            )
    for request in reversed(requests):
        if request.status == "started":  # a started retrain supersedes older decisions
            break
        if request.status in ("approved", "rejected") and request.decided_at:
            decided = _parse_time(request.decided_at, request.id, "decided_at")
            if now < decided + window:
                if request.status == "approved":
                    return request, f"request {request.id} is approved and waiting to be started"
                return request, (
                    f"request {request.id} was rejected by {request.decided_by}; "
                    f"asking again after {_show(decided + window)}"
                )
    return None


def _sentence(summary: str, outcome: str) -> str:
    """The drift summary and the outcome as one line."""
    summary = " ".join((summary or "").split())
    return f"{summary}; {outcome}" if summary else outcome


def decide(
    drifted: bool,
    enough_data: bool,
    summary: str,
    policy: RetrainPolicy,
    state: RetrainState,
    plant_alert: str = "",
    sites: tuple[str, ...] = (),
) -> Decision:
    """The retrain decision for one monitoring run (rules in the module docstring).

    In mode "approval" this may create a request in ``state``; it never starts a retrain itself. ``plant_alert``
    is the anomaly model's finding in words when it sees the plant abnormal, else empty. ``sites`` are the sites
    that drifted or degraded (() = the fleet as a whole): the decision and a request it creates name them, so a
    retrain is for those sites' models; an approved request that starts keeps the sites it was approved for.
    """
    approved = state.approved_pending_start()
    if approved and policy.mode != "off" and can_start(policy, state)[0]:
        request = approved[0]
        return Decision(
            "retrain",
            _sentence(summary, f"starting {request.id}, approved by {request.decided_by} ({request.note})"),
            request_id=request.id,
            sites=request.sites,
        )
    sites = tuple(sites)
    if not enough_data:
        return Decision("not-enough-data", _sentence(summary, "not enough data to judge drift, so no retrain"))
    if plant_alert:
        return Decision(
            "plant-alert",
            _sentence(
                summary,
                f"{plant_alert}: inspect the plant; no retrain, a model retrained now would learn the fault as normal",
            ),
        )
    if not drifted:
        return Decision("none", _sentence(summary, "no drift, no retrain needed"))
    if policy.mode == "off":
        return Decision("none", _sentence(summary, "retraining is off (retrain policy mode 'off')"), sites=sites)
    allowed, why = can_start(policy, state)
    if not allowed:
        return Decision("suppressed", _sentence(summary, why), sites=sites)
    if policy.mode == "auto":
        return Decision("retrain", _sentence(summary, f"retraining ({why})"), sites=sites)
    blocking = _open_request(policy, state)
    if blocking is not None:
        request, why = blocking
        return Decision(
            "suppressed", _sentence(summary, f"{why}; not creating another"), request_id=request.id, sites=sites
        )
    proposal = " ".join((summary or "").split()) or "drift detected"
    request = state.create_request(proposal, ttl_hours=policy.request_ttl_hours, sites=sites)
    return Decision(
        "request-approval",
        _sentence(summary, f"approval requested as {request.id} (approve with `shopfloor approve {request.id}`)"),
        request_id=request.id,
        sites=request.sites,
    )
