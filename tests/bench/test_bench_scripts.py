"""Every bench script still runs: each in its ``--short`` mode (small data, few iterations), in a fresh process.

Short modes judge no figure; these tests check that the script finishes and prints its table and ratio lines,
so a change elsewhere that breaks a bench shows up in CI rather than on the day someone measures.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPTS = [
    pytest.param(
        "monitor_throughput.py",
        ["rows/s", "detect_drift (PSI, KS, Wasserstein, missing)", "ratio drift check / numpy pass:"],
        id="monitor_throughput",
    ),
    pytest.param(
        "local_runner_overhead.py",
        ["overhead/compute", "no-op step on the local runner", "train", "all steps"],
        id="local_runner_overhead",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "model_quality.py",
        ["validation_pr_auc", "shipped (", "shipped / classical test PR-AUC", "latency network / classical"],
        id="model_quality",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "hpo_search.py",
        ["best val PR-AUC", "time-to-equal-score", "median"],
        id="hpo_search",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "overfit_penalty.py",
        ["trials gap", "shipped train", "on / off:", "with the penalty / without", "median"],
        id="overfit_penalty",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "serving_latency.py",
        ["p50 ms", "served (payload logging off) against in-process", "/ predict()", "concurrent V1 batch 1"],
        id="serving_latency",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "serving_load.py",
        ["req/s", "kserve ModelServer (stock)", "client ceiling", "throughput ours / stock:", "p99 ours / stock:"],
        id="serving_load",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "edge.py",
        [
            "cold start s",
            "edge runtime (float32)",
            "full server (serving/)",
            "Keras in-process",
            "RSS 0.",
            "installed size 0.",
        ],
        id="edge",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "vision.py",
        ["latency ratio", "throughput ratio", "Keras model.predict", "served V1 (base64 PNG)"],
        id="vision",
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize(("script", "expected"), SCRIPTS)
def test_bench_script_runs_in_short_mode(script: str, expected: list[str]):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(Path("bench") / script), "--short"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for text in expected:
        assert text in result.stdout, f"{text!r} missing from:\n{result.stdout}"
