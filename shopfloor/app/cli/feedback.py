"""``shopfloor feedback``: an operator's verdict on an image model's explanation, for the next run to use."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from shopfloor.app.cli.shared import DEFAULT_WORK_DIR, Subcommands, model_store_uri

__all__ = ["FeedbackRequest", "add_parsers", "feedback"]


@dataclasses.dataclass(frozen=True)
class FeedbackRequest:
    """Which image, what the operator says about its explanation, who says it, and which model store keeps it."""

    image: str
    verdict: str
    by: str
    label: str | None = None
    note: str | None = None
    model: str = "visual-inspection"
    work_dir: Path = Path(DEFAULT_WORK_DIR)
    model_store: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> FeedbackRequest:
        """The request a parsed `shopfloor feedback` command line asks for."""
        return cls(
            image=args.image,
            verdict=args.verdict,
            by=args.by,
            label=args.label,
            note=args.note,
            model=args.model,
            work_dir=Path(args.work_dir),
            model_store=args.model_store,
        )


def add_parsers(commands: Subcommands) -> None:
    """Add `shopfloor feedback` to the command line."""
    feedback_ = commands.add_parser("feedback", help="mark an image model's explanation as right or wrong")
    feedback_.add_argument("image", help="the image file the explanation was about (path or s3://)")
    feedback_.add_argument("--verdict", required=True, choices=["right", "wrong-region", "wrong-label"])
    feedback_.add_argument("--label", help="the right class (required with --verdict wrong-label)")
    feedback_.add_argument("--by", required=True, help="who gives the feedback")
    feedback_.add_argument("--note", help="what was wrong (kept with the feedback)")
    feedback_.add_argument("--model", default="visual-inspection", help="model name in the store")
    feedback_.add_argument("--work-dir", default=DEFAULT_WORK_DIR)
    feedback_.add_argument("--model-store", help="model store (default: <work-dir>/model-store)")
    feedback_.set_defaults(make_request=FeedbackRequest.from_args, execute=feedback)


def feedback(request: FeedbackRequest) -> int:
    """Record an operator's verdict on an explained image, in the model store the next run reads."""
    from shopfloor.common.storage import read_bytes, sha256_hex
    from shopfloor.contracts.feedback import new_feedback, record_feedback
    from shopfloor.contracts.model_artifact import load_model_info
    from shopfloor.contracts.model_store import ModelStore

    store = model_store_uri(request.work_dir, request.model_store)
    latest = ModelStore(store).require_latest(request.model)
    classes = load_model_info(latest.uri)["classes"]
    image = read_bytes(request.image)
    record = new_feedback(
        request.model,
        latest.version,
        sha256_hex(image),
        request.verdict,
        request.by,
        classes,
        corrected_label=request.label,
        note=request.note or "",
        path=Path(request.image).name,
    )
    print(f"{record.id}: {record.verdict}" + (f" -> {record.corrected_label}" if record.corrected_label else ""))
    print(f"  stored: {record_feedback(store, record)} (the next run's labeling and explain report use it)")
    return 0
