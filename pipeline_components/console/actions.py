"""The console's actions: promote a version to ``stable``, or roll back, by triggering ``<name>_serving`` through
Airflow's own trigger machinery as the logged-in user, so that the run is audited (the run's triggering user) and
goes through the same verified rollout steps as any other (``fleet/tasks.py``).

Guarded against cross-site requests: the console's own script sends a JSON body with the ``X-Runway-Console``
header (a form on another site can send neither, and a cross-origin script must pass a CORS preflight this app
never grants), and a request whose ``Origin`` or ``Sec-Fetch-Site`` says it comes from elsewhere is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from pipeline_components.errors import RunwayError
from pipeline_components.orchestration import serving_dag_id_for

ACTIONS = ("promote", "rollback")
# Waits before each retry of a trigger that hit SQLite's write lock (the embedded database: the API server, the
# scheduler and the DAG processor all write; a write can time out on the lock with nothing created).
LOCK_RETRIES_S = (0.5, 1.0, 2.0, 4.0)
CONSOLE_HEADER = "X-Runway-Console"


class ActionRefused(RunwayError):
    """An action the console will not trigger: what is wrong, and the status to answer with."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ActionRequest:
    """A validated action: ``promote`` with a version in the store, or ``rollback`` (to the previous stable)."""

    action: str
    version: int | None

    @property
    def conf(self) -> dict[str, Any]:
        return {"action": self.action, "version": self.version}


def parse_action(body: Any, *, versions: list[int]) -> ActionRequest:
    """Check the request's JSON body against the versions in the store.

    Raises:
        ActionRefused: (400) an unknown action, a promote without a version, or a version not in the store.
    """
    if not isinstance(body, dict) or body.get("action") not in ACTIONS:
        raise ActionRefused(
            f'the body must be {{"action": "promote" | "rollback", "version": N}}: got {body!r}', status=400
        )
    version = body.get("version")
    if body["action"] == "rollback":
        return ActionRequest("rollback", None)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ActionRefused(f"promote needs a version number (one of {versions}): got {version!r}", status=400)
    if version not in versions:
        raise ActionRefused(f"version {version} is not in the model store (it has {versions})", status=400)
    return ActionRequest("promote", version)


def check_same_origin(headers: Any) -> None:
    """Refuse a request that did not come from the console's own script on this origin.

    Args:
        headers: the request's headers (case-insensitive mapping).

    Raises:
        ActionRefused: (403) the custom header is missing, or the request names another origin.
    """
    if headers.get(CONSOLE_HEADER) != "1":
        raise ActionRefused(f"actions are sent by the console's page ({CONSOLE_HEADER} header missing)", status=403)
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise ActionRefused(f"a request from another site ({site}) cannot act", status=403)
    origin = headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != headers.get("host"):
        raise ActionRefused(f"a request from another origin ({origin}) cannot act", status=403)


def trigger(pipeline: str, request: ActionRequest, *, user_name: str) -> str:
    """Trigger ``<pipeline>_serving`` with the action's conf as ``user_name``; returns the new run's id.

    Raises:
        ActionRefused: (404) Airflow has no such DAG (``serving.rollout`` off, or not parsed yet); (409) the run
            exists already; (503) the database stayed locked through every retry (nothing was triggered).
    """
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy.exc import OperationalError

    dag_id = serving_dag_id_for(pipeline)
    try:
        for attempt, pause in enumerate((*LOCK_RETRIES_S, None), start=1):
            try:
                run = trigger_dag(
                    dag_id, triggered_by=DagRunTriggeredByType.UI, triggering_user_name=user_name, conf=request.conf
                )
                break
            except OperationalError as error:  # rolled back: nothing was created
                if "database is locked" not in str(error):
                    raise
                if pause is None:
                    raise ActionRefused(
                        f"Airflow's database stayed locked through {attempt} tries; nothing was triggered: try again "
                        "(a team's deployment runs Airflow on PostgreSQL, which has no such lock)",
                        status=503,
                    ) from None
                time.sleep(pause)
    except DagNotFound:
        raise ActionRefused(
            f"Airflow has no DAG {dag_id}: is serving.rollout on, and has the DAG processor parsed it?", status=404
        ) from None
    except DagRunAlreadyExists as exists:
        raise ActionRefused(f"{dag_id} has this run already: {exists}", status=409) from None
    if run is None:
        raise ActionRefused(f"Airflow created no run of {dag_id}", status=500)
    return str(run.run_id)


def grid_url(dag_id: str, run_id: str) -> str:
    """The run's page in Airflow's UI."""
    return f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
