"""``runway deploy run``: a pipeline run on the deployment, triggered through Airflow's REST API as a user would
(authenticated, through the published port), and what ran where.

It compiles the pipeline with the deployment's settings (ML Metadata on its PostgreSQL, its own pipeline root and
model store), waits until the DAG processor has parsed it, triggers a run, follows it (one line per task as it
finishes, with the host that ran it), and returns the tasks. It is also the deployment's smoke check.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from pipeline_components.errors import RunwayError

FINISHED = ("success", "failed")


class RunFailed(RunwayError):
    """A deployment run did not succeed (its failed tasks and hosts are in the message)."""


class AirflowApi:
    """Airflow's REST API, anonymously or (``as_user``) as one user."""

    def __init__(self, base: str, token: str = "") -> None:
        self.base = base.rstrip("/")
        self.token = token

    @classmethod
    def as_user(cls, base: str, *, username: str, password: str) -> AirflowApi:
        """Log in (``POST /auth/token``) and keep the token.

        Raises:
            RunwayError: the login was refused (wrong name or password).
        """
        api = cls(base)
        status, body = api.call("POST", "/auth/token", {"username": username, "password": password})
        if status not in (200, 201):
            raise RunwayError(f"login as {username!r} at {api.base} refused (HTTP {status}): {body}")
        api.token = body["access_token"]
        return api

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            try:
                return error.code, json.loads(error.read() or b"null")
            except ValueError:
                return error.code, None

    def wait_dag(self, dag_id: str, timeout_s: float = 180.0) -> None:
        """Wait until the DAG processor has parsed ``dag_id`` (a freshly compiled pipeline) and unpause it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status, _ = self.call("GET", f"/api/v2/dags/{dag_id}")
            if status == 200:
                self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
                return
            time.sleep(2)
        raise RunwayError(f"DAG {dag_id} did not appear within {timeout_s:.0f} s: see the dag-processor's log")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        status, run = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        if status != 200:
            raise RunwayError(f"triggering {dag_id} failed (HTTP {status}): {run}")
        return str(run["dag_run_id"])

    def tasks(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        status, body = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200")
        if status != 200:
            raise RunwayError(f"reading the tasks of {run_id} failed (HTTP {status}): {body}")
        instances: list[dict[str, Any]] = body["task_instances"]
        return instances

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        status, body = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        return str(body["state"]) if status == 200 else None

    def follow(
        self, dag_id: str, run_id: str, *, say: Callable[[str], None], timeout_s: float
    ) -> tuple[str, list[dict[str, Any]]]:
        """Poll the run until it finishes; say each task's end with its host. Returns the state and the tasks."""
        deadline = time.monotonic() + timeout_s
        told: set[tuple[str, str | None, int]] = set()
        while True:
            state = self.run_state(dag_id, run_id)
            tasks = self.tasks(dag_id, run_id)
            for task in tasks:
                key = (task["task_id"], task.get("state"), int(task.get("try_number") or 0))
                if task.get("state") in ("success", "failed", "skipped", "up_for_retry") and key not in told:
                    told.add(key)
                    seconds = task.get("duration")
                    took = f" in {seconds:.0f} s" if isinstance(seconds, int | float) else ""
                    say(f"  {task['task_id']}: {task['state']} on {task.get('hostname') or '?'}{took}")
            if state in FINISHED:
                return state, tasks
            if time.monotonic() > deadline:
                raise RunFailed(f"run {run_id} of {dag_id} did not finish within {timeout_s:.0f} s (state {state})")
            time.sleep(3)
