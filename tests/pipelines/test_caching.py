"""The caching policy as KFP on a cluster would read it from the compiled YAML (the local runner has no cache)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from shopfloor.common.fingerprint import fingerprint
from shopfloor.common.storage import write_bytes
from shopfloor.pipelines.caching import CACHING_POLICY
from shopfloor.pipelines.compile import COMPILED_DIR

COMPILED = sorted(p.name for p in COMPILED_DIR.glob("*.yaml"))


def _tasks(spec: dict) -> dict[str, dict]:
    """Every task of every DAG in a compiled pipeline (root, loops, conditions), by task name."""
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    return {name: task for dag in dags for name, task in dag["tasks"].items()}


def _step(task: dict) -> str | None:
    """The component a task runs (``comp-ingest`` -> ingest), or None for a loop or condition."""
    name = re.sub(r"-\d+$", "", task["componentRef"]["name"].removeprefix("comp-"))
    return None if name.startswith(("for-loop", "condition")) else name


@pytest.mark.parametrize("file_name", COMPILED)
def test_every_compiled_task_caches_exactly_as_the_policy_says(file_name: str) -> None:
    spec = next(yaml.safe_load_all((COMPILED_DIR / file_name).read_text()))
    steps = {name: _step(task) for name, task in _tasks(spec).items()}
    checked = 0
    for name, task in _tasks(spec).items():
        step = steps[name]
        if step is None:
            continue
        assert step in CACHING_POLICY, f"{file_name}: task {name} runs {step}, which the policy does not list"
        cached = task.get("cachingOptions", {}).get("enableCache", False)
        assert cached is CACHING_POLICY[step][0], f"{file_name}: {name} cached={cached}"
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("file_name", [n for n in COMPILED if n != "monitoring.yaml"])
def test_ingest_is_keyed_on_the_sources_fingerprint_which_is_never_cached(file_name: str) -> None:
    tasks = _tasks(next(yaml.safe_load_all((COMPILED_DIR / file_name).read_text())))
    ingest = next(task for task in tasks.values() if _step(task) in ("ingest", "ingest-images"))
    key = ingest["inputs"]["parameters"]["sources_fingerprint"]["taskOutputParameter"]
    assert key["producerTask"] == "fingerprint-sources"
    assert "enableCache" not in tasks["fingerprint-sources"].get("cachingOptions", {})


def test_no_step_that_reads_or_changes_outside_state_is_cached() -> None:
    outside = {"fingerprint-sources", "hpo-setup", "hpo-worker", "hpo-select", "evaluate", "publish", "deploy"}
    outside |= {"check-drift", "trigger-retraining", "label-images", "explain"}
    assert not any(CACHING_POLICY[step][0] for step in outside)
    assert {step for step, (cached, _) in CACHING_POLICY.items() if cached} == {
        "ingest",
        "ingest-images",
        "label",
        "train",
    }


def test_a_local_fingerprint_follows_the_content_not_the_name(tmp_path: Path) -> None:
    table = tmp_path / "sensors.csv"
    table.write_text("timestamp,asset_id,temp\n2026-01-01,a,1.0\n")
    before = fingerprint(table)
    assert fingerprint(table) == before
    table.write_text("timestamp,asset_id,temp\n2026-01-01,a,1.0\n2026-01-02,a,2.0\n")
    assert fingerprint(table) != before
    folder = tmp_path / "images"
    (folder / "ok").mkdir(parents=True)
    (folder / "ok" / "a.png").write_bytes(b"one")
    first = fingerprint(folder)
    (folder / "ok" / "b.png").write_bytes(b"two")
    assert fingerprint(folder) != first


def test_an_s3_fingerprint_follows_the_etags(s3_bucket: str) -> None:
    uri = f"s3://{s3_bucket}/plant/sensors.csv"
    write_bytes(uri, b"timestamp,asset_id,temp\n")
    before = fingerprint(uri)
    assert fingerprint(uri) == before
    write_bytes(uri, b"timestamp,asset_id,temp\n2026-01-01,a,1.0\n")
    assert fingerprint(uri) != before
    prefix = fingerprint(f"s3://{s3_bucket}/plant")
    write_bytes(f"s3://{s3_bucket}/plant/events.csv", b"timestamp\n")
    assert fingerprint(f"s3://{s3_bucket}/plant") != prefix
