"""runway's Airflow auth manager for production: real users from a users file, roles viewer / operator / admin.

Airflow 3.3 offers SimpleAuthManager (development only: plain-text passwords) and FAB (not installable against the
orchestrator's lock, docs/deployment.md "Secrets"). This manager keeps Airflow's own token machinery (JWTs signed
with ``[api_auth] jwt_secret``, revocation on logout, the ``_token`` cookie of the UI) and brings what production
needs: salted scrypt hashes in a private file (``auth_users.py``), no default user, no all-admins mode.

Use it in every Airflow component (``auth_env``)::

    AIRFLOW__CORE__AUTH_MANAGER=pipeline_components.orchestration.auth.RunwayAuthManager
    AIRFLOW__RUNWAY_AUTH__USERS_FILE=/path/to/users.json      # [runway_auth] users_file

The API server refuses to start without the file (or with one readable by others). Roles, each including the ones
before it:

- ``viewer``: read DAGs, runs, task instances, logs, assets, pools, Airflow's views; change nothing;
- ``operator``: trigger, clear and mark DAG runs and task instances, pause DAGs, answer human-in-the-loop tasks
  (runway's rollout approval), create asset events; the model console's promote and rollback (they are runs of
  ``<pipeline>_serving``, and the console asks this manager through ``is_authorized_dag``, plugin.py);
- ``admin``: everything else: connections, variables and Airflow's configuration (read included: they hold
  secrets), pools, deleting runs and DAGs.

Each request's user is looked up in the file again (a ``stat`` per request, re-read when it changed), so a removed
user's tokens stop working at once and a changed role applies to the next request, not at the token's expiry.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX
from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.types import MenuItem
from airflow.configuration import conf

from pipeline_components.orchestration.auth_users import (
    CONFIG_KEY,
    CONFIG_SECTION,
    ROLES,
    USERS_FILE_ENV,
    UserRecord,
    UsersFileError,
    auth_env,
    read_users,
    verify_password,
    write_users_file,
)

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ExtendedResourceMethod, ResourceMethod
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        AccessView,
        AssetAliasDetails,
        AssetDetails,
        ConfigurationDetails,
        ConnectionDetails,
        DagDetails,
        PoolDetails,
        TeamDetails,
        VariableDetails,
    )
    from fastapi import FastAPI

__all__ = ["RunwayAuthManager", "RunwayUser", "auth_env", "write_users_file"]

log = logging.getLogger(__name__)
VIEWER, OPERATOR, ADMIN = ROLES
_RANK = {role: rank for rank, role in enumerate(ROLES)}
# What an operator may change on a DAG (POST/PUT): runs (trigger, clear, mark), task instances (clear, mark), the
# answers of human-in-the-loop tasks, and the DAG itself (pause). Deleting and the rest (XComs, ...) are an admin's.
_OPERATOR_DAG_ENTITIES = frozenset(
    {None, DagAccessEntity.RUN, DagAccessEntity.TASK_INSTANCE, DagAccessEntity.HITL_DETAIL}
)
_ADMIN_MENU = frozenset({MenuItem.CONNECTIONS, MenuItem.VARIABLES, MenuItem.CONFIG})
_READS = ("GET", "MENU")


class RunwayUser(BaseUser):
    """A user of the users file, as the API server knows them for one request: a name and a role."""

    def __init__(self, *, name: str, role: str) -> None:
        self.name = name
        self.role = role

    def get_id(self) -> str:
        return self.name

    def get_name(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunwayUser) and (self.name, self.role) == (other.name, other.role)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"RunwayUser({self.name!r}, {self.role!r})"


def users_file() -> Path:
    """The users file Airflow's configuration names (``[runway_auth] users_file``).

    Raises:
        UsersFileError: the option is not set.
    """
    value = conf.get(CONFIG_SECTION, CONFIG_KEY, fallback=None)
    if not value:
        raise UsersFileError(
            f"runway's auth manager needs its users file: set [{CONFIG_SECTION}] {CONFIG_KEY} ({USERS_FILE_ENV}) to "
            "a file made by `runway users add NAME --role admin --users-file PATH`"
        )
    return Path(value)


class RunwayAuthManager(BaseAuthManager[RunwayUser]):
    """Airflow's auth manager for a production runway: see the module's docstring for the roles."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._seen: tuple[int, ...] | None = None
        self._users: dict[str, UserRecord] = {}
        # At most this many scrypt checks (32 MiB each) at once: a flood of logins cannot exhaust memory.
        self._hashing = threading.BoundedSemaphore(max(2, os.cpu_count() or 1))

    def init(self) -> None:
        """At the API server's start: refuse to serve without a usable users file holding at least one user."""
        super().init()
        path = users_file()
        if not self.users():
            raise UsersFileError(
                f"the users file {path} has no user: add one with `runway users add NAME --role admin`"
            )
        log.info("runway auth manager: %d user(s) from %s", len(self._users), path)

    def users(self) -> dict[str, UserRecord]:
        """The users of the file, re-read only when it changed (inode, size, mode, modification or change time: a
        ``chmod`` that makes it unsafe counts).

        Raises:
            UsersFileError: the file is missing, readable by others, or malformed.
        """
        path = users_file()
        try:
            info = path.stat()
        except FileNotFoundError:
            info = None
        seen = (info.st_ino, info.st_size, info.st_mode, info.st_mtime_ns, info.st_ctime_ns) if info else None
        with self._lock:
            if seen is None or seen != self._seen:
                self._users, self._seen = read_users(path), seen  # read_users checks mode and existence again
            return self._users

    def authenticate(self, name: str, password: str) -> RunwayUser | None:
        """The user when ``password`` is theirs, else None (an unknown name costs the same time as a wrong
        password)."""
        record = self.users().get(name)
        with self._hashing:
            matches = verify_password(password, record.password_hash if record else None)
        return RunwayUser(name=name, role=record.role) if record and matches else None

    def deserialize_user(self, token: dict[str, Any]) -> RunwayUser:
        """The token's user as the file has them now; a user no longer in the file is refused (on ``ValueError``
        Airflow answers 403 "Invalid JWT token"), and so is everyone while the file is missing or unsafe."""
        try:
            record = self.users().get(token["sub"])
        except UsersFileError as error:
            log.error("refusing every login: %s", error)
            raise ValueError(str(error)) from None
        if record is None:
            raise ValueError(f"user {token['sub']!r} is not in the users file")
        return RunwayUser(name=record.name, role=record.role)

    def serialize_user(self, user: RunwayUser) -> dict[str, Any]:
        return {"sub": user.name, "role": user.role}

    def get_url_login(self, **kwargs: Any) -> str:
        login = f"{AUTH_MANAGER_FASTAPI_APP_PREFIX}/login"
        return f"{login}?{urlencode({'next': kwargs['next_url']})}" if kwargs.get("next_url") else login

    def get_fastapi_app(self) -> FastAPI | None:
        """The login page and token endpoints, mounted by Airflow under ``/auth`` (``auth_login.py``)."""
        from pipeline_components.orchestration.auth_login import login_app

        return login_app(authenticate=self.authenticate, issue_token=self._issue_token)

    def _issue_token(self, user: BaseUser, expires_in_s: int) -> str:
        assert isinstance(user, RunwayUser)
        return self.generate_jwt(user, expiration_time_in_seconds=expires_in_s)

    @staticmethod
    def _allows(user: RunwayUser, role: str) -> bool:
        return _RANK.get(user.role, -1) >= _RANK[role]

    def _read_or_write(self, user: RunwayUser, method: ExtendedResourceMethod, *, read: str, write: str) -> bool:
        return self._allows(user, read if method in _READS else write)

    def is_authorized_configuration(
        self, *, method: ResourceMethod, user: RunwayUser, details: ConfigurationDetails | None = None
    ) -> bool:
        return self._allows(user, ADMIN)

    def is_authorized_connection(
        self, *, method: ResourceMethod, user: RunwayUser, details: ConnectionDetails | None = None
    ) -> bool:
        return self._allows(user, ADMIN)

    def is_authorized_variable(
        self, *, method: ResourceMethod, user: RunwayUser, details: VariableDetails | None = None
    ) -> bool:
        return self._allows(user, ADMIN)

    def is_authorized_dag(
        self,
        *,
        method: ResourceMethod,
        user: RunwayUser,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
    ) -> bool:
        if method in _READS:
            return self._allows(user, VIEWER)
        if method in ("POST", "PUT") and access_entity in _OPERATOR_DAG_ENTITIES:
            return self._allows(user, OPERATOR)
        return self._allows(user, ADMIN)

    def is_authorized_asset(
        self, *, method: ResourceMethod, user: RunwayUser, details: AssetDetails | None = None
    ) -> bool:
        # Writing an asset means creating or clearing asset events, which trigger runs: an operator's work.
        return self._read_or_write(user, method, read=VIEWER, write=OPERATOR)

    def is_authorized_asset_alias(
        self, *, method: ResourceMethod, user: RunwayUser, details: AssetAliasDetails | None = None
    ) -> bool:
        return self._read_or_write(user, method, read=VIEWER, write=ADMIN)

    def is_authorized_pool(
        self, *, method: ResourceMethod, user: RunwayUser, details: PoolDetails | None = None
    ) -> bool:
        return self._read_or_write(user, method, read=VIEWER, write=ADMIN)

    def is_authorized_team(
        self, *, method: ResourceMethod, user: RunwayUser, details: TeamDetails | None = None
    ) -> bool:
        return self._allows(user, ADMIN)  # no teams (multi-team mode is not supported): only an admin

    def _get_teams(self) -> set[str]:
        return set()

    def is_authorized_view(self, *, access_view: AccessView, user: RunwayUser) -> bool:
        return self._allows(user, VIEWER)

    def is_authorized_custom_view(self, *, method: ResourceMethod, resource_name: str, user: RunwayUser) -> bool:
        return self._read_or_write(user, method, read=VIEWER, write=ADMIN)

    def filter_authorized_menu_items(self, menu_items: list[MenuItem], *, user: RunwayUser) -> list[MenuItem]:
        if self._allows(user, ADMIN):
            return menu_items
        return [item for item in menu_items if item not in _ADMIN_MENU] if self._allows(user, VIEWER) else []

    def is_authorized_hitl_task(self, *, assigned_users: set[str], user: RunwayUser) -> bool:
        """An operator named by the task, or any admin (Airflow asks only when the task names users)."""
        return self._allows(user, ADMIN) or (self._allows(user, OPERATOR) and user.get_id() in assigned_users)
