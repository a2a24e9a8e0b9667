"""``shopfloor compile``: write, or check, the compiled pipeline YAML that Kubeflow Pipelines uploads."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from shopfloor.app.cli.shared import EXIT_ERROR, Subcommands

__all__ = ["CompileRequest", "add_parsers", "compile_pipelines"]


@dataclasses.dataclass(frozen=True)
class CompileRequest:
    """Where the compiled YAML goes, whether to only check it, and the image the steps run in ('' = default)."""

    output_dir: Path
    check: bool = False
    image: str = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CompileRequest:
        """The request a parsed `shopfloor compile` command line asks for."""
        return cls(output_dir=Path(args.output_dir), check=args.check, image=args.image or "")


def add_parsers(commands: Subcommands) -> None:
    """Add `shopfloor compile` to the command line."""
    from shopfloor.components._image import IMAGE_ENV
    from shopfloor.pipelines.compile import COMPILED_DIR

    compile_ = commands.add_parser("compile", help="compile every scenario pipeline to YAML")
    compile_.add_argument("--output-dir", default=str(COMPILED_DIR))
    compile_.add_argument("--check", action="store_true", help="fail if the YAML on disk is out of date")
    compile_.add_argument(
        "--image",
        help=f"REGISTRY/NAME:TAG every step and the InferenceService run (default: ${IMAGE_ENV}, else the "
        "package version's ghcr.io image)",
    )
    compile_.set_defaults(make_request=CompileRequest.from_args, execute=compile_pipelines)


def _compile_with_image(request: CompileRequest) -> int:
    """Compile in a fresh process whose components are declared with ``request.image``.

    Components take their image when their module is imported, so the image is set before any import: the same
    command runs again with ``$SHOPFLOOR_IMAGE`` set and without ``--image``.
    """
    from shopfloor.components._image import IMAGE_ENV

    command = [sys.executable, "-m", "shopfloor.app.cli", "compile", "--output-dir", str(request.output_dir)]
    command += ["--check"] if request.check else []
    return subprocess.run(command, env={**os.environ, IMAGE_ENV: request.image}, check=False).returncode


def compile_pipelines(request: CompileRequest) -> int:
    """Write (or with --check, verify) the compiled YAML of every scenario."""
    from shopfloor.common.errors import ConfigError
    from shopfloor.components._image import IMAGE, IMAGE_ENV, IMAGE_REFERENCE

    for source, image in (("--image", request.image), (f"${IMAGE_ENV}", IMAGE)):
        if image and not IMAGE_REFERENCE.fullmatch(image):
            raise ConfigError(
                "shopfloor compile",
                f"{image!r} is not an image reference",
                field=source,
                expected="REGISTRY/NAME:TAG, e.g. registry.plant.local/ml/shopfloor:0.1.0",
            )
    if request.image and request.image != IMAGE:
        return _compile_with_image(request)
    from shopfloor.pipelines.compile import compile_all, stale_files

    if request.check:
        stale = stale_files(request.output_dir)
        for path in stale:
            print(f"{path}: out of date; run 'shopfloor compile'", file=sys.stderr)
        return EXIT_ERROR if stale else 0
    for path in compile_all(request.output_dir):
        print(path)
    return 0
