"""One real Airflow 3.3 API server under runway's auth manager: what a team relies on, asked over HTTP.

Users: an admin, an operator and a viewer in a users file written by ``write_users_file`` (as the deployment
does). Two DAGs, ``flights_pipeline`` and ``flights_serving``, are put into the database by
``airflow dags reserialize``, no scheduler: a triggered run stays queued, which is all these checks need. A
second API server started without a users file must exit, saying how to make one.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import stat
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from pipeline_components.orchestration.airflow_local import airflow_bin, airflow_env, ensure_database
from pipeline_components.orchestration.auth import auth_env, write_users_file
from pipeline_components.orchestration.auth_users import USERS_FILE_ENV, remove_user
from pipeline_components.ports import free_ports
from pipeline_components.settings import Settings
from tests.airflow_stack import Api, wait

PASSWORDS = {"ada": secrets.token_urlsafe(16), "otto": secrets.token_urlsafe(16), "vera": secrets.token_urlsafe(16)}
ROLES = {"ada": "admin", "otto": "operator", "vera": "viewer"}
DAGS = """
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for dag_id in ("flights_pipeline", "flights_serving"):
    with DAG(dag_id=dag_id, schedule=None):
        EmptyOperator(task_id="noop")
"""
VERSION = 7  # a version in the model store, for the console's promote


@dataclass
class Server:
    base: str
    users_file: Path
    refused_start: subprocess.CompletedProcess[str]

    def api(self, name: str | None = None) -> Api:
        api = Api(self.base)
        if name:
            api.login(name, PASSWORDS[name])
        return api


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [airflow_bin(), "api-server", "--port", str(port)],
        env={**env, "AIRFLOW__API__PORT": str(port)},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("auth_server")
    settings = Settings.from_env({"RUNWAY_HOME": str(root / "home")})
    (root / "dags").mkdir()
    (root / "dags" / "flights.py").write_text(DAGS)
    version = settings.model_store / "flights_delay" / str(VERSION)
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    users_file = root / "secrets" / "users.json"
    write_users_file(users_file, {name: (ROLES[name], password) for name, password in PASSWORDS.items()})
    env = {
        **airflow_env(settings),
        **auth_env(users_file),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
    }
    port, bad_port = free_ports(2)
    ensure_database(settings)  # the API server checks the schema before its auth manager
    # Side by side (Airflow's imports take seconds each): the real server, the one that must refuse to start, and
    # the DAGs' serialization.
    process = _start(env, port, root / "api-server.log")
    no_file = {**env, USERS_FILE_ENV: str(root / "missing" / "users.json")}
    refused = _start(no_file, bad_port, root / "refused.log")
    serialized = subprocess.run([airflow_bin(), "dags", "reserialize"], env=env, capture_output=True, text=True)
    assert serialized.returncode == 0, serialized.stderr[-2000:]
    try:
        refused.wait(timeout=120)
        refused_log = (root / "refused.log").read_text()
        result = subprocess.CompletedProcess(refused.args, refused.returncode, refused_log, "")
        base = f"http://127.0.0.1:{port}"
        wait("the API server", lambda: Api(base).call("GET", "/api/v2/version")[0] == 200, timeout=120, every=0.5)
        yield Server(base, users_file, result)
    finally:
        _stop(refused)
        _stop(process)


def _console_action(server: Server, api: Api) -> tuple[int, Any]:
    """The console page's own request: promote version 7 of flights."""
    request = urllib.request.Request(
        f"{server.base}/runway/console/flights/actions",
        data=json.dumps({"action": "promote", "version": VERSION}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-Runway-Console": "1"}
        | ({"Authorization": f"Bearer {api.token}"} if api.token else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_without_a_login_everything_is_refused(server: Server) -> None:
    anonymous = server.api()
    for method, path in [
        ("GET", "/api/v2/dags"),
        ("GET", "/api/v2/dags/flights_pipeline/dagRuns"),
        ("POST", "/api/v2/dags/flights_pipeline/dagRuns"),
        ("GET", "/api/v2/connections"),
        ("GET", "/api/v2/variables"),
        ("GET", "/runway/console/"),
    ]:
        assert anonymous.call(method, path, {} if method == "POST" else None)[0] == 401, (method, path)
    assert _console_action(server, anonymous)[0] == 401


def test_a_wrong_password_or_an_unknown_user_gets_no_token(server: Server) -> None:
    api = server.api()
    for name, password in [("vera", PASSWORDS["otto"]), ("vera", ""), ("mallory", PASSWORDS["vera"])]:
        status, body = api.call("POST", "/auth/token", {"username": name, "password": password})
        assert status in (400, 401) and "access_token" not in (body or {}), (name, status, body)


def test_a_viewer_reads_but_cannot_trigger_promote_or_see_secrets(server: Server) -> None:
    vera = server.api("vera")
    status, dags = vera.call("GET", "/api/v2/dags")
    assert status == 200 and {"flights_pipeline", "flights_serving"} <= {d["dag_id"] for d in dags["dags"]}
    assert vera.call("GET", "/api/v2/dags/flights_pipeline/dagRuns")[0] == 200
    assert vera.call("POST", "/api/v2/dags/flights_pipeline/dagRuns", {"logical_date": None})[0] == 403
    assert vera.call("GET", "/api/v2/connections")[0] == 403
    assert vera.call("GET", "/api/v2/variables")[0] == 403
    status, body = _console_action(server, vera)
    assert status == 403 and "flights_serving" in body
    assert vera.call("GET", "/api/v2/dags/flights_serving/dagRuns")[1]["total_entries"] == 0


def test_an_operator_triggers_and_promotes_but_does_not_see_secrets(server: Server) -> None:
    otto = server.api("otto")
    run_id = otto.trigger("flights_pipeline", {})
    status, run = otto.call("GET", f"/api/v2/dags/flights_pipeline/dagRuns/{run_id}")
    assert status == 200 and run["triggering_user_name"] == "otto"
    status, action = _console_action(server, otto)
    assert status == 200 and action["user"] == "otto", action
    status, run = otto.call("GET", f"/api/v2/dags/flights_serving/dagRuns/{action['dag_run_id']}")
    assert status == 200 and run["conf"] == {"action": "promote", "version": VERSION}
    assert otto.call("GET", "/api/v2/connections")[0] == 403
    assert otto.call("GET", "/api/v2/variables")[0] == 403


def test_only_the_admin_reads_connections_and_variables(server: Server) -> None:
    ada = server.api("ada")
    assert ada.call("GET", "/api/v2/connections")[0] == 200
    assert ada.call("GET", "/api/v2/variables")[0] == 200
    assert ada.call("POST", "/api/v2/variables", {"key": "k", "value": "v"})[0] == 201


def test_the_browser_is_sent_to_runways_login_page(server: Server) -> None:
    opener = urllib.request.build_opener(urllib.request.HTTPRedirectHandler())
    with opener.open(f"{server.base}/api/v2/auth/login?next=/dags", timeout=30) as page:
        text = page.read().decode()
    assert page.url.startswith(f"{server.base}/auth/login") and 'name="password"' in text


def test_the_login_forms_cookie_opens_the_api(server: Server) -> None:
    """What a browser does: the form's post sets Airflow's cookie, and the cookie alone authenticates."""

    class Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # look at the 303 itself

    fields = urlencode({"username": "otto", "password": PASSWORDS["otto"], "next": "/dags"}).encode()
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.build_opener(Keep()).open(f"{server.base}/auth/login", data=fields, timeout=30)
    assert answer.value.code == 303 and answer.value.headers["Location"] == "/dags"
    cookie = answer.value.headers["Set-Cookie"]
    assert cookie.startswith("_token=") and "HttpOnly" in cookie
    request = urllib.request.Request(f"{server.base}/api/v2/dags", headers={"Cookie": cookie.split(";")[0]})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200 and "flights_pipeline" in response.read().decode()


def test_a_removed_user_is_refused_at_once(server: Server) -> None:
    vera = server.api("vera")
    assert vera.call("GET", "/api/v2/dags")[0] == 200
    remove_user(server.users_file, "vera")
    assert vera.call("GET", "/api/v2/dags") == (403, {"detail": "Invalid JWT token"})  # Airflow's answer to it


def test_the_users_file_is_private_and_holds_no_password(server: Server) -> None:
    assert stat.S_IMODE(server.users_file.stat().st_mode) == 0o600
    assert not any(password in server.users_file.read_text() for password in PASSWORDS.values())


def test_an_api_server_without_a_users_file_does_not_start(server: Server) -> None:
    assert server.refused_start.returncode != 0
    assert "runway users add NAME --role admin" in server.refused_start.stdout
