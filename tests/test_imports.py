"""Each KFP step runs in a fresh Python process: a step imports only the heavy libraries it uses.

TensorFlow alone takes seconds to import, paid again by every step that pulls it in; so does pandas, a little
less. These tests import what a step's ``@dsl.component`` body imports (read from the body itself, so a new
import there is checked too), or run the body where it decides late what it needs, each in a fresh
interpreter, and check which heavy libraries ended up loaded.
"""

import ast
import inspect
import json
import os
import subprocess
import sys
import textwrap

import pytest

from shopfloor.components.deploy.component import deploy
from shopfloor.components.ingest.component import ingest, ingest_images
from shopfloor.components.label.component import label
from shopfloor.components.monitor.component import check_drift, trigger_retraining
from shopfloor.components.publish.component import publish

HEAVY = ("tensorflow", "keras", "keras_tuner", "pandas", "matplotlib", "sklearn", "optuna")
NO_MODEL = {"tensorflow", "keras", "keras_tuner"}


def body_imports(component) -> list[str]:
    """The modules a component's body imports, in order."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(component.python_func)))
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module)
        elif isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
    return modules


def loaded_after(code: str) -> set[str]:
    """Which of ``HEAVY`` a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


# run_monitoring imports these when it runs: the drift check's report, the retrain policy, the payload logs
MONITOR_RUN = [
    "shopfloor.components.monitor.policy",
    "shopfloor.components.monitor.report",
    "shopfloor.contracts.payload_log",
]

STEPS = [
    pytest.param(body_imports(ingest), NO_MODEL | {"matplotlib", "sklearn"}, id="ingest"),
    pytest.param(body_imports(ingest_images), NO_MODEL | {"matplotlib", "sklearn"}, id="ingest-images"),
    pytest.param(body_imports(label), NO_MODEL | {"matplotlib", "sklearn"}, id="label"),
    pytest.param(body_imports(publish), set(HEAVY), id="publish"),
    pytest.param(body_imports(deploy), set(HEAVY), id="deploy"),
    pytest.param(body_imports(check_drift) + MONITOR_RUN, NO_MODEL | {"matplotlib", "sklearn"}, id="check-drift"),
    pytest.param(body_imports(trigger_retraining), set(HEAVY), id="trigger-retraining"),
]


@pytest.mark.parametrize(("modules", "absent"), STEPS)
def test_step_imports_only_what_it_uses(modules: list[str], absent: set[str]):
    loaded = loaded_after("\n".join(f"import {module}" for module in modules))
    assert not loaded & absent, f"loaded {sorted(loaded & absent)} it does not use"


DISABLED_SEARCH = """
import tempfile
from pathlib import Path
from kfp.dsl import HTML, Artifact, Dataset, Metrics
from shopfloor.components.hpo.component import hpo_select, hpo_setup, hpo_worker

work = Path(tempfile.mkdtemp())
def out(kind, name):
    return kind(name=name, uri=str(work / name), metadata={})
common = dict(data=out(Dataset, "windows"), hpo={"enabled": False}, hyperparameters={}, data_schema={}, split={})
study = out(Artifact, "study")
hpo_setup.python_func(**common, study=study)
assert hpo_worker.python_func(**common, study=study, worker=0) == 0
hpo_select.python_func(
    **common, study=study, model_name="m", best_hyperparameters=out(Artifact, "best"),
    search_metrics=out(Metrics, "metrics"), report=out(HTML, "report"),
)
"""


def test_disabled_search_steps_import_no_model_library():
    """With ``hpo.enabled: false`` the three search steps only pass the model section on: no TensorFlow."""
    loaded = loaded_after(DISABLED_SEARCH)
    assert not loaded & (NO_MODEL | {"pandas", "optuna", "matplotlib", "sklearn"}), sorted(loaded)
