"""Compile every scenario pipeline to YAML for GitOps: deterministic bytes, no secrets, checkable in CI."""

from __future__ import annotations

import ast
import json
import re
import tempfile
from pathlib import Path

from kfp import compiler

from components.common.storage import atomic_write_bytes
from pipelines.scenarios import SCENARIOS

__all__ = ["COMPILED_DIR", "compile_all", "compile_scenario", "stale_files"]

COMPILED_DIR = Path(__file__).parent / "compiled"


_HEADER_DEFAULT = re.compile(r"^(#\s+\w+: (?:dict|list) \[Default: )(.*)(\])$", re.MULTILINE)


def _sorted_header_defaults(text: str) -> str:
    """Render dict/list defaults in KFP's header comment with sorted keys.

    kfp 2.17 prints them from a protobuf Struct whose key order varies between processes; the spec body is
    already sorted, so this makes the whole file byte-identical on every compile.
    """

    def render(match: re.Match) -> str:
        return match[1] + json.dumps(ast.literal_eval(match[2]), sort_keys=True) + match[3]

    return _HEADER_DEFAULT.sub(render, text)


def compile_scenario(name: str) -> bytes:
    """The compiled pipeline spec of one scenario, as bytes."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch, "pipeline.yaml")
        compiler.Compiler().compile(SCENARIOS[name].pipeline, str(path))
        return _sorted_header_defaults(path.read_text()).encode()


def compile_all(output_dir: Path = COMPILED_DIR) -> list[Path]:
    """Write every scenario's YAML into ``output_dir``; returns the files written."""
    written = []
    for name, scenario in sorted(SCENARIOS.items()):
        target = output_dir / scenario.compiled_file
        atomic_write_bytes(target, compile_scenario(name))
        written.append(target)
    return written


def stale_files(output_dir: Path = COMPILED_DIR) -> list[Path]:
    """Compiled files that are missing or differ from a fresh compile (what CI and GitOps check)."""
    stale = []
    for name, scenario in sorted(SCENARIOS.items()):
        target = output_dir / scenario.compiled_file
        if not target.is_file() or target.read_bytes() != compile_scenario(name):
            stale.append(target)
    return stale
