"""deploy.runtime edge-*: the one-line refusals (an explainer, a version without an edge export) and the card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopfloor.common.config import ConfigError, DeployConfig, validated
from shopfloor.common.errors import ShopfloorError
from shopfloor.components._image import SERVING_IMAGE, edge_image
from shopfloor.components.deploy.deploy import check_edge_runtime, deploy_model, endpoint_markdown
from shopfloor.components.deploy.target import Endpoint
from shopfloor.families.scenarios import load_config

EDGE = {"runtime": "edge-int8", "explainer": False}


def _version(store: Path, info: dict, variants: dict | None = None) -> Path:
    """A published version's folder with the files the deploy step reads: the model description, the edge record."""
    version = store / "pm" / "v-000000000001"
    (version / "model").mkdir(parents=True)
    (version / "model" / "shopfloor_model.json").write_text(json.dumps(info))
    if variants is not None:
        (version / "model" / "edge").mkdir()
        (version / "model" / "edge" / "tflite.json").write_text(json.dumps({"variants": variants}))
    return version


@pytest.mark.parametrize("name", ["predictive-maintenance", "anomaly-detection", "visual-inspection"])
def test_a_config_with_an_edge_runtime_and_the_explainer_is_one_line_naming_deploy_explainer(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / "plant.yaml"
    path.write_text("deploy:\n  runtime: edge-int8\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path, name)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{path}: deploy: ")
    assert "deploy.explainer must be false with runtime edge-int8: the edge runtime has no explain route" in message
    path.write_text("deploy:\n  runtime: edge-float32\n  explainer: false\n")
    assert load_config(path, name).deploy.runtime == "edge-float32"


def test_the_step_parameter_is_refused_the_same_way() -> None:
    with pytest.raises(ConfigError, match="^pipeline parameter deployment: .*deploy.explainer must be false"):
        validated(DeployConfig, {"runtime": "edge-float32"}, "pipeline parameter deployment")


@pytest.mark.parametrize(
    ("info", "variants", "why"),
    [
        ({"engine": "lightgbm"}, {}, "the classical challenger (lightgbm) answers this version"),
        ({"engine": "pca"}, None, "the classical challenger (pca) answers this version"),
        ({"fleet": {"sites": ["north"]}}, {"int8": {}}, "this version serves a fleet's sites"),
        ({}, None, "this version has no edge export"),
        ({"engine": "keras"}, {}, "this version has no edge export"),
    ],
)
def test_a_version_the_edge_runtime_cannot_serve_is_refused_naming_deploy_runtime(
    tmp_path: Path, info: dict, variants: dict | None, why: str
) -> None:
    version = _version(tmp_path, info, variants)
    config = DeployConfig(target="local", local_state_dir=str(tmp_path / "serving"), **EDGE)
    with pytest.raises(ShopfloorError) as refused:
        deploy_model(str(version), "pm", config)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{version}: deploy.runtime: edge-int8 cannot serve it: {why}")
    assert not (tmp_path / "serving").exists(), "refused before any server starts"


def test_a_network_with_an_edge_export_passes_and_other_runtimes_are_not_checked(tmp_path: Path) -> None:
    version = _version(tmp_path, {"engine": "keras"}, {"int8": {}, "float32": {}})
    check_edge_runtime(str(version), DeployConfig(**EDGE))
    check_edge_runtime(str(tmp_path / "nowhere"), DeployConfig(runtime="tflite-int8"))


def test_the_endpoint_card_names_the_edge_image_and_no_explain_url() -> None:
    served = Endpoint("kserve", "http://pm.plant.example.com", "pm", "v-1")
    card = endpoint_markdown(served, DeployConfig(**EDGE), SERVING_IMAGE)
    assert f"| image | `{edge_image(SERVING_IMAGE)}` |" in card
    assert "| runtime | `edge-int8` |" in card and "explain" not in card
