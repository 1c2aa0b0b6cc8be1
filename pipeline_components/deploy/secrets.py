"""The deployment's secrets, generated at its first ``up`` into files only their owner reads.

Each secret of the topology (``topology.SECRETS``) is one file under ``<deployment>/secrets/`` (folder 0700, files
0600, written atomically), made once and kept: every Airflow component reads the same JWT secret, API secret key and
fernet key (a token signed by one is checked by the others; a connection encrypted by one is read by the others).
No secret is ever a command-line argument or an environment value: components get the *command* that prints it
(Airflow's ``_CMD`` settings) or the file's path.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

from pipeline_components.deploy.topology import SECRETS, Secret
from pipeline_components.durable import atomic_write
from pipeline_components.errors import ConfigError


def _generate(kind: str) -> str:
    if kind == "hex32":
        return secrets.token_hex(32)
    if kind == "hex24":
        return secrets.token_hex(24)
    if kind == "fernet":
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    if kind == "password":
        return secrets.token_urlsafe(18)
    raise ConfigError(f"unknown secret kind {kind!r}")


class SecretFiles:
    """The secret files of one deployment (``folder``: ``<deployment>/secrets``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / name

    def ensure(self, wanted: tuple[Secret, ...] = SECRETS) -> list[str]:
        """Generate every missing secret; keep the others. Returns the names generated now.

        Raises:
            ConfigError: a secret file exists but others may read it (fix its mode, or delete it to regenerate).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        made = []
        for item in wanted:
            path = self.path(item.name)
            if path.is_file():
                self.check(path)
                continue
            atomic_write(path, _generate(item.kind), mode=0o600)
            made.append(item.name)
        return made

    @staticmethod
    def check(path: Path) -> None:
        """Refuse a secret file that its group or others may read or write."""
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"secret file {path} has mode {oct(mode)}: others may read it. `chmod 600 {path}`, or delete it "
                "and run `runway deploy up` again to generate a new one (every component must then restart)"
            )

    def read(self, name: str) -> str:
        """The secret's value (for the components that need it in memory, never to print).

        Raises:
            ConfigError: it was never generated (run ``runway deploy up``) or its file is readable by others.
        """
        path = self.path(name)
        if not path.is_file():
            raise ConfigError(f"secret {name!r} is missing ({path}): `runway deploy up` generates it")
        self.check(path)
        return path.read_text().strip()
