"""``shopfloor validate``: check a scenario's config and data the way a run would read them, run nothing."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from shopfloor.app.cli.shared import DEFAULT_WORK_DIR, Subcommands, add_data_options, data_base
from shopfloor.families.scenarios import load_config

__all__ = ["ValidateRequest", "add_parsers", "validate"]


@dataclasses.dataclass(frozen=True)
class ValidateRequest:
    """Which scenario's config and data to check; the work dir holds generated demo data."""

    scenario: str
    data: str | None = None
    config: str | None = None
    work_dir: Path = Path(DEFAULT_WORK_DIR)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ValidateRequest:
        """The request a parsed `shopfloor validate` command line asks for."""
        return cls(scenario=args.scenario, data=args.data, config=args.config, work_dir=Path(args.work_dir))


def add_parsers(commands: Subcommands) -> None:
    """Add `shopfloor validate` to the command line."""
    validate_ = commands.add_parser("validate", help="check a config and its data, run nothing")
    add_data_options(validate_)
    validate_.set_defaults(make_request=ValidateRequest.from_args, execute=validate)


def validate(request: ValidateRequest) -> int:
    """Check a config and its data without running anything."""
    from shopfloor.components.ingest.ingest import ingest
    from shopfloor.families.visual_inspection.config import VisualInspectionConfig
    from shopfloor.pipelines.scenarios import SCENARIOS

    scenario = SCENARIOS[request.scenario]
    config = load_config(request.config, scenario.name)  # a config typo is reported before any data is read
    config = config.resolve_data(data_base(scenario, request.data, request.config, request.work_dir.resolve()))
    if isinstance(config, VisualInspectionConfig):  # the visual-inspection scenario
        from shopfloor.components.ingest.images import ingest_images

        found = ingest_images(config.data_root, config.data)
        print(f"ok: {len(found.manifest)} images, {found.profile['class_counts']}; {len(found.skipped)} skipped")
        return 0
    result = ingest(config.data.sensors, config.data.events, config.data)
    print(
        f"ok: {len(result.sensors)} readings of {result.profile['assets']} assets, features "
        f"{', '.join(result.features)}; {len(result.events)} events"
    )
    return 0
