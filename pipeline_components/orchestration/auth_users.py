"""The users file of runway's Airflow auth manager (``orchestration/auth.py``): names, roles, salted password hashes.

Airflow's SimpleAuthManager keeps passwords in plain text and its FAB manager cannot be installed against the
orchestrator's lock (docs/deployment.md, "Secrets"), so runway keeps its own users file, read by the API server::

    {"version": 1, "users": {"alice": {"role": "operator", "password_hash": "scrypt$32768$8$1$<salt>$<key>"}}}

- a password is kept only as a scrypt key (a random 16-byte salt per user, n=2**15, r=8, p=1: about 32 MiB and
  tens of milliseconds per guess), compared in constant time; nothing in the file, the CLI's output or a log holds
  a password;
- the file is written atomically with mode 0600 and refused when it is readable by its group or by others, so a
  hash cannot be copied for an offline guessing attack by another account on the host;
- there is no default user and no all-admins mode: an API server without a users file does not start.

This module is the standard library only: the CLI (``runway users``) and the deployment (``write_users_file``,
``auth_env``) use it without importing Airflow.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipeline_components.durable import atomic_write
from pipeline_components.errors import ConfigError

ROLES = ("viewer", "operator", "admin")  # in order: each role may do everything the roles before it may
AUTH_MANAGER = "pipeline_components.orchestration.auth.RunwayAuthManager"
# How the file's path reaches the API server: an Airflow option, ``[runway_auth] users_file``.
CONFIG_SECTION, CONFIG_KEY = "runway_auth", "users_file"
USERS_FILE_ENV = f"AIRFLOW__{CONFIG_SECTION.upper()}__{CONFIG_KEY.upper()}"
MIN_PASSWORD_LENGTH = 12
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_MAXMEM = 64 * 1024 * 1024  # scrypt needs 128 * n * r bytes (32 MiB); OpenSSL's default cap is 32 MiB
_FORMAT_VERSION = 1


class UsersFileError(ConfigError):
    """The users file is missing, unsafe (readable by others) or malformed, or a change to it is refused."""


@dataclass(frozen=True)
class UserRecord:
    """One user of the file: a role of ``ROLES`` and the encoded scrypt key of the password."""

    name: str
    role: str
    password_hash: str


def default_users_file(home: Path) -> Path:
    """Where ``runway users`` keeps the file when no ``--users-file`` is given: ``$RUNWAY_HOME/auth/users.json``."""
    return home / "auth" / "users.json"


def auth_env(users_file: Path) -> dict[str, str]:
    """The variables every Airflow component of a deployment needs to use runway's auth manager.

    All components get them (the scheduler and the DAG processor only load the class; the API server reads the
    file when it starts and on every request), so one environment serves every host.

    Args:
        users_file: the users file as the API server sees it (absolute).
    """
    return {"AIRFLOW__CORE__AUTH_MANAGER": AUTH_MANAGER, USERS_FILE_ENV: str(Path(users_file).absolute())}


def hash_password(password: str) -> str:
    """The encoded scrypt key of ``password`` under a new random salt: ``scrypt$n$r$p$salt$key`` (base64)."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, maxmem=_MAXMEM, dklen=32, **_SCRYPT)
    encoded = [base64.b64encode(part).decode() for part in (salt, key)]
    return "$".join(["scrypt", *(str(_SCRYPT[k]) for k in ("n", "r", "p")), *encoded])


def _decode(encoded: str) -> tuple[dict[str, int], bytes, bytes]:
    """The parameters, salt and key of an encoded hash; ``ValueError`` when it is not one this module wrote."""
    scheme, n, r, p, salt, key = encoded.split("$")
    params = {"n": int(n), "r": int(r), "p": int(p)}
    # Bounds keep a tampered file from making each login cost minutes or gigabytes.
    if scheme != "scrypt" or not (2**14 <= params["n"] <= 2**20 and 1 <= params["r"] <= 32 and 1 <= params["p"] <= 4):
        raise ValueError(f"not a runway scrypt hash: {scheme}")
    return params, base64.b64decode(salt, validate=True), base64.b64decode(key, validate=True)


@cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, encoded: str | None) -> bool:
    """Whether ``password`` matches ``encoded``; with None (no such user) as slow as a real check, and False.

    The work is the same either way, so the answer's timing does not tell which user names exist.
    """
    params, salt, key = _decode(encoded if encoded is not None else _dummy_hash())
    tried = hashlib.scrypt(password.encode(), salt=salt, maxmem=_MAXMEM, dklen=len(key), **params)
    return hmac.compare_digest(tried, key) and encoded is not None


def check_name(name: str) -> str:
    """``name`` if it is a valid user name (letters, digits, ``._@-``, at most 64), else ``UsersFileError``."""
    if not _NAME.fullmatch(name):
        raise UsersFileError(
            f"user name {name!r} is not allowed: use 1 to 64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_role(role: str) -> str:
    """``role`` if it is one of ``ROLES``, else ``UsersFileError``."""
    if role not in ROLES:
        raise UsersFileError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    """``password`` if it is long enough (``MIN_PASSWORD_LENGTH``) and one line, else ``UsersFileError``."""
    if len(password) < MIN_PASSWORD_LENGTH or "\n" in password:
        raise UsersFileError(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters on one line "
            "(or let `runway users add` generate one with --generate)"
        )
    return password


def read_users(path: Path) -> dict[str, UserRecord]:
    """The users of the file at ``path``, after checking that only its owner can read it.

    Raises:
        UsersFileError: the file is missing, not a regular file, readable by group or others, or malformed.
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UsersFileError(
            f"no users file at {path}: create it with `runway users add NAME --role admin --users-file {path}` "
            "(the password is asked for, or --generate prints one), then start Airflow's API server again"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise UsersFileError(f"the users file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise UsersFileError(
            f"the users file {path} is readable or writable by others (mode {stat.S_IMODE(info.st_mode):04o}): "
            f"password hashes must stay private; run `chmod 600 {path}`"
        )
    try:
        return _parse(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise UsersFileError(
            f"the users file {path} is not a runway users file ({error}); rewrite it with `runway users add`"
        ) from None


def _parse(document: dict[str, dict[str, dict[str, str]]]) -> dict[str, UserRecord]:
    if document.get("version") != _FORMAT_VERSION:
        raise ValueError(f"version {document.get('version')!r}, expected {_FORMAT_VERSION}")
    users = {}
    for name, entry in document["users"].items():
        if set(entry) != {"role", "password_hash"}:  # e.g. a plain "password": refused, never used
            raise ValueError(f"user {name!r} has the fields {sorted(entry)}, expected role and password_hash")
        _decode(entry["password_hash"])
        users[name] = UserRecord(check_name(name), check_role(entry["role"]), entry["password_hash"])
    return users


def save_users(path: Path, users: Mapping[str, UserRecord]) -> None:
    """Replace the file at ``path`` with ``users``: atomically (readers see the old file or the new), mode 0600."""
    document = {
        "version": _FORMAT_VERSION,
        "users": {
            name: {"role": user.role, "password_hash": user.password_hash} for name, user in sorted(users.items())
        },
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps(document, indent=2) + "\n", mode=0o600)


def write_users_file(path: Path, users: Mapping[str, tuple[str, str]]) -> None:
    """Write a users file holding exactly ``users`` (the deployment's call; ``runway users`` edits one in place).

    Args:
        path: the file to write (replaced atomically, mode 0600; its folder is made if missing).
        users: user name -> (role, password); only each password's salted scrypt key is written.

    Raises:
        UsersFileError: no user, no admin among them, a bad name or role, or a password too short.
    """
    if not any(role == "admin" for role, _ in users.values()):
        raise UsersFileError("a users file needs at least one admin (who else could change connections?)")
    records = {
        check_name(name): UserRecord(name, check_role(role), hash_password(check_password(password)))
        for name, (role, password) in users.items()
    }
    save_users(path, records)


@contextmanager
def editing(path: Path, *, create: bool) -> Iterator[dict[str, UserRecord]]:
    """The users of ``path`` to change in place, saved on exit; one editor at a time (a lock beside the file).

    Args:
        path: the users file.
        create: start from no users when the file does not exist (``users add``); otherwise it must exist.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = path.with_name(f".{path.name}.lock")
    with open(os.open(lock, os.O_RDWR | os.O_CREAT, 0o600), "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        users = {} if create and not path.exists() else read_users(path)
        before = dict(users)
        yield users
        if users != before:
            save_users(path, users)


def add_user(path: Path, name: str, *, role: str, password: str, replace: bool = False) -> None:
    """Add ``name`` with ``role`` and ``password`` to the file (made if missing).

    Raises:
        UsersFileError: a bad name, role or password; the user exists (and ``replace`` is off); or replacing
            would leave no admin.
    """
    record = UserRecord(check_name(name), check_role(role), hash_password(check_password(password)))
    with editing(path, create=True) as users:
        if name in users and not replace:
            raise UsersFileError(f"user {name} exists in {path}: add --replace to set a new role and password")
        _keep_an_admin({**users, name: record}, path)
        users[name] = record


def remove_user(path: Path, name: str) -> None:
    """Remove ``name`` from the file; its tokens are refused from the API server's next request on.

    Raises:
        UsersFileError: no such user, or it is the last admin.
    """
    with editing(path, create=False) as users:
        if name not in users:
            raise UsersFileError(f"no user {name} in {path} (it has {', '.join(sorted(users)) or 'no user'})")
        _keep_an_admin({k: v for k, v in users.items() if k != name}, path)
        del users[name]


def _keep_an_admin(users: Mapping[str, UserRecord], path: Path) -> None:
    if not any(user.role == "admin" for user in users.values()):
        raise UsersFileError(
            f"{path} would have no admin: only an admin can manage connections, variables and pools "
            "(add an admin first)"
        )


def generate_password() -> str:
    """A new random password (24 URL-safe characters, 144 bits)."""
    return secrets.token_urlsafe(18)
