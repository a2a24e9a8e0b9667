"""``shopfloor compile``: write, or check, the compiled pipeline YAML that Kubeflow Pipelines uploads."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from shopfloor.app.cli.shared import EXIT_ERROR, Subcommands

__all__ = ["CompileRequest", "add_parsers", "compile_pipelines"]


@dataclasses.dataclass(frozen=True)
class CompileRequest:
    """Where the compiled YAML goes, and whether to only check that it is up to date."""

    output_dir: Path
    check: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CompileRequest:
        """The request a parsed `shopfloor compile` command line asks for."""
        return cls(output_dir=Path(args.output_dir), check=args.check)


def add_parsers(commands: Subcommands) -> None:
    """Add `shopfloor compile` to the command line."""
    from shopfloor.pipelines.compile import COMPILED_DIR

    compile_ = commands.add_parser("compile", help="compile every scenario pipeline to YAML")
    compile_.add_argument("--output-dir", default=str(COMPILED_DIR))
    compile_.add_argument("--check", action="store_true", help="fail if the YAML on disk is out of date")
    compile_.set_defaults(make_request=CompileRequest.from_args, execute=compile_pipelines)


def compile_pipelines(request: CompileRequest) -> int:
    """Write (or with --check, verify) the compiled YAML of every scenario."""
    from shopfloor.pipelines.compile import compile_all, stale_files

    if request.check:
        stale = stale_files(request.output_dir)
        for path in stale:
            print(f"{path}: out of date; run 'shopfloor compile'", file=sys.stderr)
        return EXIT_ERROR if stale else 0
    for path in compile_all(request.output_dir):
        print(path)
    return 0
