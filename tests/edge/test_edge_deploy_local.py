"""deploy.runtime edge-* on the local target: the deploy step starts the edge runtime, pinned to the version."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from shopfloor.common.config import DeployConfig
from shopfloor.components.deploy.deploy import deploy_model
from shopfloor.components.deploy.local_target import running_server, stop_server
from shopfloor.contracts.model_store import ModelStore
from tests.edge.edge_process import close, keras_reference, v1_body

pytestmark = pytest.mark.slow  # deploys edge runtimes as processes: runs with the whole suite


def _call(url: str, body: dict | None = None) -> dict:
    """GET (or POST ``body`` as JSON to) ``url``: the JSON answer; any HTTP error fails the test."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
        return json.loads(answer.read())


def test_local_edge_deploy_serves_the_deployed_version_and_hands_over(
    edge_pm_store: Path, tmp_path: Path, trained_windows
) -> None:
    store = tmp_path / "store"
    shutil.copytree(edge_pm_store / "pm" / "v-pm01", store / "pm" / "v-pm01")
    shutil.copytree(edge_pm_store / "pm" / "v-pm01", store / "pm" / "v-pm02")
    ModelStore(str(store)).set_latest("pm", "v-pm02")  # latest names another version than the one deployed
    state = tmp_path / "serving"
    config = DeployConfig(target="local", local_state_dir=str(state), runtime="edge-float32", explainer=False)
    inputs = trained_windows.part("test").x[:4].copy()
    inputs[0, 3, 2] = np.nan  # a missing reading, as the full server takes it
    try:
        served = deploy_model(str(store / "pm" / "v-pm01"), "pm", config)
        assert (served.target, served.model_name, served.model_version) == ("local", "pm", "v-pm01")
        metadata = _call(f"{served.url}/v2/models/pm")
        assert metadata["versions"] == ["v-pm01"], "pinned: latest.json is not followed"
        assert metadata["platform"] == "litert-float32"
        rows = _call(served.v1_predict_url, v1_body(inputs))["predictions"]
        reference = keras_reference(store, "pm", inputs)
        assert close([row["failure_probability"] for row in rows], reference["failure_probability"])
        assert close([row["rul_hours"] for row in rows], reference["rul_hours"])
        first = running_server(state, "pm")
        assert first is not None and first["url"] == served.url

        newer = deploy_model(str(store / "pm" / "v-pm02"), "pm", config)
        assert _call(f"{newer.url}/v2/models/pm")["versions"] == ["v-pm02"]
        second = running_server(state, "pm")
        assert second is not None and second["pid"] != first["pid"] and second["model_version"] == "v-pm02"
    finally:
        stop_server(state, "pm")
    assert running_server(state, "pm") is None


def test_a_pinned_updater_serves_its_version_and_never_a_cached_other(edge_pm_store: Path, tmp_path: Path) -> None:
    from shopfloor.edge.updates import ModelUpdater

    store = tmp_path / "store"
    for version in ("v-pm01", "v-pm02"):
        shutil.copytree(edge_pm_store / "pm" / "v-pm01", store / "pm" / version)
    ModelStore(str(store)).set_latest("pm", "v-pm02")
    cache = tmp_path / "cache"
    following = ModelUpdater(str(store), "pm", cache, "float32")
    assert following.check() and following.current is not None and following.current.version == "v-pm02"
    pinned = ModelUpdater(str(store), "pm", cache, "float32", version="v-pm01")
    assert pinned.start_from_cache() is None, "the cache's current version is not the pinned one"
    assert pinned.check() and pinned.current is not None and pinned.current.version == "v-pm01"
    assert not pinned.check(), "latest.json moving does not move a pinned updater"
