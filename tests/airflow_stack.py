"""A real Airflow 3 for tests: API server, scheduler (LocalExecutor) and DAG processor, with a real login.

    with airflow_stack(settings, users={"operator": "admin", "watcher": "viewer"}, dag_id="penguins_pipeline") as af:
        api = af.api("operator")            # the REST API, logged in as that user (a JWT from /auth/token)
        af.base, af.passwords["watcher"]    # what a browser needs to log in

Each user gets a random password in a SimpleAuthManager passwords file, as runway's Airflow has by default (no
all-admins). Used by ``tests/e2e/test_scheduler_rest.py`` (REST) and ``tests/browser`` (Chromium).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pipeline_components.deploy.smoke import AirflowApi
from pipeline_components.orchestration.airflow_local import airflow_bin, airflow_env, ensure_database
from pipeline_components.ports import free_ports
from pipeline_components.settings import Settings

T = TypeVar("T")


class Api(AirflowApi):
    """Airflow's REST API as one user (``login``) or anonymously (runway's client, with the tests' retries)."""

    def login(self, username: str, password: str) -> None:
        status, body = self.call("POST", "/auth/token", {"username": username, "password": password})
        assert status in (200, 201), body
        self.token = body["access_token"]

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Create a run of ``dag_id`` with ``conf``; return its run id.

        On the embedded SQLite database, the API server, scheduler and DAG processor all write; a write can time
        out on the database lock ("database is locked", HTTP 500, nothing created). A client retries that, as
        here; production runs on PostgreSQL (docker-compose.yml, infra/k8s).
        """
        for _attempt in range(4):
            status, run = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
            if status < 500:
                break
            time.sleep(3)
        assert status == 200, run
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """The run's state once it has finished (``success`` or ``failed``), else None."""
        state = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")[1]["state"]
        return state if state in ("success", "failed") else None


def wait(what: str, predicate: Callable[[], T | None], timeout: float, every: float = 2.0) -> T:
    """Poll ``predicate`` until it returns something true (connection errors count as not yet); fail after
    ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (urllib.error.URLError, ConnectionError, OSError):
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class AirflowStack:
    settings: Settings
    base: str  # http://localhost:PORT: the UI, the REST API and the plugin's app
    passwords: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def api(self, user: str) -> Api:
        api = Api(self.base)
        api.login(user, self.passwords[user])
        return api

    def paused_task_handled(self, dag_id: str, task_id: str, run_id: str) -> bool:
        """Whether the scheduler has handled the executor's "finished" event of a task that paused for a person.

        Airflow 3.3 fails the task when the person's answer arrives before that event (docs/fleet.md, "A known
        race"). A person answers seconds after the request, by which time the scheduler has handled it; on a loaded
        machine its loop can take longer, so a test that answers at once waits for this line of its log first.
        """
        key = f"TaskInstanceKey(dag_id='{dag_id}', task_id='{task_id}', run_id='{run_id}'"
        log = self.settings.home / "airflow-scheduler.log"
        return log.is_file() and any(
            "Received executor event with state success" in line and key in line
            for line in log.read_text(errors="replace").splitlines()
        )

    def stop(self) -> None:
        for process in self.processes:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


@contextmanager
def airflow_stack(
    settings: Settings, *, users: dict[str, str], dag_id: str, parallelism: int = 4
) -> Iterator[AirflowStack]:
    """Start Airflow on a free loopback port with ``settings`` (its RUNWAY_HOME, its compiled pipelines).

    Args:
        settings: the test's settings; the database and the components' logs go under its home.
        users: user name -> SimpleAuthManager role (``admin``, ``op``, ``user``, ``viewer``).
        dag_id: a DAG to wait for: the stack is ready once the DAG processor has parsed it.
        parallelism: task instances the LocalExecutor runs at once.

    Yields:
        The running stack; every component is stopped (its whole process group) on exit.
    """
    home = settings.home
    ensure_database(settings)
    (port,) = free_ports(1)
    passwords = {user: secrets.token_urlsafe(16) for user in users}
    passwords_file = home / "simple_auth_manager_passwords.json"
    passwords_file.write_text(json.dumps(passwords))
    env = {
        **airflow_env(settings),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{user}:{role}" for user, role in users.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
    }
    stack = AirflowStack(settings, f"http://localhost:{port}", passwords)
    try:
        for component in (["api-server", "--port", str(port)], ["scheduler"], ["dag-processor"]):
            log = (home / f"airflow-{component[0]}.log").open("w")
            stack.processes.append(
                subprocess.Popen(
                    [airflow_bin(), *component], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        anonymous = Api(stack.base)
        wait("the API server", lambda: anonymous.call("GET", "/api/v2/version")[0] in (200, 401), timeout=120)
        api = stack.api(next(iter(users)))
        wait(f"the DAG {dag_id} to be parsed", lambda: api.call("GET", f"/api/v2/dags/{dag_id}")[0] == 200, 180)
        yield stack
    finally:
        stack.stop()
