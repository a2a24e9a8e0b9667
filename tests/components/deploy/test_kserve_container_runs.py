"""The predictor container as the rendered InferenceService runs it, with KServe's and the kubelet's parts stood in.

What the cluster would do is done here by hand, each step named: the storage initializer downloads ``STORAGE_URI``
to ``/mnt/models``, the kubelet sets the env (a ``secretKeyRef`` from the S3 Secret's values) and mounts the
Secret ``shopfloor-api-tokens`` as files; then the container's own command and args start the server. Operators'
feedback must reach the model store the version came from (KServe's download does not say where that is), and
only a token of that Secret may write it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from shopfloor.common.storage import read_tree, write_tree
from shopfloor.components.deploy.kserve_target import (
    API_TOKENS_DIR,
    API_TOKENS_KEY,
    MODEL_MOUNT_PATH,
    inference_service_manifest,
)
from shopfloor.components.deploy.local_target import free_port
from shopfloor.components.deploy.target import DeploymentRequest
from shopfloor.contracts.feedback import read_feedback
from tests.serving.test_http import post

NAME = "vi"
STATION_TOKEN = "station-7-token-kq3"


def _kubelet_env(container: dict, secret: dict[str, str], mounts: dict[str, Path]) -> dict[str, str]:
    """The container's env as the kubelet resolves it: values as written, secretKeyRefs from the Secret's data,
    and paths under a mounted volume moved to where the test mounted it."""
    env = {"PATH": os.environ["PATH"], "TF_CPP_MIN_LOG_LEVEL": "3"}
    for variable in container["env"]:
        value = variable.get("value")
        if value is None:
            value = secret[variable["valueFrom"]["secretKeyRef"]["key"]]
        for mount_path, local in mounts.items():
            value = value.replace(mount_path, str(local))
        env[variable["name"]] = value
    return env


def _wait_ready(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[1][-3000:]
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(1)
    raise AssertionError(f"{url} never became ready")


@pytest.mark.slow
def test_the_rendered_predictor_writes_feedback_to_the_store_for_a_token_of_the_secret(
    vision_trained, s3_bucket: str, tmp_path: Path
) -> None:
    store = f"s3://{s3_bucket}/models"
    version_uri = f"{store}/{NAME}/v-test00000001"
    version = tmp_path / "version"
    shutil.copytree(vision_trained.model_dir, version / "model")  # a published version's layout
    write_tree(version, version_uri)
    request = DeploymentRequest(NAME, version_uri, "v-test00000001", payload_log_uri=f"s3://{s3_bucket}/payloads")
    predictor = inference_service_manifest(request)["spec"]["predictor"]
    (container,) = predictor["containers"]
    env_names = {variable["name"] for variable in container["env"]}

    # the storage initializer: STORAGE_URI into /mnt/models
    models = read_tree(next(v["value"] for v in container["env"] if v["name"] == "STORAGE_URI"), tmp_path / "mnt")
    # the kubelet: the tokens Secret as files at its mount path (an operator station's token, kept as its sha256)
    (volume,) = [v for v in predictor["volumes"] if "secret" in v]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["mountPath"] == API_TOKENS_DIR and mount["readOnly"] is True
    tokens_dir = tmp_path / "api-tokens"
    tokens_dir.mkdir()
    digest = hashlib.sha256(STATION_TOKEN.encode()).hexdigest()
    document = {"tokens": [{"identity": "station-7", "role": "operator", "token_sha256": digest}]}
    (tokens_dir / volume["secret"]["items"][0]["path"]).write_text(yaml.safe_dump(document))
    assert volume["secret"]["items"][0]["key"] == API_TOKENS_KEY
    s3_secret = {key: os.environ[key] for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env = _kubelet_env(container, s3_secret, {API_TOKENS_DIR: tokens_dir})
    assert {"SHOPFLOOR_FEEDBACK_URI", "SHOPFLOOR_API_TOKENS_FILE", "AWS_SECRET_ACCESS_KEY"} <= env_names

    port = free_port()
    args = [str(models) if arg == MODEL_MOUNT_PATH else arg for arg in container["args"]]
    args[args.index("--http-port") + 1] = str(port)
    args[args.index("--host") + 1] = "127.0.0.1"
    command = [sys.executable if part == "python" else part for part in container["command"]]
    server = subprocess.Popen(
        [*command, *args], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(f"{base}/v2/models/{NAME}/ready", server)
        image = sorted((vision_trained.root / "images").rglob("*.png"))[0]
        body = {"image_bytes": {"b64": base64.b64encode(image.read_bytes()).decode()}, "verdict": "right"}
        status, answer = post(f"{base}/v1/models/{NAME}/feedback", body)
        assert status == 401, answer  # no token, no write
        headers = {"Authorization": f"Bearer {STATION_TOKEN}"}
        status, answer = post(f"{base}/v1/models/{NAME}/feedback", body, headers=headers)
        assert status == 201 and answer["operator"] == "station-7", answer
        (recorded,) = read_feedback(store, NAME)
        assert recorded.id == answer["id"] and recorded.operator == "station-7"
    finally:
        server.terminate()
        server.communicate(timeout=60)
