"""The load balancer of a real local fleet (nginx, 3 model servers, tiny models) publishes TF Serving's public API
only, and the model servers listen on loopback only.

Before issue 15, one unauthenticated ``ModelService/HandleReloadConfigRequest`` sent through nginx's gRPC port
unloaded every version on the instance it reached, and half the clients' requests then failed. These tests send
that request, and the public ones, with the vendored TF Serving stubs (``pipeline_components.serving_protos``), as
any gRPC client would.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import grpc
import pytest

from pipeline_components import serving_protos as sp
from pipeline_components.fleet import STABLE_LABEL
from pipeline_components.fleet.instances import Instance
from tests.fleet.fixtures import RunningFleet

pytestmark = pytest.mark.runtime

MODEL = "tiny_load_balancer"
ROW = {"x": 1.0, "n": 0}  # version 1 (good_a, w=2) answers y = 2


@pytest.fixture(scope="module")
def served(local_fleet: RunningFleet) -> RunningFleet:
    if local_fleet.store.serving(MODEL).stable is None:
        local_fleet.publish(MODEL, 1, "good_a")
        local_fleet.rollout(MODEL).run(1)
    return local_fleet


def every_instance_serves_version_1(fleet: RunningFleet) -> None:
    for address in (fleet.fleet.state() or fleet.state).instances:
        instance = Instance(address)
        try:
            assert {v: s.state for v, s in instance.model_status(MODEL).items()} == {1: "AVAILABLE"}, address.name
            request = sp.predict_request(
                model=MODEL, columns={"x": [1.0], "n": [0]}, dtypes={"x": "DT_FLOAT", "n": "DT_INT64"}, version=1
            )
            outputs, _ = instance.predict_grpc(request, timeout_s=10)
            assert outputs["y"] == [2.0], address.name
        finally:
            instance.close()


def test_a_reload_through_the_load_balancer_is_refused_and_every_version_stays_loaded(served: RunningFleet) -> None:
    state = served.fleet.state() or served.state
    request = sp.message("tensorflow.serving.ReloadConfigRequest")()
    request.config.model_config_list.SetInParent()  # an empty model list: it would unload every model
    with grpc.insecure_channel(state.grpc_target) as channel:
        stub = sp.ModelServiceStub(channel)
        for _ in range(2 * len(state.instances)):  # round robin: every instance would have been reached
            with pytest.raises(grpc.RpcError) as refused:
                stub.HandleReloadConfigRequest(request, timeout=10)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, refused.value.details()
            assert "load balancer" in (refused.value.details() or "")

    every_instance_serves_version_1(served)


def test_predict_status_and_metadata_pass_through_the_load_balancer(served: RunningFleet) -> None:
    state = served.fleet.state() or served.state
    with grpc.insecure_channel(state.grpc_target) as channel:
        prediction = sp.PredictionServiceStub(channel)
        request = sp.predict_request(
            model=MODEL, columns={"x": [1.0], "n": [0]}, dtypes={"x": "DT_FLOAT", "n": "DT_INT64"}, label=STABLE_LABEL
        )
        answer = prediction.Predict(request, timeout=10)
        assert sp.tensor_to_list(answer.outputs["y"]) == [2.0] and answer.model_spec.version.value == 1

        status_request = sp.message("tensorflow.serving.GetModelStatusRequest")()
        status_request.model_spec.name = MODEL
        status = sp.ModelServiceStub(channel).GetModelStatus(status_request, timeout=10)
        assert [(s.version, s.state) for s in status.model_version_status] == [(1, 30)]  # AVAILABLE

        metadata_request = sp.message("tensorflow.serving.GetModelMetadataRequest")()
        metadata_request.model_spec.name = MODEL
        metadata_request.metadata_field.append("signature_def")
        metadata = prediction.GetModelMetadata(metadata_request, timeout=10)
        assert metadata.model_spec.version.value == 1 and "signature_def" in metadata.metadata

        # The tiny model has no classification signature: the model server itself says so, so the call passed.
        classify = sp.classification_request(model=MODEL, rows=[ROW], signature="serving_default")
        with pytest.raises(grpc.RpcError) as answered:
            prediction.Classify(classify, timeout=10)
        assert answered.value.code() != grpc.StatusCode.PERMISSION_DENIED, answered.value.details()


def test_rest_publishes_the_public_api_only(served: RunningFleet) -> None:
    state = served.fleet.state() or served.state
    with urllib.request.urlopen(f"{state.rest_url}/v1/models/{MODEL}", timeout=10) as response:
        assert json.loads(response.read())["model_version_status"][0]["state"] == "AVAILABLE"
    body = json.dumps({"instances": [ROW]}).encode()
    predict = urllib.request.Request(f"{state.rest_url}/v1/models/{MODEL}/labels/{STABLE_LABEL}:predict", data=body)
    with urllib.request.urlopen(predict, timeout=10) as response:
        assert json.loads(response.read())["predictions"] == [2.0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(f"{state.rest_url}/v1/models/{MODEL}", data=body), timeout=10)
    assert refused.value.code == 403 and "load balancer" in json.loads(refused.value.read())["error"]


def outside_address() -> str | None:
    """An address of this machine other than loopback (None when it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routing only, nothing is sent
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def test_model_servers_listen_on_loopback_only(served: RunningFleet) -> None:
    state = served.fleet.state() or served.state
    for address in state.instances:
        assert "--bind_address=127.0.0.1" in served.fleet.processes.recorded_argv(address.name)
    outside = outside_address()
    if outside is None:
        pytest.skip("this machine has no address besides loopback to try the instances' ports from")
    for address in state.instances:
        for port in (int(address.grpc_target.rsplit(":", 1)[1]), int(address.rest_url.rsplit(":", 1)[1])):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                assert sock.connect_ex((outside, port)) != 0, f"{address.name} answers on {outside}:{port}"
