"""Fuzzing scenario config files: any YAML gives a valid config or one ``ConfigError`` line naming the file.

Documents are arbitrary YAML (text, mappings of anything, YAML-only values such as dates, binary and anchors) and
near-valid ones: a scenario's full default config with one value replaced by garbage, a key added or removed.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from hypothesis import event, example, given
from hypothesis import strategies as st

from shopfloor.common.errors import ConfigError
from shopfloor.families.scenarios import load_config, parse_config, scenario_configs
from tests.fuzz.strategies import json_like, one_line

SOURCE = "plant.yaml"
SCENARIOS = sorted(scenario_configs())
_FILES = itertools.count()


def check_loaded(load, source: str) -> None:
    """``load()`` gives a config of a known scenario, or a one-line ConfigError naming ``source``."""
    try:
        config = load()
    except ConfigError as exc:
        event(f"rejected: {exc.field or exc.problem.split(' (')[0][:24]}")
        message = str(exc)
        assert one_line(message), message
        assert exc.source == source and message.startswith(source), message
    else:
        event("accepted")
        assert type(config) in scenario_configs().values()


# YAML-only scalars and tags a user can write: dates, binary, sets, anchors, merge keys, unsafe tags.
YAML_SNIPPETS = st.sampled_from(
    [
        "2026-01-01", "2026-01-01T00:00:00Z", "!!binary aGVsbG8=", "!!set {a, b}", ".inf", "-.nan", "0x1F", "0o17",
        "1_000", "~", "''", "'\\n'", '"\\u0000"', "!!python/name:os.system", "!!str 1", "!!int x", "&a [*a]",
        "{<<: {a: 1}}", "[1, [2, [3]]]", "? [a]\n  : 1", "|\n  two\n  lines", "yes", "NO", "1e999", "-1e999",
    ]
)  # fmt: skip


def document_text(value: object) -> str:
    """``value`` as a YAML document (bytes as !!binary, any key type)."""
    return yaml.safe_dump(value, allow_unicode=True)


@given(text=st.one_of(st.text(), st.builds(document_text, json_like())))
@example(text="scenario: [1]")  # an unhashable scenario name: was TypeError
@example(text="scenario: {predictive-maintenance: 1}")
@example(text="labeling:\n  window: 2026-02-30\n")  # a date-like value PyYAML cannot build: was ValueError
@example(text="labeling:\n  window: !!bool x\n")  # was KeyError
def test_any_yaml_text_is_a_config_or_a_config_error(text: str) -> None:
    check_loaded(lambda: parse_config(text, SOURCE), SOURCE)


def paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and list indices) into a dumped config, the root included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def replaced(document: object, path: tuple, value: object) -> object:
    """A copy of ``document`` with the value at ``path`` replaced."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {**document, head: replaced(document[head], rest, value)}
    assert isinstance(document, list)
    return [replaced(v, rest, value) if i == head else v for i, v in enumerate(document)]


GARBAGE = st.one_of(json_like(8), st.sampled_from([-1, 0, 10**30, float("nan"), float("inf"), "", "x" * 300]))


@st.composite
def near_valid_configs(draw) -> tuple[str, str | None]:
    """A scenario's full config as YAML with one or two mutations: a value replaced, a key added or removed.

    With the scenario the caller asks for: none (the file says), its own, or now and then another.
    """
    scenario = draw(st.sampled_from(SCENARIOS))
    document: object = scenario_configs()[scenario]().model_dump(mode="json")
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(paths(document)))
        action = draw(st.sampled_from(["replace", "add", "remove"]))
        parent_path = path[:-1]
        if action == "replace" or not path:
            document = replaced(document, path, draw(GARBAGE))
            continue
        parent = document
        for part in parent_path:
            parent = parent[part]
        if not isinstance(parent, dict):
            continue
        target = dict(parent)
        if action == "add":
            target[draw(st.one_of(st.text(max_size=12), st.integers(), st.none(), st.booleans()))] = draw(GARBAGE)
        else:
            target.pop(path[-1], None)
        document = replaced(document, parent_path, target)
    text = document_text(document)
    if draw(st.integers(0, 4)) == 0:  # a YAML-only value in place of one line's value
        lines = text.splitlines()
        index = draw(st.integers(0, len(lines) - 1))
        if ": " in lines[index]:
            key = lines[index].split(": ", 1)[0]
            lines[index] = f"{key}: {draw(YAML_SNIPPETS)}"
        text = "\n".join(lines) + "\n"
    return text, draw(st.sampled_from([None, None, scenario, scenario, scenario, *SCENARIOS]))


@pytest.fixture(scope="module")
def config_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-configs")


@given(case=near_valid_configs())
def test_near_valid_config_files_load_or_name_file_and_field(config_folder: Path, case: tuple[str, str | None]) -> None:
    text, scenario = case
    path = config_folder / f"config-{next(_FILES)}.yaml"
    path.write_text(text, encoding="utf-8")
    check_loaded(lambda: load_config(path, scenario), str(path))


@given(raw=st.binary(max_size=200))
def test_any_bytes_in_a_config_file_load_or_name_the_file(config_folder: Path, raw: bytes) -> None:
    path = config_folder / f"raw-{next(_FILES)}.yaml"
    path.write_bytes(raw)
    check_loaded(lambda: load_config(path), str(path))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("scenario: [1]", "scenario: unknown scenario [1]"),
        ("scenario: {a: 1}", "scenario: unknown scenario {'a': 1}"),
        ("[" * 1000 + "]" * 1000, "nested too deeply"),  # past Python's recursion limit: was RecursionError
        ("data:\n" + "- " * 3000 + "x", "nested too deeply"),
        ("labeling:\n  window: 2026-02-30\n", "not valid YAML at line 2 (cannot read this value: day is out of range"),
        ("labeling:\n  window: !!int 24h\n", "not valid YAML at line 2 (cannot read this value: invalid literal"),
        ("model:\n  dropout: !!float x\n", "not valid YAML at line 2 (cannot read this value: could not convert"),
        ("deploy:\n  explainer: !!bool maybe\n", "not valid YAML at line 2 (cannot read this value: 'maybe')"),
    ],
    ids=["list scenario", "mapping scenario", "deep flow", "deep block", "bad date", "!!int", "!!float", "!!bool"],
)
def test_found_by_fuzzing(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match="^plant.yaml: ") as caught:
        parse_config(text, SOURCE)
    assert needle in str(caught.value) and one_line(str(caught.value))
