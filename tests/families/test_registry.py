"""The registry: the three built-in families by key, one-line errors, and asking for a family loads no model code."""

import subprocess
import sys

import pytest

from shopfloor.common.errors import ConfigError
from shopfloor.families.registry import ModelKind, family, family_keys


def test_every_built_in_kind_is_registered_under_its_model_type() -> None:
    assert family_keys() == sorted(kind.value for kind in ModelKind)
    for kind in ModelKind:
        found = family(kind.value)
        assert found.key == kind and found.score_output


def test_an_unknown_key_names_the_known_ones_in_one_line() -> None:
    with pytest.raises(ConfigError, match="unknown family 'lstm'") as raised:
        family("lstm")
    assert "visual-inspection" in str(raised.value) and "\n" not in str(raised.value)


def test_asking_for_every_family_imports_no_model_library() -> None:
    probe = (
        "import sys\n"
        "from shopfloor.families.registry import family, family_keys\n"
        "[family(key) for key in family_keys()]\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'keras_tuner', 'sklearn', 'matplotlib') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
