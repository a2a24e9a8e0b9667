"""Compile every scenario pipeline to YAML for GitOps: deterministic bytes, no secrets, checkable in CI."""

from __future__ import annotations

import tempfile
from pathlib import Path

from kfp import compiler

from components.common.storage import atomic_write_bytes
from pipelines.scenarios import SCENARIOS

__all__ = ["COMPILED_DIR", "compile_all", "compile_scenario", "stale_files"]

COMPILED_DIR = Path(__file__).parent / "compiled"


def compile_scenario(name: str) -> bytes:
    """The compiled pipeline spec of one scenario, as bytes."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch, "pipeline.yaml")
        compiler.Compiler().compile(SCENARIOS[name].pipeline, str(path))
        return path.read_bytes()


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
