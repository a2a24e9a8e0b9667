"""A plant's own registry: `shopfloor compile --image` moves every step and the InferenceService, nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shopfloor.common.config import DeployConfig
from shopfloor.components._image import DEFAULT_IMAGE, edge_image
from shopfloor.components.deploy.deploy import deployment_request, endpoint_markdown
from shopfloor.components.deploy.target import Endpoint
from shopfloor.pipelines.compile import COMPILED_DIR

ROOT = Path(__file__).resolve().parents[3]
SHOPFLOOR = str(Path(sys.executable).with_name("shopfloor"))
PLANT_IMAGE = "registry.plant.local:5000/ml/shopfloor:2026.11"


@pytest.mark.slow  # 10-20 s of real training, search or load: runs with the whole suite
def test_compile_with_an_image_changes_the_image_and_nothing_else(tmp_path: Path) -> None:
    result = subprocess.run(
        [SHOPFLOOR, "compile", "--image", PLANT_IMAGE, "--output-dir", str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    for default in sorted(COMPILED_DIR.glob("*.yaml")):
        moved = (tmp_path / default.name).read_text()
        assert moved == default.read_text().replace(DEFAULT_IMAGE, PLANT_IMAGE), default.name
        assert DEFAULT_IMAGE not in moved
    spec = next(yaml.safe_load_all((tmp_path / "predictive_maintenance.yaml").read_text()))
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {PLANT_IMAGE}
    deploy = spec["components"]["comp-condition-2"]["dag"]["tasks"]["deploy"]
    assert deploy["inputs"]["parameters"]["serving_image"]["runtimeValue"]["constant"] == PLANT_IMAGE
    check = subprocess.run(
        [SHOPFLOOR, "compile", "--check", "--image", PLANT_IMAGE, "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_a_bad_image_reference_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [SHOPFLOOR, "compile", "--image", "Plant Registry/shopfloor", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "--image" in result.stderr and "REGISTRY/NAME:TAG" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_build_script_tags_both_images_and_pushes_only_when_asked() -> None:
    def dry_run(*arguments: str) -> list[str]:
        result = subprocess.run(
            ["infra/images/build.sh", "--dry-run", *arguments], cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    built = dry_run(PLANT_IMAGE)
    assert len(built) == 3 and all(line.startswith("docker build") for line in built)
    assert f"-t {PLANT_IMAGE} ." in built[0] and f"--build-arg SHOPFLOOR_IMAGE={PLANT_IMAGE}" in built[0]
    assert "-t registry.plant.local:5000/ml/shopfloor-serving:2026.11 ." in built[1]
    # the edge runtime's image, named as the deploy step names an edge-* runtime's predictor image
    assert built[2] == f"docker build -f infra/edge/Dockerfile -t {edge_image(PLANT_IMAGE)} ."
    pushed = dry_run("--push", PLANT_IMAGE)[3:]
    assert pushed == [
        f"docker push {PLANT_IMAGE}",
        "docker push registry.plant.local:5000/ml/shopfloor-serving:2026.11",
        "docker push registry.plant.local:5000/ml/shopfloor-edge:2026.11",
    ]
    assert f"-t {DEFAULT_IMAGE} ." in dry_run()[0], "by default the package version's tag"


def test_the_deploy_step_serves_the_image_it_is_given_and_says_so() -> None:
    config = DeployConfig(namespace="plant-north")
    request = deployment_request("s3://models/pm/v-abc", "pm", config, PLANT_IMAGE)
    assert request.image == PLANT_IMAGE and request.model_version == "v-abc"
    served = Endpoint("kserve", "http://pm.plant-north.example.com", "pm", "v-abc")
    card = endpoint_markdown(served, config, PLANT_IMAGE)
    assert card.startswith("# pm is serving")
    assert f"| image | `{PLANT_IMAGE}` |" in card and "KServe InferenceService in `plant-north`" in card
    assert "curl -s -H 'content-type: application/json' -d @request.json " + served.v1_predict_url in card
