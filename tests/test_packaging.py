"""Packaging and image checks that need no Docker engine: metadata, per-component compile, Dockerfile sources."""

import configparser
import importlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import kfp
import pytest
import yaml
from kfp import compiler
from packaging.version import Version

from shopfloor import __version__
from shopfloor.components._image import IMAGE

ROOT = Path(__file__).resolve().parents[1]
COMPONENT_DIRS = sorted(p.parent for p in (ROOT / "components").glob("*/component.py"))


def test_every_component_folder_is_found() -> None:
    assert {p.name for p in COMPONENT_DIRS} == {
        "ingest",
        "label",
        "hpo",
        "train",
        "evaluate",
        "explain",
        "publish",
        "deploy",
        "monitor",
    }


@pytest.mark.parametrize("folder", COMPONENT_DIRS, ids=lambda p: p.name)
def test_component_metadata_and_standalone_compile(folder: Path, tmp_path: Path) -> None:
    metadata = yaml.safe_load((folder / "metadata.yaml").read_text())
    assert metadata["name"] == folder.name
    assert metadata["stability"] in {"alpha", "beta", "stable"}
    floor = metadata["dependencies"]["kubeflow"][0]["version"].removeprefix(">=")
    assert Version(kfp.__version__) >= Version(floor)
    module = importlib.import_module(f"shopfloor.components.{folder.name}.component")
    assert module.__all__, "a component module exports its components"
    for name in module.__all__:
        component = getattr(module, name)
        target = tmp_path / f"{name}.yaml"
        compiler.Compiler().compile(component, str(target))
        spec = yaml.safe_load(target.read_text())
        (executor,) = spec["deploymentSpec"]["executors"].values()
        assert executor["container"]["image"] == IMAGE
        assert component.description, "the docstring is what the dashboard shows"


def test_image_tag_follows_package_version() -> None:
    assert IMAGE.endswith(f":{__version__}")


def test_dockerfile_copies_what_exists_and_installs_the_package() -> None:
    dockerfile = (ROOT / "infra" / "images" / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim@sha256:[0-9a-f]{64}$", dockerfile, re.MULTILINE), "by digest"
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, re.MULTILINE)
    assert re.search(r"^ARG SHOPFLOOR_IMAGE=", dockerfile, re.MULTILINE), "it knows the reference it is pushed as"
    for line in re.findall(r"^COPY (.+)$", dockerfile, re.MULTILINE):
        *sources, _ = line.split()
        for source in sources:
            assert (ROOT / source).exists(), source
    assert "pip install ." in dockerfile


def test_console_script_is_installed() -> None:
    assert Path(sys.executable).with_name("shopfloor").exists()


def _package_folders() -> set[str]:
    """Every package folder of the repository, under the name it installs as (setup.cfg's package_dir)."""
    installed_as = {"shopfloor": "shopfloor", "components": "shopfloor.components", "pipelines": "shopfloor.pipelines"}
    installed_as["serving"] = "shopfloor.serving"
    return {
        ".".join([installed_as[init.relative_to(ROOT).parts[0]], *init.relative_to(ROOT).parts[1:-1]])
        for folder in installed_as
        for init in (ROOT / folder).rglob("__init__.py")
    }


def test_setup_cfg_lists_every_package_folder() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    assert listed == _package_folders()


def test_wheel_installs_only_the_shopfloor_namespace(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: setuptools packs whatever its build/ folder holds, stale files included
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "tests"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), source],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("shopfloor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {"shopfloor"}
    assert "shopfloor/components/ingest/metadata.yaml" in names
    assert "shopfloor/pipelines/compiled/predictive_maintenance.yaml" in names
    assert "shopfloor/pipelines/configs/visual_inspection.yaml" in names
    assert "shopfloor/serving/server.py" in names and "shopfloor/common/config.py" in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    required = {
        line.split()[1].split("==")[0].lower() for line in metadata.splitlines() if line.startswith("Requires-Dist:")
    }
    for package in ("kfp", "kserve", "kubernetes", "tensorflow-cpu", "keras-tuner", "optuna", "minio", "pandas"):
        assert package in required, f"{package} missing from install_requires"


def test_typecheck_tree_mirrors_the_installed_layout() -> None:
    """mypy (pyproject's [tool.mypy]) reads .ci/typecheck/shopfloor: the installed shopfloor.* layout as symlinks."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    mapped = dict(line.split(" = ") for line in config["options"]["package_dir"].strip().splitlines())
    top = {name.split(".")[1] for name in config["options"]["packages"].split() if name.count(".") == 1}
    tree = ROOT / ".ci" / "typecheck" / "shopfloor"
    assert {p.name for p in tree.iterdir()} == top | {"__init__.py"}
    assert (tree / "__init__.py").resolve() == (ROOT / "shopfloor" / "__init__.py").resolve()
    for name in top:
        source = mapped.get(f"shopfloor.{name}", f"shopfloor/{name}")
        assert (tree / name).is_symlink() and (tree / name).resolve() == (ROOT / source).resolve(), name
