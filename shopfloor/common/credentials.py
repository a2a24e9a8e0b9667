"""Credentials a config names by variable (``*_env`` fields): from the environment, or from the credentials Secret.

A config never holds a credential, only the name of the variable that does (``url_env: PLANT_DB_URL``). Locally
the variable is set in the shell. On a cluster the compiled pipeline cannot name a config's variables (one YAML
serves every plant's config), so each step mounts the Secret ``shopfloor-credentials`` (optional: absent, nothing
is mounted) as files, one per key, and a variable that is not set is read from the file of the same name there.
A team puts ``PLANT_DB_URL``, ``ALERTS_TOKEN``... into that one Secret and the steps find them by name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from shopfloor.common.errors import ConfigError

__all__ = ["API_TOKENS_FILE_ENV", "CREDENTIALS_DIR", "CREDENTIALS_DIR_ENV", "CREDENTIALS_SECRET", "credential"]

CREDENTIALS_SECRET = "shopfloor-credentials"
CREDENTIALS_DIR = "/var/run/secrets/shopfloor/credentials"
CREDENTIALS_DIR_ENV = "SHOPFLOOR_CREDENTIALS_DIR"  # where the Secret's files are (tests, a host's own mount)
# The model server's tokens file (who may write; serving.auth), named here so the deploy step can set it too
API_TOKENS_FILE_ENV = "SHOPFLOOR_API_TOKENS_FILE"
# What Kubernetes accepts as a Secret key: a name that cannot walk out of the folder.
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def credentials_dir() -> Path:
    """The folder holding the credentials Secret's files: ``$SHOPFLOOR_CREDENTIALS_DIR`` or the pods' mount path."""
    return Path(os.environ.get(CREDENTIALS_DIR_ENV) or CREDENTIALS_DIR)


def credential(variable: str, where: str, field: str) -> str:
    """The value of a credential named by ``variable``: its environment variable, else its file in the Secret.

    One line naming the variable (never a value) when neither holds it. A file's one trailing line break is
    dropped: ``kubectl create secret --from-file`` keeps the editor's newline, which no password ends with.
    """
    value = os.environ.get(variable, "")
    if value:
        return value
    folder = credentials_dir()
    if _SECRET_KEY.match(variable) and variable not in {".", ".."}:
        try:
            value = (folder / variable).read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            value = ""
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(
                where, f"the credential file {variable} in {folder} is unreadable ({type(error).__name__})", field=field
            ) from None
    if not value:
        raise ConfigError(
            where,
            f"environment variable {variable} is not set, and {folder} holds no key {variable}",
            field=field,
            expected=f"the variable, or a key {variable} in the Secret {CREDENTIALS_SECRET}",
        )
    return value
