"""The on-disk model artifact every step and the model server share, and how to load it safely.

A model folder holds ``model.keras`` (Keras v3 archive), ``saved_model/`` (TensorFlow SavedModel export) and
``shopfloor_model.json`` (features, window, horizon, normalization, hyperparameters, versions). A published
version folder (see ``components/publish``) holds that folder as ``model/`` beside ``MODEL_CARD.md``,
``blessing.json`` (the gate's verdict and a sample of test-split scores) and ``profile.json`` (the training data
profile: the drift monitor's reference); ``resolve_model_dir`` accepts either.
"""

from __future__ import annotations

import json
from pathlib import Path

from shopfloor.common.errors import StorageError

__all__ = [
    "BLESSING_FILE",
    "MODEL_FILE",
    "MODEL_INFO",
    "PROFILE_FILE",
    "SAVED_MODEL_DIR",
    "load_keras_model",
    "load_model_info",
    "resolve_model_dir",
]

MODEL_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
MODEL_INFO = "shopfloor_model.json"
BLESSING_FILE = "blessing.json"
PROFILE_FILE = "profile.json"


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
