"""``shopfloor approvals listen|list``: answer retrain requests over the plant's alert channel; list them.

``shopfloor approvals list`` shows every retrain request of the config's model (or those of one ``--status``): its
id, status, when it was made, the sites it is for (a fleet's drifted or degraded sites; "fleet" = the fleet as a
whole) and why, and who decided it.

An operator who got an ``approval-requested`` event answers on the channel's answers address (``monitor.alerts``:
MQTT topic ``<prefix>/answers/<model>``, NATS subject ``<prefix>.answers.<model>``, AMQP queue of that name) with
an ``approval-answer`` (``shopfloor.contracts.events``). The listener holds the same right as the model server:
the answer's token must be in the tokens file (``--tokens-file`` or ``$SHOPFLOOR_API_TOKENS_FILE``) with the
operator role, and the identity recorded is the token's, never a field of the answer. The decision is the one
``shopfloor approve|reject`` records (``RetrainState.decide``: who, why, when; pending and unexpired requests only),
then an ``approval-decided`` event goes out. An approved retrain is started by the next monitoring run (cooldown and
runs-per-day limits apply), as on a cluster. Answers are handled once by id; a refused one is one line and changes
nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from shopfloor.app.cli.shared import DEFAULT_WORK_DIR, Subcommands, monitor_state_uri

if TYPE_CHECKING:
    from collections.abc import Callable

    from shopfloor.common.config import AlertsConfig
    from shopfloor.components.monitor.policy import ApprovalRequest, RetrainState
    from shopfloor.serving.auth import Authorizer, RateLimiter

__all__ = [
    "AnswerHandler",
    "ListRequest",
    "ListenRequest",
    "add_parsers",
    "list_requests",
    "listen_for_answers",
    "request_line",
]


@dataclasses.dataclass(frozen=True)
class ListenRequest:
    """Which plant config names the channel and the model, where decisions are recorded, who may decide."""

    config: str | None = None
    work_dir: Path = Path(DEFAULT_WORK_DIR)
    state_uri: str | None = None
    tokens_file: str | None = None
    duration_s: float | None = None
    answers: int | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ListenRequest:
        """The request a parsed `shopfloor approvals listen` command line asks for."""
        return cls(
            config=args.config,
            work_dir=Path(args.work_dir),
            state_uri=args.state_uri,
            tokens_file=args.tokens_file,
            duration_s=args.duration_s,
            answers=args.answers,
        )


@dataclasses.dataclass(frozen=True)
class ListRequest:
    """Whose retrain requests to list (the config's model), from which state, and of which status (None: all)."""

    config: str | None = None
    work_dir: Path = Path(DEFAULT_WORK_DIR)
    state_uri: str | None = None
    status: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ListRequest:
        """The request a parsed `shopfloor approvals list` command line asks for."""
        return cls(config=args.config, work_dir=Path(args.work_dir), state_uri=args.state_uri, status=args.status)


def add_parsers(commands: Subcommands) -> None:
    """Add `shopfloor approvals listen` and `shopfloor approvals list` to the command line."""
    approvals = commands.add_parser("approvals", help="answer retrain requests over the plant's alert channel")
    verbs = approvals.add_subparsers(dest="approvals_command", required=True)
    listen = verbs.add_parser("listen", help="record approve/reject answers that arrive on monitor.alerts' channel")
    listen.add_argument("--config", help="scenario config naming the model and monitor.alerts (the channel)")
    listen.add_argument("--work-dir", default=DEFAULT_WORK_DIR)
    listen.add_argument("--state-uri", help="the monitor's state (default: <work-dir>/monitor; s3://... on a cluster)")
    listen.add_argument(
        "--tokens-file", help="who may decide: tokens with the operator role (default: $SHOPFLOOR_API_TOKENS_FILE)"
    )
    listen.add_argument("--duration-s", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    listen.add_argument("--answers", type=int, help="stop after this many answers")
    listen.set_defaults(make_request=ListenRequest.from_args, execute=listen_for_answers)
    listed = verbs.add_parser("list", help="list the retrain requests: status, sites, why and who decided")
    listed.add_argument("--config", help="scenario config naming the model (default: built-in defaults)")
    listed.add_argument("--work-dir", default=DEFAULT_WORK_DIR)
    listed.add_argument("--state-uri", help="the monitor's state (default: <work-dir>/monitor; s3://... on a cluster)")
    listed.add_argument("--status", choices=["pending", "approved", "rejected", "expired", "started"])
    listed.set_defaults(make_request=ListRequest.from_args, execute=list_requests)


class AnswerHandler:
    """Turns one answer's payload into a recorded decision, or into one line saying why not (nothing recorded)."""

    def __init__(
        self,
        model_name: str,
        state: RetrainState,
        authorizer: Authorizer,
        alerts: AlertsConfig,
        limiter: RateLimiter | None = None,
        say: Callable[[str], None] = print,
    ):
        from shopfloor.serving.auth import RateLimiter

        self.model_name = model_name
        self.state = state
        self.authorizer = authorizer
        self.alerts = alerts
        self.limiter = limiter or RateLimiter()
        self.say = say
        self.handled: set[str] = set()

    def __call__(self, payload: bytes) -> None:
        """Handle one answer; never raises for a bad or refused answer (the listener keeps listening)."""
        from shopfloor.common.errors import ShopfloorError
        from shopfloor.components.monitor.alerts import publish_decided
        from shopfloor.contracts.events import parse_answer
        from shopfloor.serving.auth import Denied

        try:
            answer = parse_answer(payload, "approval answer")
        except ShopfloorError as exc:
            self.say(f"refused: {exc}")
            return
        if answer.model != self.model_name:
            self.say(f"refused {answer.request_id}: model: {answer.model!r} (expected {self.model_name!r})")
            return
        if answer.id in self.handled:
            self.say(f"{answer.request_id}: answer {answer.id} already handled, dropped")
            return
        try:
            identity = self.authorizer.require(f"Bearer {answer.token}", "operator")
            self.limiter.take(identity)
        except Denied as denied:
            self.say(f"refused {answer.request_id}: {denied.reason}")
            return
        if answer.by and answer.by != identity.name:
            self.say(f"refused {answer.request_id}: by: {answer.by!r} is not the token's identity ({identity.name})")
            return
        try:
            decided = self.state.decide(answer.request_id, approve=answer.approve, by=identity.name, note=answer.note)
        except ShopfloorError as exc:
            self.say(f"refused {answer.request_id}: {exc}")
            return
        self.handled.add(answer.id)
        sites = f" for sites {', '.join(decided.sites)}" if decided.sites else ""
        self.say(f"{decided.id}{sites}: {decided.status} by {decided.decided_by} ({decided.note})")
        publish_decided(decided, self.alerts)


def listen_for_answers(request: ListenRequest) -> int:
    """Listen on the config's alert channel and record each answer an operator is allowed to give."""
    from shopfloor.common.alerts import Publisher, answer_address, channel_name, listen
    from shopfloor.common.errors import ConfigError
    from shopfloor.components.monitor.policy import RetrainState
    from shopfloor.families.scenarios import load_config
    from shopfloor.serving.auth import Authorizer

    config = load_config(request.config)
    alerts = config.monitor.alerts
    where = request.config or "built-in defaults"
    if alerts.kind not in ("mqtt", "nats", "amqp"):
        expected = "mqtt, nats or amqp (a channel answers can come back on)"
        raise ConfigError(where, f"kind {alerts.kind!r}", field="monitor.alerts.kind", expected=expected)
    authorizer = Authorizer.from_env(request.tokens_file)
    if not authorizer.grants:
        expected = "--tokens-file or $SHOPFLOOR_API_TOKENS_FILE with operator tokens"
        raise ConfigError("approvals listen", "no tokens: every answer would be refused", expected=expected)
    state = RetrainState(monitor_state_uri(request.work_dir, request.state_uri), config.model_name)
    handler = AnswerHandler(config.model_name, state, authorizer, alerts)
    Publisher(alerts).flush()  # events an earlier run could not deliver
    print(f"listening for approval answers on {answer_address(alerts, config.model_name)} ({channel_name(alerts)})")
    try:
        count = listen(alerts, config.model_name, handler, duration_s=request.duration_s, messages=request.answers)
    except KeyboardInterrupt:
        return 0
    print(f"{count} answer(s) read")
    return 0


def request_line(request: ApprovalRequest) -> str:
    """One request as `approvals list` shows it: id, status, created, its sites ("fleet": all), why, who decided."""
    sites = ", ".join(request.sites) or "fleet"
    decided = f" - {request.status} by {request.decided_by} ({request.note})" if request.decided_by else ""
    return f"{request.id}  {request.status}  {request.created}  sites: {sites}  {request.reason}{decided}"


def list_requests(request: ListRequest) -> int:
    """Print the config's model's retrain requests, oldest first, each with the sites it is for."""
    from shopfloor.components.monitor.policy import RetrainState
    from shopfloor.families.scenarios import load_config

    config = load_config(request.config)
    state = RetrainState(monitor_state_uri(request.work_dir, request.state_uri), config.model_name)
    found = state.requests(request.status)
    for each in found:
        print(request_line(each))
    if not found:
        print(f"no {request.status + ' ' if request.status else ''}retrain requests for {config.model_name}")
    return 0
