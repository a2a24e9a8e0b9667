"""The edge runtime in a virtual environment without TensorFlow answers what Keras answers, within tolerance.

The environment holds only the ``edge`` extra's pinned requirements (LiteRT, NumPy, prometheus-client, paho-mqtt,
minio, orjson, pillow) and our ``shopfloor`` package without its dependencies; the models are the session's real
trained ones, exported in this process. Stated tolerance: float32 within ``TOLERANCE`` * max(1, max |keras|)
(1e-3) on every output; int8 (weights only for window models) within the largest error its export recorded on the
test split; thresholded decisions agree except within that distance of the threshold.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.edge.edge_process import close, copy_model, edge_args, keras_reference, start_edge, v1_body

pytestmark = pytest.mark.slow


def test_the_venv_has_no_tensorflow(edge_venv):
    python, env = edge_venv
    probe = subprocess.run(
        [str(python), "-P", "-c", "import tensorflow"], env=env, capture_output=True, text=True, check=False
    )
    assert probe.returncode != 0 and "No module named 'tensorflow'" in probe.stderr
    script = "import json, sys, shopfloor.edge.cli, shopfloor.edge.mqtt; print(json.dumps(sorted(sys.modules)))"
    loaded = subprocess.run([str(python), "-P", "-c", script], env=env, capture_output=True, text=True, check=True)
    assert not {"keras", "pandas", "kserve", "fastapi", "tensorflow"} & set(json.loads(loaded.stdout))


def _inputs(name: str, trained_windows, anomaly_windows) -> np.ndarray:
    if name == "pm":
        x = trained_windows.part("test").x[:8].copy()
        x[0, 2, 1] = np.nan  # a missing reading (V1 null)
        return x
    return anomaly_windows.part("test").x[:8]


def _allowed(store: Path, name: str, variant: str, reference: np.ndarray) -> float:
    """The stated tolerance of one variant for outputs of this size."""
    if variant == "float32":
        return 1e-3 * max(1.0, float(np.abs(reference).max()))
    info = json.loads((store / name / f"v-{name}01" / "model" / "edge" / "tflite.json").read_text())
    return float(info["variants"]["int8"]["max_abs_error"]) + 1e-5


@pytest.mark.parametrize(("name", "variant"), [("pm", "float32"), ("ad", "float32"), ("ad", "int8")])
def test_v1_and_v2_answers_match_keras_without_tensorflow(
    name, variant, edge_venv, edge_ad_store, edge_pm_store, trained_windows, anomaly_windows, tmp_path
):
    python, env = edge_venv
    store = tmp_path / "store"
    copy_model(edge_pm_store if name == "pm" else edge_ad_store, store, name)
    inputs = _inputs(name, trained_windows, anomaly_windows)
    reference = keras_reference(store, name, inputs)
    edge = start_edge(edge_args(store, name, tmp_path, "--variant", variant), python=str(python), env=env, cwd=tmp_path)
    try:
        assert any(f"litert-{variant}" in line for line in edge.lines), edge.lines
        code, v1 = edge.post(f"/v1/models/{name}:predict", v1_body(inputs))
        assert code == 200, v1
        for output, expected in reference.items():
            got = np.asarray([row[output] for row in v1["predictions"]], dtype=np.float64)
            assert np.abs(got - expected).max() <= _allowed(store, name, variant, expected), output
        clean = inputs[1:]  # V2 JSON cannot carry NaN: the windows without a missing reading
        body = {"id": "r", "inputs": [{"name": "window", "datatype": "FP32", "shape": list(clean.shape),
                                       "data": clean.ravel().tolist()}]}  # fmt: skip
        code, v2 = edge.post(f"/v2/models/{name}/infer", body)
        assert code == 200 and v2["model_version"] == f"v-{name}01", v2
        outputs = {o["name"]: o["data"] for o in v2["outputs"]}
        for output, expected in reference.items():
            got = np.asarray(outputs[output], dtype=np.float64)
            assert np.abs(got - expected[1:]).max() <= _allowed(store, name, variant, expected), output
        if variant == "float32":
            assert all(close([row[o] for row in v1["predictions"]], reference[o]) for o in reference)
    finally:
        assert "stopped" in edge.stop()
