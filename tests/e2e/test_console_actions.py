"""The console inside a real Airflow (API server, scheduler, DAG processor; SimpleAuthManager users with passwords):
its page under the API server for a logged-in user only, its links in Airflow's UI, and its actions: promote creates
a run of ``penguins_serving`` with the action as its conf and the operator as its triggering user (Airflow's audit),
which the scheduler runs (no fleet here: the rollout's steps skip); a viewer's request creates nothing.

The browser tests (tests/browser) open the same console in Chromium on a real fleet.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline_components.settings import Settings
from tests.airflow_stack import AirflowStack, airflow_stack, wait
from tests.helpers import check, runway
from tests.unit.console.model_store import model_store
from tests.unit.console.page_html import parse

pytestmark = pytest.mark.e2e

DAG = "penguins_serving"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path_factory.mktemp("console-home"))})
    check(runway(settings, "compile", "penguins"))
    model_store(settings.model_store, "penguins_species", (1, 2), {"stable": 1})
    with airflow_stack(settings, users={"alice": "op", "watcher": "viewer"}, dag_id=DAG) as airflow:
        yield airflow


def _request(stack: AirflowStack, path: str, *, user: str = "", body: dict[str, Any] | None = None) -> tuple[int, str]:
    """As the console's script sends it: JSON with the console's header, the user's login (a token here)."""
    request = urllib.request.Request(stack.base + path, data=json.dumps(body).encode() if body else None)
    request.add_header("Content-Type", "application/json")
    request.add_header("X-Runway-Console", "1")
    if user:
        request.add_header("Authorization", f"Bearer {stack.api(user).token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_console_is_served_inside_airflow_to_logged_in_users_only(stack: AirflowStack) -> None:
    assert _request(stack, "/runway/console/penguins")[0] == 401
    status, page = _request(stack, "/runway/console/penguins", user="watcher")
    assert status == 200
    versions = parse(page).by_id("versions")
    assert [row.attrs["data-version"] for row in versions.find("tr") if "data-version" in row.attrs] == ["2", "1"]
    assert "data-action" not in page.split('id="versions"')[1]
    status, page = _request(stack, "/runway/console/penguins", user="alice")
    assert [b.attrs["data-version"] for b in parse(page).find("button", data_action="promote")] == ["2"]
    views = next(p for p in stack.api("watcher").call("GET", "/api/v2/plugins")[1]["plugins"] if p["name"] == "runway")
    assert {view["destination"]: view["href"] for view in views["external_views"]} == {
        "nav": "/runway/console/",
        "dag": "/runway/console/dag/{DAG_ID}",
        "dag_run": "/runway/console/dag/{DAG_ID}?run={RUN_ID}",
    }


def test_a_viewer_cannot_act(stack: AirflowStack) -> None:
    status, answer = _request(stack, "/runway/console/penguins/actions", user="watcher", body={"action": "rollback"})
    assert status == 403 and DAG in answer
    assert stack.api("alice").call("GET", f"/api/v2/dags/{DAG}/dagRuns")[1]["total_entries"] == 0


def test_promote_runs_the_serving_dag_as_the_operator(stack: AirflowStack) -> None:
    body = {"action": "promote", "version": 2}
    status, answer = _request(stack, "/runway/console/penguins/actions", user="alice", body=body)
    assert status == 200, answer
    run_id = json.loads(answer)["dag_run_id"]
    api = stack.api("alice")
    run = api.call("GET", f"/api/v2/dags/{DAG}/dagRuns/{run_id}")[1]
    assert run["conf"] == body and run["triggering_user_name"] == "alice" and run["run_type"] == "manual"
    assert wait("the serving run to finish", lambda: api.run_state(DAG, run_id), timeout=300) == "success"
