"""The retraining trigger through the real kfp.Client against a stand-in of the KFP API (tests/kfp_api_standin)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfloor.common import kfp_api
from shopfloor.common.errors import ShopfloorError
from shopfloor.components.monitor.trigger import start_retraining_run
from tests.kfp_api_standin import KfpApiState, kfp_api_standin

ARGUMENTS = {"sensors_uri": "s3://plant/sensors.csv", "events_uri": "s3://plant/events.csv", "gate": {"min_f1": 0.5}}


@pytest.fixture
def in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A pod's view: the PodDefault's projected token file and the API host kfp reads from its environment."""
    token = tmp_path / "token"
    token.write_text("projected-sa-token")
    monkeypatch.setenv(kfp_api.TOKEN_PATH_ENV, str(token))
    monkeypatch.delenv(kfp_api.NAMESPACE_ENV, raising=False)
    with kfp_api_standin(token="projected-sa-token") as (url, state):
        monkeypatch.setenv(kfp_api.HOST_ENV, url)
        yield state


def test_the_in_cluster_path_sends_the_projected_token_and_the_profile_namespace(in_cluster: KfpApiState) -> None:
    run_id = start_retraining_run(
        "predictive-maintenance", "shopfloor-retraining", ARGUMENTS, "pm-retrain", namespace="plant-north"
    )
    assert run_id == "run-1"
    assert set(in_cluster.authorizations) == {"Bearer projected-sa-token"}, "every API call carries the token"
    (run,) = in_cluster.runs
    assert run["pipeline_version_reference"] == {"pipeline_id": "pipe-1", "pipeline_version_id": "ver-new"}
    assert run["display_name"] == "pm-retrain"
    assert run["runtime_config"]["parameters"] == ARGUMENTS, "dicts arrive as dicts"
    experiment = in_cluster.experiments["shopfloor-retraining"]
    assert run["experiment_id"] == experiment["experiment_id"] and experiment["namespace"] == "plant-north"


def test_the_token_is_read_again_on_every_call(in_cluster: KfpApiState, tmp_path: Path) -> None:
    start_retraining_run("predictive-maintenance", "e", {}, "first", namespace="plant-north")
    (tmp_path / "token").write_text("rotated-token")  # the kubelet rotates projected tokens
    in_cluster.token = "rotated-token"
    start_retraining_run("predictive-maintenance", "e", {}, "second", namespace="plant-north")
    assert in_cluster.authorizations[-1] == "Bearer rotated-token" and len(in_cluster.runs) == 2


def test_without_the_token_a_multi_user_api_refuses_and_the_error_says_so(
    in_cluster: KfpApiState, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(kfp_api.TOKEN_PATH_ENV, str(tmp_path / "absent"))
    with pytest.raises(Exception, match="401"):
        start_retraining_run("predictive-maintenance", "e", {}, "r", namespace="plant-north")
    assert in_cluster.runs == []


def test_an_unregistered_pipeline_is_a_clear_error(in_cluster: KfpApiState) -> None:
    with pytest.raises(ShopfloorError, match="no registered pipeline named 'anomaly-detection'"):
        start_retraining_run("anomaly-detection", "x", {}, "r", namespace="plant-north")
    assert in_cluster.runs == []


def test_with_nothing_configured_the_connection_is_kubeflows_in_cluster_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (kfp_api.HOST_ENV, kfp_api.NAMESPACE_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(kfp_api.TOKEN_PATH_ENV, str(tmp_path / "no-token"))
    connection = kfp_api.resolve_connection()
    assert connection.host == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
    assert connection.token_path is None
    assert kfp_api.resolve_connection(namespace="plant-north").namespace == "plant-north"
    monkeypatch.setenv(kfp_api.NAMESPACE_ENV, "plant-south")
    assert kfp_api.resolve_connection().namespace == "plant-south"


def test_a_retrain_of_named_sites_keeps_the_other_site_models_of_the_published_version(tmp_path: Path) -> None:
    from shopfloor.components.monitor.trigger import retrain_arguments
    from shopfloor.contracts.model_store import ModelStore

    store = ModelStore(str(tmp_path / "store"))
    fleet = {"data_schema": {"sites": {"site-a": {}, "site-b": {}}, "fleet": {"strategy": "per-site"}}, **ARGUMENTS}
    assert retrain_arguments(fleet, ["site-b"], store.uri, "pm") == fleet  # nothing published: everything retrains
    store.set_latest("pm", "v7")
    retrain = retrain_arguments(fleet, ["site-b"], store.uri, "pm")
    assert retrain["data_schema"]["fleet"]["retrain_only"] == ["site-b"]
    assert retrain["data_schema"]["fleet"]["keep_models_from"] == str(tmp_path / "store" / "pm" / "v7" / "model")
    assert retrain["data_schema"]["sites"] == fleet["data_schema"]["sites"] and retrain["gate"] == ARGUMENTS["gate"]
    assert retrain_arguments(fleet, [], store.uri, "pm") == fleet  # the whole model's drift retrains all of it
    one_model = {"data_schema": {"fleet": {"strategy": "global"}}, **ARGUMENTS}
    assert retrain_arguments(one_model, ["site-b"], store.uri, "pm") == one_model  # no site models to keep


def test_the_trigger_step_starts_the_run_of_the_named_sites(in_cluster: KfpApiState, tmp_path: Path) -> None:
    from shopfloor.components.monitor.component import trigger_retraining
    from shopfloor.contracts.model_store import ModelStore

    ModelStore(str(tmp_path / "store")).set_latest("pm", "v7")
    fleet = {"data_schema": {"fleet": {"strategy": "global-then-site"}}, **ARGUMENTS}
    run_id = trigger_retraining.python_func(
        model_name="pm",
        state_uri=str(tmp_path / "state"),
        pipeline_name="predictive-maintenance",
        experiment="shopfloor-retraining",
        namespace="plant-north",
        arguments=fleet,
        sites=["site-a"],
        model_store_uri=str(tmp_path / "store"),
    )
    (run,) = in_cluster.runs
    assert run["run_id"] == run_id
    sent = run["runtime_config"]["parameters"]["data_schema"]["fleet"]
    assert (sent["strategy"], sent["retrain_only"]) == ("global-then-site", ["site-a"])
