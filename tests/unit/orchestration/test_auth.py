"""runway's production auth manager: the users file keeps no password and only its owner reads it; the roles give
viewers reading, operators runs and approvals, admins the rest; the console's actions follow the manager's decision.

The manager and its login app are the real ones (real scrypt, real FastAPI routes); the caller of the console is given
as the user Airflow's ``get_user`` would resolve. The whole login through a real API server:
``test_auth_server.py``.
"""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.common.types import MenuItem
from airflow.api_fastapi.core_api.security import get_user
from fastapi.testclient import TestClient

from pipeline_components.cli.entry import main
from pipeline_components.orchestration import plugin
from pipeline_components.orchestration.auth import RunwayAuthManager, RunwayUser, auth_env, write_users_file
from pipeline_components.orchestration.auth_login import login_app
from pipeline_components.orchestration.auth_users import (
    AUTH_MANAGER,
    USERS_FILE_ENV,
    UsersFileError,
    add_user,
    read_users,
    remove_user,
    verify_password,
)
from pipeline_components.settings import Settings

PASSWORDS = {"ada": "ada-admin-secret-1", "otto": "otto-operator-secret", "vera": "vera-viewer-secret"}
ROLES = {"ada": "admin", "otto": "operator", "vera": "viewer"}


@pytest.fixture
def users_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "auth" / "users.json"
    write_users_file(path, {name: (ROLES[name], password) for name, password in PASSWORDS.items()})
    monkeypatch.setenv(USERS_FILE_ENV, str(path))
    return path


@pytest.fixture
def manager(users_file: Path) -> RunwayAuthManager:
    manager = RunwayAuthManager()
    manager.init()
    return manager


def user(name: str) -> RunwayUser:
    return RunwayUser(name=name, role=ROLES[name])


def test_the_file_holds_salted_hashes_only_and_is_private(users_file: Path) -> None:
    text = users_file.read_text()
    assert all(password not in text for password in PASSWORDS.values())
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    users = read_users(users_file)
    assert {name: record.role for name, record in users.items()} == ROLES
    assert verify_password(PASSWORDS["otto"], users["otto"].password_hash)
    assert not verify_password(PASSWORDS["vera"], users["otto"].password_hash)
    # Salted: the same password gives another hash each time.
    write_users_file(users_file, {"a": ("admin", "same-password-1"), "b": ("viewer", "same-password-1")})
    again = read_users(users_file)
    assert again["a"].password_hash != again["b"].password_hash


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620], ids=["group-readable", "world-readable", "group-writable"])
def test_a_file_others_can_read_is_refused(users_file: Path, mode: int) -> None:
    users_file.chmod(mode)
    with pytest.raises(UsersFileError, match=f"chmod 600 {users_file}"):
        read_users(users_file)
    with pytest.raises(UsersFileError, match="chmod 600"):
        RunwayAuthManager().init()  # the API server does not start


def test_no_file_no_start_and_the_error_says_how_to_make_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(USERS_FILE_ENV, raising=False)
    with pytest.raises(UsersFileError, match=USERS_FILE_ENV):
        RunwayAuthManager().init()
    monkeypatch.setenv(USERS_FILE_ENV, str(tmp_path / "users.json"))
    with pytest.raises(UsersFileError, match="runway users add NAME --role admin"):
        RunwayAuthManager().init()


def test_a_plain_password_in_the_file_is_refused(users_file: Path) -> None:
    document = json.loads(users_file.read_text())
    document["users"]["mallory"] = {"role": "admin", "password": "letmein"}
    users_file.write_text(json.dumps(document))
    with pytest.raises(UsersFileError, match="mallory"):
        read_users(users_file)


def test_write_users_file_refuses_no_admin_a_bad_role_and_a_short_password(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    with pytest.raises(UsersFileError, match="at least one admin"):
        write_users_file(path, {"vera": ("viewer", "long-enough-secret")})
    with pytest.raises(UsersFileError, match="'root' is not one of viewer, operator, admin"):
        write_users_file(path, {"ada": ("admin", "long-enough-secret"), "x": ("root", "long-enough-secret")})
    with pytest.raises(UsersFileError, match="at least 12 characters"):
        write_users_file(path, {"ada": ("admin", "short")})
    assert not path.exists()


def test_auth_env_names_the_manager_and_the_file(tmp_path: Path) -> None:
    assert auth_env(tmp_path / "users.json") == {
        "AIRFLOW__CORE__AUTH_MANAGER": AUTH_MANAGER,
        "AIRFLOW__RUNWAY_AUTH__USERS_FILE": str(tmp_path / "users.json"),
    }
    module, _, name = AUTH_MANAGER.rpartition(".")
    assert getattr(__import__(module, fromlist=[name]), name) is RunwayAuthManager


def test_only_the_right_password_logs_in(manager: RunwayAuthManager) -> None:
    assert manager.authenticate("otto", PASSWORDS["otto"]) == RunwayUser(name="otto", role="operator")
    assert manager.authenticate("otto", PASSWORDS["vera"]) is None
    assert manager.authenticate("nobody", PASSWORDS["otto"]) is None
    assert manager.authenticate("otto", "") is None


def _dag(manager: RunwayAuthManager, name: str, method: str, entity: DagAccessEntity | None) -> bool:
    return manager.is_authorized_dag(
        method=method,  # type: ignore[arg-type]
        user=user(name),
        access_entity=entity,
        details=DagDetails(id="flights_serving"),
    )


@pytest.mark.parametrize(
    ("method", "entity", "allowed"),
    [
        pytest.param("GET", DagAccessEntity.RUN, {"vera", "otto", "ada"}, id="read-runs"),
        pytest.param("GET", DagAccessEntity.TASK_LOGS, {"vera", "otto", "ada"}, id="read-logs"),
        pytest.param("POST", DagAccessEntity.RUN, {"otto", "ada"}, id="trigger"),
        pytest.param("PUT", DagAccessEntity.TASK_INSTANCE, {"otto", "ada"}, id="clear-or-mark-task"),
        pytest.param("PUT", DagAccessEntity.HITL_DETAIL, {"otto", "ada"}, id="answer-approval"),
        pytest.param("PUT", None, {"otto", "ada"}, id="pause"),
        pytest.param("DELETE", DagAccessEntity.RUN, {"ada"}, id="delete-run"),
        pytest.param("DELETE", None, {"ada"}, id="delete-dag"),
        pytest.param("POST", DagAccessEntity.XCOM, {"ada"}, id="write-xcom"),
    ],
)
def test_dag_permissions_by_role(
    manager: RunwayAuthManager, method: str, entity: DagAccessEntity | None, allowed: set[str]
) -> None:
    assert {name for name in ROLES if _dag(manager, name, method, entity)} == allowed


def test_connections_variables_and_config_are_the_admins_even_to_read(manager: RunwayAuthManager) -> None:
    for name in ROLES:
        checks = [
            manager.is_authorized_connection(method="GET", user=user(name)),
            manager.is_authorized_variable(method="GET", user=user(name)),
            manager.is_authorized_configuration(method="GET", user=user(name)),
            manager.is_authorized_pool(method="POST", user=user(name)),
        ]
        assert checks == [name == "ada"] * 4, name
    assert manager.is_authorized_pool(method="GET", user=user("vera"))
    menu = manager.get_authorized_menu_items(user=user("vera"))
    assert MenuItem.DAGS in menu and not {MenuItem.CONNECTIONS, MenuItem.VARIABLES, MenuItem.CONFIG} & set(menu)
    assert manager.get_authorized_menu_items(user=user("ada")) == list(MenuItem)


def test_an_approval_is_answered_by_an_assigned_operator_or_an_admin(manager: RunwayAuthManager) -> None:
    assert manager.is_authorized_hitl_task(assigned_users={"otto", "vera"}, user=user("otto"))
    assert not manager.is_authorized_hitl_task(assigned_users={"otto", "vera"}, user=user("vera"))  # a viewer
    assert not manager.is_authorized_hitl_task(assigned_users={"someone"}, user=user("otto"))
    assert manager.is_authorized_hitl_task(assigned_users={"someone"}, user=user("ada"))


def test_a_token_follows_the_file_a_removed_user_is_refused_a_new_role_applies(
    manager: RunwayAuthManager, users_file: Path
) -> None:
    otto_token = manager.serialize_user(user("otto"))
    vera_token = manager.serialize_user(user("vera"))
    assert manager.deserialize_user(otto_token) == user("otto")
    remove_user(users_file, "otto")
    with pytest.raises(ValueError, match="otto"):  # Airflow answers 403 "Invalid JWT token"
        manager.deserialize_user(otto_token)
    add_user(users_file, "vera", role="operator", password="vera-is-operator-now", replace=True)
    assert manager.deserialize_user(vera_token).role == "operator"
    users_file.chmod(0o644)  # unsafe now: nobody is let in until it is fixed
    with pytest.raises(ValueError, match="chmod 600"):
        manager.deserialize_user(vera_token)


def test_the_last_admin_cannot_be_removed(users_file: Path) -> None:
    with pytest.raises(UsersFileError, match="no admin"):
        remove_user(users_file, "ada")
    assert "ada" in read_users(users_file)


def test_the_console_refuses_a_viewers_promote_on_the_managers_word(
    manager: RunwayAuthManager, isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugin, "get_auth_manager", lambda: manager)
    triggered: list[str] = []

    def trigger(pipeline: str, action: object, *, user_name: str) -> str:  # Airflow's trigger_dag is not here
        triggered.append(user_name)
        return "manual__1"

    monkeypatch.setattr("pipeline_components.console.routes.trigger", trigger)
    version = isolated_settings.model_store / "flights_delay" / "7"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    body = {"action": "promote", "version": 7}
    for name, status in (("vera", 403), ("otto", 200)):
        app = plugin.create_app()
        app.dependency_overrides[get_user] = lambda name=name: user(name)
        answer = TestClient(app).post("/console/flights/actions", json=body, headers={"X-Runway-Console": "1"})
        assert answer.status_code == status, (name, answer.text)
    assert triggered == ["otto"]


def _login_client(manager: RunwayAuthManager, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "test-only-" + "0" * 64)
    return TestClient(login_app(authenticate=manager.authenticate, issue_token=manager._issue_token))


def test_the_login_form_sets_the_cookie_and_returns_only_to_this_server(
    manager: RunwayAuthManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _login_client(manager, monkeypatch)
    form = client.get("/login", params={"next": '/dags"><script>'})
    assert form.status_code == 200 and "<script>" not in form.text and "&quot;&gt;&lt;script&gt;" in form.text
    fields = {"username": "vera", "password": PASSWORDS["vera"], "next": "/dags/flights_pipeline"}
    answer = client.post("/login", data=fields, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/dags/flights_pipeline"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("_token=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    elsewhere = client.post("/login", data={**fields, "next": "https://evil.example/"}, follow_redirects=False)
    assert elsewhere.headers["location"] == "/"
    wrong = client.post("/login", data={**fields, "password": "not-her-password"}, follow_redirects=False)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers and "not-her-password" not in wrong.text
    cross_site = client.post("/login", data=fields, headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert cross_site.status_code == 403 and "set-cookie" not in cross_site.headers


def test_runway_users_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "users.json"
    assert main(["users", "add", "ada", "--role", "admin", "--generate", "--users-file", str(path)]) == 0
    generated = capsys.readouterr().out.split("password for ada: ")[1].split()[0]
    assert verify_password(generated, read_users(path)["ada"].password_hash) and generated not in path.read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO("vera-typed-password\n"))
    assert main(["users", "add", "vera", "--role", "viewer", "--users-file", str(path)]) == 0
    assert verify_password("vera-typed-password", read_users(path)["vera"].password_hash)
    capsys.readouterr()
    assert main(["users", "list", "--users-file", str(path)]) == 0
    listing = capsys.readouterr().out
    assert "ada" in listing and "vera" in listing and "viewer" in listing and "scrypt" not in listing
    assert main(["users", "add", "vera", "--role", "admin", "--generate", "--users-file", str(path)]) == 2  # exists
    assert main(["users", "remove", "vera", "--users-file", str(path)]) == 0
    assert main(["users", "remove", "ada", "--users-file", str(path)]) == 2  # the last admin
    assert list(read_users(path)) == ["ada"] and stat.S_IMODE(os.stat(path).st_mode) == 0o600
