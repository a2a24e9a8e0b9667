"""Credentials a config names by variable: from the environment, or from the files of the mounted Secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopfloor.common.credentials import CREDENTIALS_DIR, CREDENTIALS_DIR_ENV, CREDENTIALS_SECRET, credential
from shopfloor.common.errors import ConfigError

CANARY = "canary-Cred-5mK8"


@pytest.fixture
def mounted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder standing in for the pod's mount of the credentials Secret, with no variable of the tests set."""
    monkeypatch.setenv(CREDENTIALS_DIR_ENV, str(tmp_path))
    for variable in ("PLANT_DB_URL", "PLANT_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def test_the_environment_wins_over_the_secret_file(mounted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (mounted / "PLANT_TOKEN").write_text("from-the-file")
    monkeypatch.setenv("PLANT_TOKEN", "from-the-environment")
    assert credential("PLANT_TOKEN", "plant.yaml: alerts", "token_env") == "from-the-environment"


def test_an_unset_variable_is_read_from_the_secret_file_of_its_name(mounted: Path) -> None:
    (mounted / "PLANT_TOKEN").write_text(CANARY + "\n")  # kubectl create secret --from-file keeps the newline
    assert credential("PLANT_TOKEN", "plant.yaml: alerts", "token_env") == CANARY
    (mounted / "PLANT_DB_URL").write_text("postgresql://u:p@db/plant")
    assert credential("PLANT_DB_URL", "plant.yaml: data.sensors", "url_env") == "postgresql://u:p@db/plant"


def test_neither_is_one_line_naming_the_variable_and_the_secret(mounted: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        credential("PLANT_TOKEN", "plant.yaml: alerts", "token_env")
    message = str(missing.value)
    assert message.startswith("plant.yaml: alerts: token_env: environment variable PLANT_TOKEN is not set")
    assert CREDENTIALS_SECRET in message and str(mounted) in message and "\n" not in message


def test_an_empty_file_is_no_credential(mounted: Path) -> None:
    (mounted / "PLANT_TOKEN").write_text("\n")
    with pytest.raises(ConfigError, match="PLANT_TOKEN is not set"):
        credential("PLANT_TOKEN", "plant.yaml: alerts", "token_env")


def test_a_variable_name_never_reads_outside_the_secret_folder(mounted: Path) -> None:
    outside = mounted.parent / f"outside-{mounted.name}"
    outside.write_text(CANARY)
    for name in (f"../{outside.name}", str(outside), ".."):
        with pytest.raises(ConfigError) as refused:
            credential(name, "plant.yaml: alerts", "token_env")
        assert CANARY not in str(refused.value)


def test_a_file_that_is_not_text_is_one_line_without_its_bytes(mounted: Path) -> None:
    (mounted / "PLANT_TOKEN").write_bytes(b"\xff\xfe" + CANARY.encode())
    with pytest.raises(ConfigError) as unreadable:
        credential("PLANT_TOKEN", "plant.yaml: alerts", "token_env")
    assert "unreadable" in str(unreadable.value) and CANARY not in str(unreadable.value)


def test_pods_look_in_the_mount_path_when_no_folder_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CREDENTIALS_DIR_ENV, raising=False)
    monkeypatch.delenv("PLANT_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=f"{CREDENTIALS_DIR} holds no key PLANT_TOKEN"):
        credential("PLANT_TOKEN", "plant.yaml: alerts", "token_env")
