"""The approval gate under a real Airflow (scheduler, DAG processor, API server) and a real 3-instance fleet.

`penguins` is compiled with `--set serving.approval=required`; its serving DAG promotes a version of tiny models
(``tests/fleet/tiny_models.py``: y = w * x, w tells which version answered). The run waits in `rollout.approve`
("Required actions" in the UI) and is answered through Airflow's REST API (``hitlDetails``), as the logged-in
operator: Reject puts the previous stable back on every instance, Approve promotes. The scheduler e2e stack
(test_scheduler_rest.py) has no fleet, and its pipeline runs expect the rollout to skip; the browser tests approve
through the UI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline_components.fleet import CANARY_LABEL
from pipeline_components.fleet.nginx import find_nginx
from pipeline_components.settings import Settings
from tests.airflow_stack import AirflowStack, Api, airflow_stack, wait
from tests.fleet.fixtures import RunningFleet, start_fleet, tiny_models
from tests.fleet.test_rollout import W, rest_answer
from tests.helpers import check, missing, runway

pytestmark = pytest.mark.e2e

DAG_ID = "penguins_serving"
MODEL = "penguins_species"  # the serving DAG's model (configs/penguins.yaml)
TIMEOUT_S = 120


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
        # Answers come within seconds of the request; the timeout test waits this long for none.
        timeout = ("--set", f"serving.approval_timeout_h={TIMEOUT_S / 3600}")
        check(runway(settings, "compile", "penguins", "--set", "serving.approval=required", *timeout))
        with airflow_stack(settings, users={"operator": "admin"}, dag_id=DAG_ID) as stack:
            stack.api("operator").call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
            yield fleet, stack
    finally:
        fleet.stop()


def _promote_and_answer(
    stack: AirflowStack, option: str | None, *, version: int = 2, stable: int = 1
) -> tuple[Api, str, dict[str, Any]]:
    """Trigger a promotion of ``version``; once it asks, answer ``option`` as the operator (None: never). Returns
    the API, the finished run's id and its task states."""
    api = stack.api("operator")
    run_id = api.trigger(DAG_ID, {"action": "promote", "version": version})
    approve = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/rollout.approve"

    def asking() -> bool:
        if api.run_state(DAG_ID, run_id) is not None:
            raise AssertionError(f"run {run_id} ended before asking: {api.call('GET', approve)[1]}")
        return api.call("GET", approve)[1].get("state") == "awaiting_input"

    wait(f"run {run_id} to ask for an approval", asking, timeout=600, every=2)
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
    assert wait(f"run {run_id}", lambda: api.run_state(DAG_ID, run_id), timeout=bound, every=2) == "success"
    tasks = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")[1]["task_instances"]
    return api, run_id, {task["task_id"]: task["state"] for task in tasks}


def _xcom(api: Api, run_id: str, key: str) -> Any:
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/rollout.approve/xcomEntries/{key}"
    status, entry = api.call("GET", path)
    assert status == 200, entry
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) and value.startswith('"') else value


def test_a_rejected_promotion_puts_the_previous_stable_back(gate: tuple[RunningFleet, AirflowStack]) -> None:
    fleet, stack = gate

    api, run_id, states = _promote_and_answer(stack, "Reject")

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
