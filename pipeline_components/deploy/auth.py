"""Who may log in to the deployment's Airflow, and as what.

Three users, one per role of the topology: ``admin``, ``operator`` and ``viewer``, each with a password generated
at the first ``up`` (``secrets/users.json``, 0600; the admin's is the topology's ``admin-password`` secret). No
default password exists and no one is an admin without logging in. ``runway deploy users`` prints them for the
operator who ran ``up``.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from pipeline_components.deploy.secrets import SecretFiles
from pipeline_components.durable import atomic_write

ROLES = {"admin": "admin", "operator": "op", "viewer": "viewer"}  # user -> SimpleAuthManager's role


def users_file(root: Path) -> Path:
    return root / "secrets" / "users.json"


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
    """The auth manager's settings for every Airflow component of the deployment."""
    ensure_users(root)
    return {
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{user}:{role}" for user, role in ROLES.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(users_file(root)),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
    }
