"""Hypothesis profiles for the fuzz tests: bounded in CI, more examples on demand.

``HYPOTHESIS_PROFILE=ci`` (the default) runs 100 examples per property with no deadline (CI machines are slow and
shared); ``thorough`` runs 2,000. Found failures are kept in ``.pytest_cache/hypothesis`` (git-ignored), so a rerun
tries them first.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

_DATABASE = DirectoryBasedExampleDatabase(Path(__file__).resolve().parents[2] / ".pytest_cache" / "hypothesis")
_COMMON = {"deadline": None, "database": _DATABASE, "suppress_health_check": [HealthCheck.too_slow]}

settings.register_profile("ci", max_examples=100, **_COMMON)
settings.register_profile("thorough", max_examples=2000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
