"""Publishing logic: a model that passed the gate goes to ``<store>/<model_name>/<version>/`` with its card.

This is the pusher of TFX: it refuses an unblessed model, writes the version as one complete tree (readers
never see half of it), and only then moves the ``latest.json`` pointer, so a deploy that reads the pointer
always finds a whole, gated model. A published version is never rewritten or deleted: its name is the hash of
its model archive, so publishing an existing version again only moves the pointer to it. What a crashed upload
left behind (objects without a tree manifest, scratch folders) is swept at the next publish.

Store layout:
  <store>/<model_name>/<version>/model/       the model folder (model.keras, saved_model/, shopfloor_model.json)
  <store>/<model_name>/<version>/MODEL_CARD.md
  <store>/<model_name>/<version>/blessing.json   the gate's verdict, with a sample of test-split scores
  <store>/<model_name>/<version>/profile.json    the training data profile (drift monitoring's reference)
  <store>/<model_name>/latest.json            {"version": ..., "uri": ...}
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from shopfloor.common.errors import StorageError
from shopfloor.common.progress import report_progress
from shopfloor.common.storage import exists, incomplete_trees, read_json, remove_tree, write_tree
from shopfloor.contracts.model_artifact import BLESSING_FILE, PROFILE_FILE
from shopfloor.contracts.model_store import ModelStore

__all__ = ["publish_model", "sweep_incomplete_versions"]


def publish_model(
    model_dir: str,
    model_card: str,
    blessing_path: str,
    store_uri: str,
    model_name: str,
    profile_path: str | None = None,
) -> str:
    """Publish a blessed model, its card and its training-data profile; return the published version's URI."""
    blessing = read_json(blessing_path)
    if blessing.get("blessed") is not True:
        raise StorageError(
            blessing_path,
            "model is not blessed by the quality gate",
            field="blessed",
            expected="a model that passed evaluate's gate",
        )
    version = blessing["model_version"]
    store = ModelStore(store_uri)
    target = store.version_uri(model_name, version)
    swept = sweep_incomplete_versions(store, model_name)
    if swept:
        report_progress(f"removed {len(swept)} incomplete upload(s) a crashed publish left: {', '.join(swept)}")
    if exists(target):
        report_progress(f"{version} is already published; it stays as it is and becomes the latest")
    else:
        with tempfile.TemporaryDirectory() as staging:
            shutil.copytree(model_dir, Path(staging, "model"))
            shutil.copyfile(model_card, Path(staging, "MODEL_CARD.md"))
            shutil.copyfile(blessing_path, Path(staging, BLESSING_FILE))
            if profile_path:
                shutil.copyfile(profile_path, Path(staging, PROFILE_FILE))
            write_tree(staging, target)
    return store.set_latest(model_name, version).uri


def sweep_incomplete_versions(store: ModelStore, model_name: str, older_than_s: float = 3600.0) -> list[str]:
    """Remove version uploads that never completed and are older than ``older_than_s`` (a live upload is younger)."""
    found = incomplete_trees(store.model_uri(model_name), older_than_s)
    for uri in found:
        remove_tree(uri)
    return found
