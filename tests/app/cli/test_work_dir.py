"""The work dir as an operator on a bad day meets it: two runs at once, a bad --work-dir, a hostile or stale stop."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from shopfloor.app.work_dir import exclusive_work_dir

SHOPFLOOR = str(Path(sys.executable).with_name("shopfloor"))


def _shopfloor(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SHOPFLOOR, *arguments], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_a_second_run_in_the_same_work_dir_fails_at_once_naming_the_first(tmp_path: Path) -> None:
    work = tmp_path / "work"
    with exclusive_work_dir(work, "run predictive-maintenance"):
        start = time.monotonic()
        second = _shopfloor("run", "predictive-maintenance", "--work-dir", str(work), cwd=tmp_path)
        assert time.monotonic() - start < 30, "refused at once, not after a pipeline"
    assert second.returncode == 1
    assert second.stderr.count("\n") == 1, second.stderr
    assert "in use by shopfloor run predictive-maintenance (pid" in second.stderr and "--work-dir" in second.stderr
    assert not (work / "pipeline-root").exists(), "the second run wrote nothing"
    with exclusive_work_dir(work, "run anomaly-detection"):  # released when the first ended
        pass


def test_a_work_dir_under_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    result = _shopfloor("run", "predictive-maintenance", "--work-dir", str(tmp_path / "file" / "work"), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "cannot write there" in result.stderr and "Traceback" not in result.stderr


def test_stop_refuses_a_name_that_is_a_path(tmp_path: Path) -> None:
    victim = tmp_path / "victim.json"
    victim.write_text("{}")
    work = tmp_path / "a" / "b" / "work"
    (work / "serving").mkdir(parents=True)
    result = _shopfloor("stop", "../../../victim", "--work-dir", str(work), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "not a model name" in result.stderr
    assert victim.exists()


def test_stop_never_signals_a_process_that_merely_reuses_the_pid(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        serving = tmp_path / "work" / "serving"
        serving.mkdir(parents=True)
        state = {"pid": bystander.pid, "url": "http://127.0.0.1:1", "model_name": "pm", "model_version": "v-1"}
        (serving / "pm.json").write_text(json.dumps(state))
        result = _shopfloor("stop", "pm", "--work-dir", str(tmp_path / "work"), cwd=tmp_path)
        assert result.returncode == 0 and "pm was not running" in result.stderr
        time.sleep(0.5)
        assert bystander.poll() is None, "the unrelated process is alive"
        assert not (serving / "pm.json").exists(), "the stale state is cleared"
    finally:
        bystander.kill()
        bystander.wait()


def test_serve_refuses_a_model_name_that_is_a_path_in_one_line(tmp_path: Path) -> None:
    result = _shopfloor(
        "serve", str(tmp_path / "model"), "--name", "../x", "--payload-log", str(tmp_path / "logs"), cwd=tmp_path
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --model-name: '../x' is not a model name")
    assert not (tmp_path / "logs").exists() and not (tmp_path.parent / "x").exists()
