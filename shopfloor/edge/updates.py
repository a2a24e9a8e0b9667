"""Model updates on the edge: pull the published version from the model store, verify it, swap it atomically.

The store (a folder or ``s3://``; :class:`shopfloor.contracts.model_store.ModelStore`) names the version in
production in ``<model>/latest.json``. A newer version is downloaded file by file (only what the edge needs:
``model/shopfloor_model.json``, ``model/edge/tflite.json``, the variant's ``.tflite``, ``blessing.json``) into a
temporary folder of the local cache, its flatbuffer checked against the sha256 of ``tflite.json``, loaded, and
only then renamed into ``<cache>/<version>`` and swapped in as the served model: a request is answered by the old
version or by the new one, never by half a download. ``<cache>/current.json`` names the version last swapped in,
so a device that restarts without a link to the store serves it until the store is back.

A pinned updater (``version``, what ``shopfloor-edge --version`` and the KServe predictor use) serves that one
published version and never follows ``latest.json``: on a cluster the deploy step decides which version serves
(canary, rollback), and a predictor that moved by itself would undo both.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from shopfloor.common.storage import exists, join_uri, read_bytes
from shopfloor.contracts.edge import EDGE_DIR, EDGE_INFO, VARIANT_FILES
from shopfloor.contracts.model_store import ModelStore, PublishedVersion
from shopfloor.edge.model import ServedEdgeModel

__all__ = ["ModelUpdater"]

_LOGGER = logging.getLogger("shopfloor.edge")
_CURRENT = "current.json"


class ModelUpdater:
    """Keeps ``current`` the newest published version of one model (or the pinned one), from a store into a cache."""

    def __init__(
        self,
        store_uri: str,
        name: str,
        cache_dir: str | Path,
        variant: str = "int8",
        max_batch: int = 1024,
        version: str = "",
    ):
        self.store, self.name, self.variant, self.max_batch = ModelStore(store_uri), name, variant, max_batch
        self.pinned = version
        self.cache = Path(cache_dir) / name
        self.cache.mkdir(parents=True, exist_ok=True)
        self.current: ServedEdgeModel | None = None
        self._lock = threading.Lock()  # one update at a time
        self.listeners: list[Callable[[ServedEdgeModel], None]] = []

    def start_from_cache(self) -> ServedEdgeModel | None:
        """Serve the version swapped in last time, if the cache holds one (before the store is asked)."""
        pointer = self.cache / _CURRENT
        if self.current is None and pointer.is_file():
            version = json.loads(pointer.read_text())["version"]
            if self.pinned and version != self.pinned:
                return None  # another version than the pinned one: never serve it, not even until the store answers
            try:
                self._swap(ServedEdgeModel(self.name, self.cache / version, version, self.variant, self.max_batch))
            except (OSError, ValueError, KeyError) as exc:
                _LOGGER.warning("edge %s: cached version %s not usable: %s", self.name, version, exc)
        return self.current

    def check(self) -> bool:
        """Swap in the published version if it is not the one served; True when it changed.

        Raises:
            shopfloor.common.errors.StorageError: If the store cannot be read (the served model stays).
            ValueError: If the new version's files fail their checks (the served model stays).
        """
        with self._lock:
            latest = self._wanted()
            if latest is None or (self.current is not None and self.current.version == latest.version):
                return False
            folder = self.cache / latest.version
            if not folder.is_dir():
                self._download(latest.uri, folder)
            model = ServedEdgeModel(self.name, folder, latest.version, self.variant, self.max_batch)
            self._swap(model)
            (self.cache / _CURRENT).write_text(json.dumps({"version": latest.version}))
            _LOGGER.info("edge %s: now serving %s (%s)", self.name, latest.version, model.variant)
            return True

    def _wanted(self) -> PublishedVersion | None:
        """The version to serve: the pinned one, or what ``latest.json`` names (None when nothing is published)."""
        if self.pinned:
            return PublishedVersion(self.pinned, self.store.version_uri(self.name, self.pinned))
        return self.store.latest(self.name)

    def _download(self, version_uri: str, folder: Path) -> None:
        """The version's edge files into ``folder``, through a temporary folder renamed only once verified."""
        scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=self.cache))
        try:
            edge_uri = join_uri(version_uri, "model", EDGE_DIR)
            files = {"model/shopfloor_model.json": join_uri(version_uri, "model", "shopfloor_model.json")}
            files[f"model/{EDGE_DIR}/{EDGE_INFO}"] = join_uri(edge_uri, EDGE_INFO)
            for relative, uri in files.items():
                self._fetch(uri, scratch / relative)
            published = json.loads((scratch / "model" / EDGE_DIR / EDGE_INFO).read_text()).get("variants", {})
            for variant in published:
                self._fetch(
                    join_uri(edge_uri, VARIANT_FILES[variant]), scratch / "model" / EDGE_DIR / VARIANT_FILES[variant]
                )
            blessing = join_uri(version_uri, "blessing.json")
            if exists(blessing):
                self._fetch(blessing, scratch / "blessing.json")
            ServedEdgeModel(self.name, scratch, folder.name, self.variant, self.max_batch)  # verifies sha256, loads
            scratch.rename(folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    @staticmethod
    def _fetch(uri: str, target: Path) -> None:
        """One file from the store to a local path."""
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_bytes(uri))

    def _swap(self, model: ServedEdgeModel) -> None:
        """Make ``model`` the served one (one reference assignment) and tell the listeners."""
        self.current = model
        for listener in self.listeners:
            listener(model)
