"""Issue 9's rollout acceptance tests, on a real 3-instance local fleet behind nginx with tiny models.

Each test uses its own model name in the fleet's shared store, so the tests share one fleet (started once per
module, ~30 s) and stay independent. Tiny models compute ``y = w * x + n``: w tells which version answered.
"""

from __future__ import annotations

import json
import urllib.request

import grpc
import pytest

from pipeline_components.fleet import CANARY_LABEL, STABLE_LABEL, protos
from pipeline_components.fleet.instances import Instance
from pipeline_components.fleet.rollout import RolloutFailed
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
