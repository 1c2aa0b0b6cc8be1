"""Who may log in to the deployment's Airflow, and as what.

Three users, one per role: ``admin``, ``operator`` and ``viewer``, each with a password generated at the first
``up`` (the admin's is the topology's ``admin-password`` secret). The API server reads only
``secrets/airflow-users.json``: roles and salted scrypt hashes, for runway's auth manager
(``orchestration/auth.py``: every route needs a login, viewers change nothing). The passwords themselves are kept
for the operator who ran ``up`` in ``secrets/users.json`` (0600), which ``runway deploy users --show-passwords``
prints. No default password exists and no one is an admin without logging in.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from pipeline_components.deploy.secrets import SecretFiles
from pipeline_components.durable import atomic_write
from pipeline_components.orchestration.auth_users import auth_env as manager_env
from pipeline_components.orchestration.auth_users import write_users_file

ROLES = {"admin": "admin", "operator": "operator", "viewer": "viewer"}  # user -> role


def users_file(root: Path) -> Path:
    """The users' passwords, for the operator (never read by Airflow)."""
    return root / "secrets" / "users.json"


def airflow_users_file(root: Path) -> Path:
    """What the API server reads: roles and password hashes."""
    return root / "secrets" / "airflow-users.json"


def ensure_users(root: Path) -> dict[str, str]:
    """The users' passwords, generated at the first call (the admin's is the ``admin-password`` secret)."""
    path = users_file(root)
    files = SecretFiles(path.parent)
    if path.is_file():
        SecretFiles.check(path)
        passwords: dict[str, str] = json.loads(path.read_text())
        return passwords
    files.ensure()
    passwords = {user: secrets.token_urlsafe(18) for user in ROLES}
    passwords["admin"] = files.read("admin-password")
    atomic_write(path, json.dumps(passwords, indent=1) + "\n", mode=0o600)
    return passwords


def auth_env(root: Path) -> dict[str, str]:
    """The auth manager's settings for every Airflow component of the deployment (its users file written from the
    passwords at the first call)."""
    passwords = ensure_users(root)
    hashed = airflow_users_file(root)
    if not hashed.is_file():
        write_users_file(hashed, {user: (role, passwords[user]) for user, role in ROLES.items()})
    return manager_env(hashed)
