"""Issue 9's rollout acceptance tests, on a real 3-instance local fleet behind nginx with tiny models.

Each test uses its own model name in the fleet's shared store, so the tests share one fleet (started once per
module, ~30 s) and stay independent. Tiny models compute ``y = w * x + n``: w tells which version answered.
"""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from airflow.sdk.exceptions import DownstreamTasksSkipped

from pipeline_components.config import load_pipeline_config
from pipeline_components.fleet import CANARY_LABEL, STABLE_LABEL, protos
from pipeline_components.fleet.approval import approval_body
from pipeline_components.fleet.instances import Instance
from pipeline_components.fleet.rollout import RolloutFailed
from pipeline_components.orchestration.dag_factory import build_serving_dag
from tests.conftest import CONFIGS
from tests.fleet.fixtures import RunningFleet

pytestmark = pytest.mark.runtime

W = {"good_a": 2.0, "good_b": 3.0, "differs": 5.0}


def rest_answer(fleet: RunningFleet, model: str, label: str = STABLE_LABEL) -> float:
    """y for x=1, n=0 through nginx (REST), i.e. the w of the version the label names."""
    request = urllib.request.Request(
        f"{fleet.state.rest_url}/v1/models/{model}/labels/{label}:predict",
        data=json.dumps({"instances": [{"x": 1.0, "n": 0}]}).encode(),
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return float(json.loads(response.read())["predictions"][0])


def grpc_answer(fleet: RunningFleet, model: str, label: str = STABLE_LABEL) -> float:
    channel = grpc.insecure_channel(fleet.state.grpc_target)
    try:
        request = protos.predict_request(
            model, {"x": [1.0], "n": [0]}, {"x": protos.DT_FLOAT, "n": protos.DT_INT64}, label=label
        )
        response = protos.call(
            channel, protos.PREDICTION_SERVICE + "Predict", request, "tensorflow.serving.PredictResponse", 10
        )
        return float(protos.tensor_values(response.outputs["y"])[1][0])
    finally:
        channel.close()


def states(fleet: RunningFleet, model: str) -> dict[str, dict[int, str]]:
    result = {}
    for address in (fleet.fleet.state() or fleet.state).instances:
        instance = Instance(address)
        try:
            result[address.name] = {v: s.state for v, s in instance.model_status(model).items()}
        finally:
            instance.close()
    return result


def promote_first(fleet: RunningFleet, model: str) -> None:
    fleet.publish(model, 1, "good_a")
    fleet.rollout(model).run(1)
    assert fleet.store.serving(model).stable == 1


def test_a_good_model_is_promoted_on_every_instance_and_a_rerun_changes_nothing(local_fleet: RunningFleet) -> None:
    model = "tiny_good"
    promote_first(local_fleet, model)
    local_fleet.publish(model, 2, "good_b")

    lines = local_fleet.rollout(model).run(2)

    assert any("answered as exported" in line for line in lines), lines
    serving = local_fleet.store.serving(model)
    assert serving.stable == 2 and serving.canary is None
    assert set(serving.versions) == {1, 2}  # the previous stable stays loaded: an instant rollback
    assert all(versions.get(2) == "AVAILABLE" for versions in states(local_fleet, model).values())
    for _ in range(6):  # round-robin over the three instances, both protocols
        assert rest_answer(local_fleet, model) == W["good_b"]
        assert grpc_answer(local_fleet, model) == W["good_b"]
    config_before = local_fleet.store.config_path.read_text()

    again = local_fleet.rollout(model).run(2)

    assert again == [f"version 2 of {model} is already stable on the fleet"]
    assert local_fleet.store.config_path.read_text() == config_before


def test_retention_keeps_the_newest_versions_and_never_a_labelled_one(local_fleet: RunningFleet) -> None:
    model = "tiny_retention"
    promote_first(local_fleet, model)
    for version in (2, 3, 4):
        local_fleet.publish(model, version, "good_a" if version % 2 else "good_b")
        local_fleet.rollout(model, retain_versions=2).run(version)

    assert local_fleet.store.versions_on_disk(model) == [3, 4]
    assert local_fleet.store.serving(model).versions == (3, 4)
    # Version 1 was unloaded everywhere once it was neither stable nor the previous stable.
    assert all(versions.get(1) in (None, "END") for versions in states(local_fleet, model).values())


def test_a_model_that_fails_to_load_on_one_instance_is_never_labelled(local_fleet: RunningFleet) -> None:
    model = "tiny_broken"
    promote_first(local_fleet, model)
    local_fleet.publish(model, 2, "good_b", broken_on_replica=True)  # serving-2's copy cannot load

    with pytest.raises(RolloutFailed, match=r"wait_available.*serving-2 failed to load version 2"):
        local_fleet.rollout(model).run(2)

    serving = local_fleet.store.serving(model)
    assert serving.stable == 1 and serving.canary is None and serving.versions == (1,)
    journal = local_fleet.rollout(model).journal()
    assert journal["status"] == "rolled_back" and journal["failed_step"] == "wait_available"
    for _ in range(6):
        assert rest_answer(local_fleet, model) == W["good_a"]
        assert grpc_answer(local_fleet, model) == W["good_a"]


def test_a_model_whose_predictions_differ_is_rolled_back(local_fleet: RunningFleet) -> None:
    model = "tiny_differs"
    promote_first(local_fleet, model)
    local_fleet.publish(model, 2, "differs")

    with pytest.raises(RolloutFailed, match=r"verify.*the exported model says"):
        local_fleet.rollout(model).run(2)

    serving = local_fleet.store.serving(model)
    assert serving.stable == 1 and serving.canary is None and serving.versions == (1,)
    assert rest_answer(local_fleet, model) == W["good_a"]
    with pytest.raises(urllib.error.HTTPError):  # the canary label is gone again
        rest_answer(local_fleet, model, CANARY_LABEL)


def test_an_instance_killed_mid_rollout_fails_safe_and_a_rerun_completes(local_fleet: RunningFleet) -> None:
    """Design: fail safe. The rollout stops and restores the old stable everywhere it can reach, and in
    models.config, which the killed instance reads when it comes back; re-running the rollout then completes."""
    model = "tiny_killed"
    promote_first(local_fleet, model)
    local_fleet.publish(model, 2, "good_b")
    rollout = local_fleet.rollout(model)
    rollout.load(2)
    rollout.wait_available()
    local_fleet.fleet.stop_instance("serving-1", kill=True)
    try:
        with pytest.raises(RolloutFailed, match=r"label_canary.*serving-1"):
            rollout.label_canary()
        serving = local_fleet.store.serving(model)
        assert serving.stable == 1 and serving.canary is None
        for _ in range(6):  # nginx routes around the dead instance: no client error
            assert rest_answer(local_fleet, model) == W["good_a"]
            assert grpc_answer(local_fleet, model) == W["good_a"]
    finally:
        local_fleet.fleet.start_instance("serving-1")

    restarted = states(local_fleet, model)["serving-1"]
    assert restarted.get(1) == "AVAILABLE" and 2 not in restarted  # came back on the restored config

    local_fleet.rollout(model).run(2)

    assert local_fleet.store.serving(model).stable == 2
    assert all(versions.get(2) == "AVAILABLE" for versions in states(local_fleet, model).values())


def test_rollback_to_an_older_version(local_fleet: RunningFleet) -> None:
    model = "tiny_rollback"
    promote_first(local_fleet, model)
    local_fleet.publish(model, 2, "good_b")
    local_fleet.rollout(model).run(2)

    local_fleet.rollout(model).run(1)  # what `runway fleet rollback` does: a verified rollout of version 1

    assert local_fleet.store.serving(model).stable == 1
    assert rest_answer(local_fleet, model) == W["good_a"]


# -- the approval gate (serving.approval: required): what each answer does to the fleet -----------------------------
# The operator is the DAG's own task; Airflow's runtime is stood in for by the event it resumes the task with (the
# HITL detail's resume payload) and a task instance that keeps XComs. tests/e2e/test_scheduler_rest.py answers it
# through the REST API under a real scheduler.


class _TaskInstance:
    map_index = -1

    def __init__(self) -> None:
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = value


def _canary_awaiting_approval(fleet: RunningFleet, model: str, monkeypatch: pytest.MonkeyPatch) -> object:
    """Version 1 stable, version 2 loaded and verified as canary everywhere; the serving DAG's approve task."""
    promote_first(fleet, model)
    fleet.publish(model, 2, "good_b")
    rollout = fleet.rollout(model)
    rollout.load(2)
    rollout.wait_available()
    rollout.label_canary()
    rollout.verify()
    rollout.close()
    assert rest_answer(fleet, model, CANARY_LABEL) == W["good_b"]
    for name, value in fleet.settings.as_env().items():
        monkeypatch.setenv(name, value)
    config = load_pipeline_config(CONFIGS / "penguins.yaml").with_overrides(
        {"serving.model_name": model, "serving.approval": "required"}
    )
    return build_serving_dag(config=config).task_dict["rollout.approve"]


def _answer(option: str, user: str | None) -> dict[str, object]:
    return {
        "chosen_options": [option],
        "params_input": {},
        "responded_at": datetime.now(UTC),
        "responded_by_user": {"id": user, "name": user} if user else None,
        "timedout": user is None,
    }


@pytest.mark.parametrize(
    ("event", "decision", "decided_by"),
    [
        pytest.param(_answer("Reject", "ops-lead"), "rejected", "ops-lead", id="reject"),
        pytest.param(
            {"error": "The Human-in-the-loop response timeout has passed", "error_type": "timeout"},
            "timed_out",
            "nobody within 24 h (the approval timed out)",
            id="timeout",
        ),
    ],
)
def test_a_rejected_or_unanswered_approval_puts_the_previous_stable_back(
    local_fleet: RunningFleet,
    monkeypatch: pytest.MonkeyPatch,
    event: dict[str, object],
    decision: str,
    decided_by: str,
) -> None:
    model = f"tiny_approval_{decision}"
    approve: Any = _canary_awaiting_approval(local_fleet, model, monkeypatch)
    ti = _TaskInstance()

    with pytest.raises(DownstreamTasksSkipped) as skipped:  # how a task tells Airflow to skip its downstream
        approve.execute_complete({"ti": ti, "task": approve}, event)

    assert set(skipped.value.tasks) == {"rollout.promote", "rollout.rollback_on_failure"}
    serving = local_fleet.store.serving(model)
    assert serving.stable == 1 and serving.canary is None  # the candidate left canary on every instance
    for _ in range(6):
        assert rest_answer(local_fleet, model) == W["good_a"]
        assert grpc_answer(local_fleet, model) == W["good_a"]
    assert ti.xcoms["decision"] == decision and ti.xcoms["decided_by"] == decided_by
    journal = local_fleet.rollout(model).journal()
    assert journal["status"] == "rolled_back" and journal["failed_step"] == "approve"
    assert decided_by in journal["reason"]


def test_an_approved_canary_is_promoted(local_fleet: RunningFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    model = "tiny_approval_approved"
    approve: Any = _canary_awaiting_approval(local_fleet, model, monkeypatch)
    evidence = {"metrics": {"auc": 0.91}, "trusted_metrics": {"auc": 0.9}, "contract": "serving contract kept"}
    body = approval_body(local_fleet.rollout(model), candidate=2, evidence=evidence)
    assert "auc: 0.9100 (baseline 0.9000)" in body and "serving contract kept" in body
    assert body.count("answers as exported") == 6  # what the person reads: 3 instances, REST and gRPC each
    ti = _TaskInstance()

    outcome = approve.execute_complete({"ti": ti, "task": approve}, _answer("Approve", "ops-lead"))

    assert outcome == {"decision": "approved", "decided_by": "ops-lead"}
    assert local_fleet.store.serving(model).stable == 1  # the approval itself moves nothing: promote does
    local_fleet.rollout(model).promote()
    assert rest_answer(local_fleet, model) == W["good_b"] and grpc_answer(local_fleet, model) == W["good_b"]
