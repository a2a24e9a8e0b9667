"""The model store contract: the one place that knows latest.json, versions, feedback and label history."""

import pytest

from shopfloor.common.errors import StorageError
from shopfloor.common.storage import write_json
from shopfloor.contracts.model_store import LATEST_FILE, ModelStore, PublishedVersion


def _publish(store: ModelStore, name: str, version: str) -> None:
    """A version tree as publish writes it (one file is enough for the store), then the pointer."""
    write_json(f"{store.version_uri(name, version)}/model/shopfloor_model.json", {"model_type": "test"})
    store.set_latest(name, version)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path) -> ModelStore:
    if request.param == "local":
        return ModelStore(str(tmp_path / "store"))
    bucket = request.getfixturevalue("s3_bucket")
    return ModelStore(f"s3://{bucket}/models")


def test_nothing_published_yet(store: ModelStore) -> None:
    assert store.latest("pm") is None
    assert store.versions("pm") == []
    with pytest.raises(StorageError, match=LATEST_FILE):
        store.require_latest("pm")


def test_latest_moves_with_each_publish_and_versions_stay(store: ModelStore) -> None:
    _publish(store, "pm", "v-aaaaaaaaaaaa")
    _publish(store, "pm", "v-bbbbbbbbbbbb")
    _publish(store, "other", "v-cccccccccccc")
    expected = PublishedVersion("v-bbbbbbbbbbbb", store.version_uri("pm", "v-bbbbbbbbbbbb"))
    assert store.latest("pm") == store.require_latest("pm") == expected
    assert store.versions("pm") == ["v-aaaaaaaaaaaa", "v-bbbbbbbbbbbb"]
    assert store.versions("other") == ["v-cccccccccccc"]


def test_feedback_and_label_history_live_under_the_model(store: ModelStore) -> None:
    assert store.feedback_uri("pm") == f"{store.model_uri('pm')}/feedback"
    assert store.label_history_uri("pm") == f"{store.model_uri('pm')}/labels/history.parquet"
