"""`shopfloor compile`'s command line as a CompileRequest (compiling itself is tested in tests/pipelines)."""

from __future__ import annotations

from pathlib import Path

from shopfloor.app.cli import parse_request
from shopfloor.app.cli.compile import CompileRequest
from shopfloor.pipelines.compile import COMPILED_DIR


def test_compile_defaults_to_the_packaged_folder() -> None:
    assert parse_request(["compile"]) == CompileRequest(output_dir=Path(COMPILED_DIR), check=False)


def test_compile_check_elsewhere() -> None:
    assert parse_request(["compile", "--check", "--output-dir", "out"]) == CompileRequest(Path("out"), check=True)
