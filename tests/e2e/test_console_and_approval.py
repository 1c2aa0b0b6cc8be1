"""The model console and the approval gate under one real Airflow (scheduler, DAG processor, API server with
SimpleAuthManager users and passwords) and a real 3-instance fleet: one stack for both, started once.

`penguins` is compiled with `--set serving.approval=required`; its serving DAG promotes a version of tiny models
(``tests/fleet/tiny_models.py``: y = w * x, w tells which version answered).

- The console is served inside Airflow to logged-in users only, linked from Airflow's UI (external views); a viewer
  sees no action and cannot act (nothing is triggered).
- A promotion asked from the console runs ``penguins_serving`` as the operator (conf and triggering user: Airflow's
  audit) and waits in ``rollout.approve`` ("Required actions"); answered through Airflow's REST API
  (``hitlDetails``) as the operator: Reject puts the previous stable back on every instance, Approve promotes, and no
  answer within ``serving.approval_timeout_h`` is a rejection by the scheduler's timeout.

The browser tests (tests/browser) open the same console and approve through the UI in Chromium.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pipeline_components.fleet import CANARY_LABEL
from pipeline_components.fleet.nginx import find_nginx
from pipeline_components.settings import Settings
from tests.airflow_stack import AirflowStack, Api, airflow_stack, wait
from tests.fleet.fixtures import RunningFleet, start_fleet, tiny_models
from tests.fleet.test_rollout import W, rest_answer
from tests.helpers import check, missing, runway
from tests.unit.console.page_html import parse

pytestmark = pytest.mark.e2e

DAG_ID = "penguins_serving"
MODEL = "penguins_species"  # the serving DAG's model (configs/penguins.yaml)
ANSWER_AFTER_S = 5.0  # how long after the request the test's operator answers
RACE_ATTEMPTS = 3  # promotions tried when Airflow's approval race fails one (see _promote_and_answer)
TIMEOUT_S = 60  # the approval timeout of these runs: answers come within seconds


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningFleet, AirflowStack]]:
    try:
        find_nginx()
    except Exception as error:
        missing(str(error))
    if not Settings.from_env().runtime_python.exists():
        missing("the runtime environment is missing (make setup)")
    home = tmp_path_factory.mktemp("approval-home")
    fleet = start_fleet(home, tiny_models(tmp_path_factory.mktemp("tiny-models")))
    try:
        fleet.publish(MODEL, 1, "good_a")
        fleet.rollout(MODEL).run(1)
        fleet.publish(MODEL, 2, "good_b")
        settings = fleet.settings
        timeout = ("--set", f"serving.approval_timeout_h={TIMEOUT_S / 3600}")
        check(runway(settings, "compile", "penguins", "--set", "serving.approval=required", *timeout))
        with airflow_stack(settings, users={"operator": "admin", "watcher": "viewer"}, dag_id=DAG_ID) as stack:
            stack.api("operator").call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
            yield fleet, stack
    finally:
        fleet.stop()


def _console(stack: AirflowStack, path: str, *, user: str = "", body: dict[str, Any] | None = None) -> tuple[int, str]:
    """A request to the console as its script sends it: JSON with the console's header, the user's login (a token)."""
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


def _from_console(stack: AirflowStack, conf: dict[str, Any]) -> str:
    """The console's promote button, pressed by the operator: the run of the serving DAG it created."""
    status, answer = _console(stack, "/runway/console/penguins/actions", user="operator", body=conf)
    assert status == 200, answer
    run_id = str(json.loads(answer)["dag_run_id"])
    run = stack.api("operator").call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")[1]
    assert run["conf"] == conf and run["triggering_user_name"] == "operator" and run["run_type"] == "manual"
    return run_id


def test_the_console_is_served_inside_airflow_to_logged_in_users_only(gate: tuple[RunningFleet, AirflowStack]) -> None:
    _, stack = gate
    assert _console(stack, "/runway/console/penguins")[0] == 401
    status, page = _console(stack, "/runway/console/penguins", user="watcher")
    assert status == 200
    versions = parse(page).by_id("versions")
    assert [row.attrs["data-version"] for row in versions.find("tr") if "data-version" in row.attrs] == ["2", "1"]
    assert "data-action" not in page.split('id="versions"')[1]
    status, page = _console(stack, "/runway/console/penguins", user="operator")
    assert [b.attrs["data-version"] for b in parse(page).find("button", data_action="promote")] == ["2"]
    views = next(p for p in stack.api("watcher").call("GET", "/api/v2/plugins")[1]["plugins"] if p["name"] == "runway")
    assert {view["destination"]: view["href"] for view in views["external_views"]} == {
        "nav": "/runway/console/",
        "dag": "/runway/console/dag/{DAG_ID}",
        "dag_run": "/runway/console/dag/{DAG_ID}?run={RUN_ID}",
    }


def test_a_viewer_cannot_act(gate: tuple[RunningFleet, AirflowStack]) -> None:
    _, stack = gate
    answer = _console(stack, "/runway/console/penguins/actions", user="watcher", body={"action": "rollback"})
    assert answer[0] == 403 and DAG_ID in answer[1]
    assert stack.api("operator").call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")[1]["total_entries"] == 0


def _promote_and_answer(
    stack: AirflowStack,
    option: str | None,
    *,
    version: int = 2,
    stable: int = 1,
    trigger: Callable[[AirflowStack, dict[str, Any]], str] | None = None,
) -> tuple[Api, str, dict[str, Any]]:
    """Trigger a promotion of ``version`` (through Airflow's REST API, or ``trigger``); once it asks, answer
    ``option`` as the operator (None: never). Returns the API, the finished run's id and its task states."""
    api = stack.api("operator")
    conf = {"action": "promote", "version": version}
    for _attempt in range(RACE_ATTEMPTS):
        run_id = trigger(stack, conf) if trigger else api.trigger(DAG_ID, conf)
        final = _ask_and_answer(stack, api, run_id, option, version=version, stable=stable)
        tasks = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")[1]["task_instances"]
        states = {task["task_id"]: task["state"] for task in tasks}
        if option is not None and states.get("rollout.approve") == "failed":
            # Airflow 3.3's race on an answer given before the scheduler handled the pause (RolloutApprovalOperator):
            # the task fails, the backstop puts the previous stable back, and the operator asks again.
            assert final == "failed" and states["rollout.promote"] != "success", states
            continue
        assert final == "success", states
        return api, run_id, states
    raise AssertionError(f"Airflow's approval race on all {RACE_ATTEMPTS} promotions")


def _ask_and_answer(
    stack: AirflowStack, api: Api, run_id: str, option: str | None, *, version: int, stable: int
) -> str | None:
    """Wait for the run to ask, check the request, answer ``option`` (None: never); return the run's final state."""
    approve = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/rollout.approve"

    def asking() -> bool:
        if api.run_state(DAG_ID, run_id) is not None:
            raise AssertionError(f"run {run_id} ended before asking: {api.call('GET', approve)[1]}")
        return api.call("GET", approve)[1].get("state") == "awaiting_input"

    wait(f"run {run_id} to ask for an approval", asking, timeout=600, every=2)
    time.sleep(ANSWER_AFTER_S)  # a person answers seconds later; this models the person, nothing is timed
    # On a loaded machine the scheduler may take longer than a person to handle the pause (docs/fleet.md).
    handled = f"the scheduler to handle run {run_id}'s pause"
    wait(handled, lambda: stack.paused_task_handled(DAG_ID, "rollout.approve", run_id), timeout=120, every=1)
    status, detail = api.call("GET", f"{approve}/-1/hitlDetails")
    assert status == 200, detail
    assert detail["options"] == ["Approve", "Reject"]
    assert f"Promote version {version} of penguins_species to stable? (stable now: {stable})" in detail["subject"]
    # What the person decides on: the canary's verification on every instance, over both protocols.
    assert detail["body"].count("answers as exported") == 6, detail["body"]
    if option is not None:
        answer = {"chosen_options": [option], "params_input": {}}
        status, answered = api.call("PATCH", f"{approve}/-1/hitlDetails", answer)
        assert status == 200, answered
    bound = 300 + (TIMEOUT_S if option is None else 0)
    return wait(f"run {run_id}", lambda: api.run_state(DAG_ID, run_id), timeout=bound, every=2)


def _xcom(api: Api, run_id: str, key: str) -> Any:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/rollout.approve/xcomEntries/{key}"
    status, entry = api.call("GET", path)
    assert status == 200, entry
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) and value.startswith('"') else value


def test_a_rejected_promotion_puts_the_previous_stable_back(gate: tuple[RunningFleet, AirflowStack]) -> None:
    fleet, stack = gate

    api, run_id, states = _promote_and_answer(stack, "Reject", trigger=_from_console)

    assert states["rollout.verify"] == "success" and states["rollout.approve"] == "success"
    assert states["rollout.promote"] == "skipped" and states["rollout.retire"] == "skipped"
    serving = fleet.store.serving(MODEL)
    assert serving.stable == 1 and serving.canary is None
    assert all(rest_answer(fleet, MODEL) == W["good_a"] for _ in range(6))  # every instance, through nginx
    assert _xcom(api, run_id, "decision") == "rejected" and _xcom(api, run_id, "decided_by") == "operator"
    assert "rejected by operator" in fleet.rollout(MODEL).journal()["reason"]


def test_an_approved_promotion_moves_stable(gate: tuple[RunningFleet, AirflowStack]) -> None:
    fleet, stack = gate

    api, run_id, states = _promote_and_answer(stack, "Approve")

    assert states["rollout.promote"] == "success" and states["rollout.retire"] == "success"
    serving = fleet.store.serving(MODEL)
    assert serving.stable == 2 and CANARY_LABEL not in serving.labels
    assert all(rest_answer(fleet, MODEL) == W["good_b"] for _ in range(6))
    assert _xcom(api, run_id, "decided_by") == "operator"


def test_an_unanswered_promotion_times_out_and_keeps_the_stable(gate: tuple[RunningFleet, AirflowStack]) -> None:
    """Nobody answers within serving.approval_timeout_h: the scheduler's timeout ends the wait, as a rejection."""
    fleet, stack = gate

    api, run_id, states = _promote_and_answer(stack, None, version=1, stable=2)

    assert states["rollout.promote"] == "skipped"
    serving = fleet.store.serving(MODEL)
    assert serving.stable == 2 and serving.canary is None
    assert all(rest_answer(fleet, MODEL) == W["good_b"] for _ in range(6))
    assert _xcom(api, run_id, "decision") == "timed_out"
    assert "the approval timed out" in fleet.rollout(MODEL).journal()["reason"]
