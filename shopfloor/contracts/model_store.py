"""The model store: published versions, the pointer to production, and what operators write back to a model.

Layout under the store's root (a folder or an ``s3://`` prefix)::

  <root>/<model_name>/<version>/                 one immutable published version (``model/``, card, blessing, profile)
  <root>/<model_name>/latest.json                {"version": ..., "uri": ...}: the version in production
  <root>/<model_name>/feedback/<id>.json         operators' verdicts on explanations
  <root>/<model_name>/labels/history.parquet     label history (annotations and corrections over time)

This class is the only code that knows these names: publish moves the pointer, evaluate reads the champion,
the monitor and the CLI find the served version, label and explain find feedback and history.
"""

from __future__ import annotations

import dataclasses
import re

from shopfloor.common.storage import exists, join_uri, list_files, read_json, write_json

__all__ = ["LATEST_FILE", "MODEL_NAME", "ModelStore", "PublishedVersion", "VersionLocation", "locate_version"]

LATEST_FILE = "latest.json"
# a model's name: its folder in the store, its serving URLs and its Kubernetes objects (DNS-1123 label)
MODEL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclasses.dataclass(frozen=True)
class PublishedVersion:
    """One published version: its name and where its tree lies."""

    version: str
    uri: str


@dataclasses.dataclass(frozen=True)
class ModelStore:
    """A model store rooted at ``uri`` (a local folder or an ``s3://`` prefix)."""

    uri: str

    def model_uri(self, model_name: str) -> str:
        """Where everything of one model lies."""
        return join_uri(self.uri, model_name)

    def version_uri(self, model_name: str, version: str) -> str:
        """Where one published version's tree lies."""
        return join_uri(self.uri, model_name, version)

    def latest_uri(self, model_name: str) -> str:
        """The pointer file naming the version in production."""
        return join_uri(self.uri, model_name, LATEST_FILE)

    def latest(self, model_name: str) -> PublishedVersion | None:
        """The version in production, or None when nothing is published yet."""
        pointer = self.latest_uri(model_name)
        if not exists(pointer):
            return None
        record = read_json(pointer)
        return PublishedVersion(version=record["version"], uri=record["uri"])

    def require_latest(self, model_name: str) -> PublishedVersion:
        """The version in production; a missing pointer is the storage's one-line error, naming the file."""
        record = read_json(self.latest_uri(model_name))
        return PublishedVersion(version=record["version"], uri=record["uri"])

    def set_latest(self, model_name: str, version: str) -> PublishedVersion:
        """Move the production pointer to an already written version (the last write of a publish)."""
        published = PublishedVersion(version=version, uri=self.version_uri(model_name, version))
        write_json(self.latest_uri(model_name), dataclasses.asdict(published))
        return published

    def versions(self, model_name: str) -> list[str]:
        """Names of a model's published versions (``v-`` and a content hash), sorted."""
        prefix = self.model_uri(model_name).rstrip("/") + "/"
        names = {uri[len(prefix) :].split("/", 1)[0] for uri in list_files(prefix) if uri.startswith(prefix)}
        return sorted(name for name in names if name.startswith("v-"))

    def feedback_uri(self, model_name: str) -> str:
        """The folder of operators' feedback records (one JSON document each)."""
        return join_uri(self.uri, model_name, "feedback")

    def label_history_uri(self, model_name: str) -> str:
        """The label history table that labelling appends to and reads back."""
        return join_uri(self.uri, model_name, "labels", "history.parquet")


@dataclasses.dataclass(frozen=True)
class VersionLocation:
    """Where a published version lies: its store, its model's name and its own name."""

    store: ModelStore
    model_name: str
    version: str


def locate_version(uri: str) -> VersionLocation | None:
    """The store, model and version of a published version's URI (``<root>/<model>/<version>`` or its ``model/``).

    A server that only holds a download (KServe's ``/mnt/models``) is told the store this way, by the URI the
    version was deployed from. None when the URI has no model and version parts.
    """
    path = uri.rstrip("/").removesuffix("/model")
    root, _, version = path.rpartition("/")
    root, _, model_name = root.rpartition("/")
    if not root or root.endswith(":/") or not model_name or not version:
        return None
    return VersionLocation(ModelStore(root), model_name, version)
