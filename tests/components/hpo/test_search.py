"""The shared study: exact trial counts with parallel worker processes, recovery of a killed worker's trial,
on the embedded SQLite default and on the PostgreSQL and MariaDB servers a cluster would use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from shopfloor.components.hpo.search import create_study, open_storage
from tests.servers import require_server

SERVERS = {
    "postgresql": "postgresql+psycopg2://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}


def _reachable(url: str) -> bool:
    import sqlalchemy

    try:
        with sqlalchemy.create_engine(url).connect():
            return True
    except Exception:
        return False


# the server databases run with the whole suite: each adds 20 s of worker processes to the fast one
_ON_SERVERS = [pytest.param(name, marks=[pytest.mark.server, pytest.mark.slow]) for name in SERVERS]


@pytest.fixture(params=["sqlite", *_ON_SERVERS])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage the search supports; a server that is not running fails under CI=true, else skips."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studies.db'}"
    url = SERVERS[request.param]
    require_server(_reachable(url), f"{request.param} server at {url.split('@')[-1]}")
    return url


def start_worker(url: str, study: str, seed: int, seconds: float, heartbeat: int = 5, grace: int = 20):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.components.hpo.hpo_worker_process",
            url,
            study,
            str(seed),
            str(seconds),
            str(heartbeat),
            str(grace),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )


def finished(process: subprocess.Popen, timeout: float = 240) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]
    return output


def trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=open_storage(url)).trials


@pytest.mark.slow  # 10-20 s of real training, search or load: runs with the whole suite
def test_two_workers_complete_exactly_the_requested_trials(storage_url: str) -> None:
    study = f"two-workers-{uuid.uuid4().hex[:8]}"
    create_study(open_storage(storage_url), study, trials=12)
    workers = [start_worker(storage_url, study, seed, seconds=0.4) for seed in (1, 2)]
    ran = [int(finished(worker).strip().splitlines()[-1].split()[1]) for worker in workers]
    done = trials(storage_url, study)
    tickets = [t for t in done if t.user_attrs.get("shopfloor_ticket")]
    assert len([t for t in tickets if t.state == TrialState.COMPLETE]) == 12
    assert not [t for t in done if t.state in (TrialState.WAITING, TrialState.RUNNING)]
    surplus = [t for t in done if t.user_attrs.get("shopfloor_surplus")]
    assert sum(ran) == 12 + len(surplus), "every ticket ran exactly once"
    assert all(not t.params for t in surplus), "a surplus trial is closed before it trains"


@pytest.mark.slow  # 10-20 s of real training, search or load: runs with the whole suite
def test_a_killed_worker_trial_is_recovered(storage_url: str) -> None:
    study = f"killed-worker-{uuid.uuid4().hex[:8]}"
    create_study(open_storage(storage_url), study, trials=4)
    doomed = start_worker(storage_url, study, seed=1, seconds=60, heartbeat=1, grace=3)
    deadline = time.monotonic() + 120
    while not [t for t in trials(storage_url, study) if t.state == TrialState.RUNNING]:
        assert doomed.poll() is None and time.monotonic() < deadline, "worker never started a trial"
        time.sleep(0.2)
    time.sleep(1.5)  # a heartbeat or two recorded
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait()
    finished(start_worker(storage_url, study, seed=2, seconds=0.1, heartbeat=1, grace=3))
    done = trials(storage_url, study)
    failed = [t for t in done if t.state == TrialState.FAIL]
    completed = [t for t in done if t.state == TrialState.COMPLETE]
    assert len(failed) == 1 and len(completed) == 4
    retry = [
        t for t in completed if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) is not None
    ]
    assert len(retry) == 1
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(retry[0]) == failed[0].number
    assert retry[0].params == failed[0].params, "the killed trial is retried with its own parameters"
