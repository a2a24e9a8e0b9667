"""``shopfloor validate``: check a scenario's config and data the way a run would read them, run nothing."""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from shopfloor.app.cli.shared import DEFAULT_WORK_DIR, Subcommands, add_data_options, data_base
from shopfloor.families.scenarios import load_config

if TYPE_CHECKING:
    from shopfloor.components.ingest.ingest import IngestResult

__all__ = ["ValidateRequest", "add_parsers", "check_setup", "validate"]


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
    check_setup(scenario.name, result, scenario.arguments(config))
    return 0


def check_setup(family_key: str, ingested: IngestResult, arguments: dict) -> None:
    """Run what a sensor pipeline's steps check before training, with the run's own parameters: label, search.

    The labelling (failures present, assets enough for the split, windows that fit the data) and the search's
    setup (its space against the windows, data it can score) are the steps' own functions, on a scratch folder.
    """
    from shopfloor.common.config import HpoConfig, validated
    from shopfloor.components.hpo.steps import search_problem_or_none
    from shopfloor.components.ingest.ingest import write_outputs
    from shopfloor.components.label.label import run_label_sensors

    with tempfile.TemporaryDirectory(prefix="shopfloor-validate-") as scratch:
        tables = [str(Path(scratch, name)) for name in ("sensors.parquet", "events.parquet", "profile.json")]
        write_outputs(ingested, *tables)
        windows = str(Path(scratch, "windows"))
        labelled = run_label_sensors(
            family_key,
            tables[0],
            tables[1],
            ingested.features,
            arguments["data_schema"],
            arguments["labeling"],
            windows,
        )
        print(f"ok: {labelled.summary}")
        hpo = validated(HpoConfig, arguments["hpo"], "hpo")
        split = arguments.get("split", {})
        problem = search_problem_or_none(hpo, windows, arguments["hyperparameters"], arguments["data_schema"], split)
        print(f"ok: search of {hpo.trials} trials maximizing {problem.label}" if problem else "ok: no search")
