"""A search worker in its own process, for the shared-study tests.

python -m tests.components.hpo.hpo_worker_process URL STUDY SEED SECONDS_PER_TRIAL HEARTBEAT GRACE
"""

import sys
import time

from shopfloor.components.hpo.search import load_study, open_storage, run_worker
from shopfloor.components.hpo.search_space import OptunaHyperParameters


def objective(seconds: float):
    """A cheap objective over a small keras-tuner space (with a conditional), that takes ``seconds``."""

    def run(trial) -> float:
        hp = OptunaHyperParameters(trial)
        x = hp.Int("x", 0, 20)
        kind = hp.Choice("kind", ["a", "b"])
        with hp.conditional_scope("kind", ["b"]):
            y = hp.Float("y", 0.0, 1.0)
        time.sleep(seconds)
        return x + (y if kind == "b" else 0.0)

    return run


if __name__ == "__main__":
    url, name, seed, seconds, heartbeat, grace = sys.argv[1:7]
    storage = open_storage(url, heartbeat_s=int(heartbeat), grace_s=int(grace))
    ran = run_worker(load_study(storage, name, int(seed)), objective(float(seconds)), time.time() + 300, poll_s=0.2)
    print(f"ran {ran}", flush=True)
