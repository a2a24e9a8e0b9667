"""Compile every scenario pipeline to YAML for GitOps: deterministic bytes, no secrets, checkable in CI."""

from __future__ import annotations

import ast
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from kfp import compiler

from shopfloor.common.storage import atomic_write_bytes
from shopfloor.pipelines.scenarios import SCENARIOS

__all__ = ["COMPILED_DIR", "compile_all", "compile_pipeline", "compile_scenario", "compiled_pipelines", "stale_files"]

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


def compiled_pipelines() -> dict[str, Callable]:
    """Every pipeline kept in ``pipelines/compiled/``, by file name: the scenarios and the monitoring loop."""
    from shopfloor.pipelines.monitoring import monitoring

    pipelines = {scenario.compiled_file: scenario.pipeline for scenario in SCENARIOS.values()}
    return {**pipelines, "monitoring.yaml": monitoring}


def compile_pipeline(pipeline: Callable) -> bytes:
    """The compiled pipeline spec (with its Kubernetes platform spec), as deterministic bytes."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch, "pipeline.yaml")
        compiler.Compiler().compile(pipeline, str(path))
        return _sorted_header_defaults(path.read_text()).encode()


def compile_scenario(name: str) -> bytes:
    """The compiled pipeline spec of one scenario, as bytes."""
    return compile_pipeline(SCENARIOS[name].pipeline)


def compile_all(output_dir: Path = COMPILED_DIR) -> list[Path]:
    """Write every pipeline's YAML into ``output_dir``; returns the files written."""
    written = []
    for file_name, pipeline in sorted(compiled_pipelines().items()):
        atomic_write_bytes(output_dir / file_name, compile_pipeline(pipeline))
        written.append(output_dir / file_name)
    return written


def stale_files(output_dir: Path = COMPILED_DIR) -> list[Path]:
    """Compiled files that are missing or differ from a fresh compile (what CI and GitOps check)."""
    return [
        output_dir / file_name
        for file_name, pipeline in sorted(compiled_pipelines().items())
        if not (output_dir / file_name).is_file() or (output_dir / file_name).read_bytes() != compile_pipeline(pipeline)
    ]
