"""The on-disk model artifact every step and the model server share, and how to load it safely.

A model folder holds ``model.keras`` (Keras v3 archive), ``saved_model/`` (TensorFlow SavedModel export) and
``shopfloor_model.json`` (features, window, horizon, normalization, hyperparameters, versions, and ``engine``:
which model answers, ``keras`` or a classical challenger kept in ``classical/``). A published
version folder (see ``components/publish``) holds that folder as ``model/`` beside ``MODEL_CARD.md``,
``blessing.json`` (the gate's verdict and a sample of test-split scores) and ``profile.json`` (the training data
profile: the drift monitor's reference); ``resolve_model_dir`` accepts either.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from shopfloor import __version__
from shopfloor.common.errors import StorageError
from shopfloor.common.storage import atomic_output_dir, write_json

if TYPE_CHECKING:
    import keras

__all__ = [
    "BLESSING_FILE",
    "CLASSICAL_DIR",
    "MODEL_FILE",
    "MODEL_INFO",
    "PROFILE_FILE",
    "SAVED_MODEL_DIR",
    "STRATEGIES_DIR",
    "SiteEndpoint",
    "TrainResult",
    "blessing_record",
    "load_keras_model",
    "load_model_info",
    "model_version",
    "resolve_model_dir",
    "runtime_versions",
    "site_endpoints",
    "write_model",
]

MODEL_FILE = "model.keras"
CLASSICAL_DIR = "classical"  # a classical challenger's files (``families.classical``), when the family trains one
SAVED_MODEL_DIR = "saved_model"
STRATEGIES_DIR = "strategies"  # a fleet's site models, ``strategies/<strategy>/<site>/`` (each a model folder)
MODEL_INFO = "shopfloor_model.json"
BLESSING_FILE = "blessing.json"
PROFILE_FILE = "profile.json"


@dataclasses.dataclass(frozen=True)
class SiteEndpoint:
    """One site endpoint of a fleet model: which model answers there and at which alarm threshold."""

    site: str
    folder: str | None  # the site's own model folder, relative to the model folder; None: the global model
    threshold: float | None  # the threshold it answers at; None: the answering model's own


def site_endpoints(info: dict) -> list[SiteEndpoint]:
    """The site endpoints a fleet model (its ``fleet`` record) is served with; [] for any other model.

    A site with a model of its own under the shipped strategy answers with it at its threshold; any other site
    with the global model at the threshold chosen on that site's validation windows. The server loads these and
    the monitor judges them: one reading of the record for both.
    """
    record = info.get("fleet") or {}
    models = record.get("models") or {}
    own = models.get(record.get("strategy"), {}) if record.get("strategy") != "global" else {}
    found = []
    for site in record.get("sites") or []:
        mine = own.get(site)
        chosen = mine or models.get("global", {}).get(site) or {}
        value = (chosen.get("threshold") or {}).get("value")
        folder = str(mine["folder"]) if mine else None
        found.append(SiteEndpoint(str(site), folder, None if value is None else float(value)))
    return found


def resolve_model_dir(folder: str | Path) -> Path:
    """The model folder inside ``folder``: itself, or its ``model/`` when it is a published version."""
    root = Path(folder)
    for candidate in (root, root / "model"):
        if (candidate / MODEL_FILE).is_file() and (candidate / MODEL_INFO).is_file():
            return candidate
    raise StorageError(
        str(root),
        "no model here",
        expected=f"a folder with {MODEL_FILE} and {MODEL_INFO}, or a published version with model/",
    )


def load_model_info(folder: str | Path) -> dict:
    """The model's description (features, window, normalization, ...) from ``shopfloor_model.json``."""
    return json.loads((resolve_model_dir(folder) / MODEL_INFO).read_text())


def load_keras_model(folder: str | Path):
    """Load the Keras model safely (``safe_mode``: no arbitrary code, no pickle) and without training state."""
    import keras

    import shopfloor.common.keras_objects  # noqa: F401 - registers the custom layers for safe_mode loading

    return keras.saving.load_model(resolve_model_dir(folder) / MODEL_FILE, compile=False, safe_mode=True)


@dataclasses.dataclass
class TrainResult:
    """A trained model with its per-epoch history and the description written beside it."""

    model: keras.Model
    history: dict[str, list[float]]
    info: dict


def runtime_versions() -> dict[str, str]:
    """Versions of shopfloor, Keras and TensorFlow and the source commit, recorded with a model to reproduce it."""
    import keras
    import tensorflow as tf

    return {
        "shopfloor": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "git_commit": os.environ.get("SHOPFLOOR_GIT_COMMIT", ""),
    }


def write_model(result: TrainResult, folder: str, extra_files: dict[str, bytes] | None = None) -> None:
    """Write the .keras archive, SavedModel export, description and a family's own files, atomically as one folder.

    ``extra_files`` maps paths relative to the folder (e.g. a classical challenger's) to their content.
    """
    with atomic_output_dir(folder) as scratch:
        result.model.save(scratch / MODEL_FILE)
        result.model.export(str(scratch / SAVED_MODEL_DIR), format="tf_saved_model", verbose=False)
        for relative, content in sorted((extra_files or {}).items()):
            (scratch / relative).parent.mkdir(parents=True, exist_ok=True)
            (scratch / relative).write_bytes(content)
        write_json(scratch / MODEL_INFO, result.info)


def model_version(model_dir: str) -> str:
    """The version name of a trained model: ``v-`` and 12 hex digits of the sha256 of what decides its answers.

    That is the Keras archive, when another engine answers its name and files (a classical challenger's), and a
    fleet's site models.
    """
    import hashlib

    folder = Path(model_dir)
    digest = hashlib.sha256((folder / MODEL_FILE).read_bytes())
    info = json.loads((folder / MODEL_INFO).read_text()) if (folder / MODEL_INFO).is_file() else {}
    engine = str(info.get("engine", "keras"))
    if engine != "keras":
        digest.update(engine.encode())
        for path in sorted(p for p in (folder / CLASSICAL_DIR).rglob("*") if p.is_file()):
            digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    for path in sorted(p for p in (folder / STRATEGIES_DIR).rglob("*") if p.is_file()):  # a fleet's site models
        digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return "v-" + digest.hexdigest()[:12]


def blessing_record(
    gate: dict, version: str, scores: np.ndarray, metrics: dict[str, float], sample: int = 2000
) -> dict:
    """The blessing artifact: the gate's verdict, the test metrics and an even sample of test scores.

    Monitoring compares labelled traffic with the metrics, and the served scores with the sample.
    """
    ordered = np.sort(scores)
    reference = ordered[np.linspace(0, len(ordered) - 1, min(sample, len(ordered))).astype(int)]
    return {
        "blessed": gate["passed"],
        "model_version": version,
        "gate": gate,
        "metrics": {name: round(float(value), 6) for name, value in sorted(metrics.items())},
        "reference_scores": reference.round(6).tolist(),
    }
