"""ServingClient against scripted loopback servers: what is retried, what is not, timeouts, typed errors, routing.

The servers are real (sockets, HTTP/1.1, gRPC) and answer from a script, so each test states exactly what the
server did and checks both the client's outcome and what reached the server (tests/unit/client/servers.py).
The same behaviours against the real model server: tests/fleet/test_client_on_a_model_server.py.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_components.client import NO_RETRY, RetryPolicy, ServingClient
from pipeline_components.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    ServingClientError,
    ServingTimeoutError,
    ServingUnavailableError,
)
from tests.unit.client.servers import Script, Step, grpc_server, rest_server

ROW = {"distance": 1617.0, "carrier": "B6"}
FAST = RetryPolicy(attempts=4, initial_backoff_s=0.01, max_backoff_s=0.02)


def rest_client(url: str, **kwargs: object) -> ServingClient:
    return ServingClient(rest_url=url, grpc_target=None, model="flights_delay", retry=FAST, **kwargs)  # type: ignore[arg-type]


def grpc_client(target: str, **kwargs: object) -> ServingClient:
    options = {"protocol": "grpc", "retry": FAST, **kwargs}
    return ServingClient(rest_url=None, grpc_target=target, model="flights_delay", **options)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("status", [502, 503])
def test_rest_retries_502_and_503_then_succeeds(status: int) -> None:
    script = Script([Step(status, {"error": "upstream restarting"}), Step(status), Step(200, {"predictions": [[0.3]]})])
    with rest_server(script) as url, rest_client(url) as client:
        answer = client.predict(ROW)
    assert answer.predictions == [[0.3]]
    assert answer.attempts == 3
    assert len(script.received) == 3


def test_rest_retries_a_connection_closed_mid_request() -> None:
    script = Script([Step(close=True), Step(200, {"predictions": [[0.4]]})])
    with rest_server(script) as url, rest_client(url) as client:
        answer = client.predict(ROW)
    assert (answer.predictions, answer.attempts) == ([[0.4]], 2)


@pytest.mark.parametrize(
    ("status", "error_type", "code"),
    [
        pytest.param(400, InvalidRequestError, "INVALID_ARGUMENT", id="400"),
        pytest.param(404, ModelNotFoundError, "NOT_FOUND", id="404"),
        pytest.param(500, ServingClientError, "INTERNAL", id="500"),
        pytest.param(504, ServingTimeoutError, "DEADLINE_EXCEEDED", id="504"),
    ],
)
def test_rest_does_not_retry_errors_that_would_fail_again(status: int, error_type: type, code: str) -> None:
    script = Script([Step(status, {"error": "Servable not found for request: Specific(flights_delay, 99)"})])
    with rest_server(script) as url, rest_client(url) as client, pytest.raises(error_type) as raised:
        client.predict(ROW, version=99)
    assert type(raised.value) is error_type
    assert raised.value.code == code and raised.value.http_status == status
    assert raised.value.attempts == 1 and len(script.received) == 1
    assert "Servable not found" in str(raised.value)  # the server's own message reaches the caller


def test_rest_gives_up_after_the_policy_attempts_with_an_unavailable_error() -> None:
    script = Script([Step(503, {"error": "no healthy upstream"})])
    with rest_server(script) as url, rest_client(url) as client, pytest.raises(ServingUnavailableError) as raised:
        client.predict(ROW)
    assert raised.value.attempts == FAST.attempts == len(script.received)
    assert "after 4 attempt(s)" in str(raised.value)


def test_rest_connection_refused_is_unavailable_after_retries() -> None:
    client = rest_client(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ServingUnavailableError, match="ConnectionRefusedError") as raised:
        client.predict(ROW)
    assert raised.value.attempts == FAST.attempts


def test_rest_timeout_is_typed_and_not_retried() -> None:
    script = Script([Step(200, delay_s=1.0)])
    with (
        rest_server(script) as url,
        rest_client(url, timeout_s=0.2) as client,
        pytest.raises(ServingTimeoutError, match=r"no answer within 0\.2 s") as raised,
    ):
        client.predict(ROW)
    assert raised.value.attempts == 1 and len(script.received) == 1


def test_rest_routes_by_label_by_default_and_by_version_when_asked() -> None:
    script = Script([Step(200)])
    with rest_server(script) as url, rest_client(url) as client:
        client.predict(ROW)
        client.predict([ROW, ROW], label="canary")
        client.predict(ROW, version=1795299581)
        client.predict_examples(ROW, version=3)
    paths = [item["path"] for item in script.received if item["method"] == "POST"]
    assert paths == [
        "/v1/models/flights_delay/labels/stable:predict",
        "/v1/models/flights_delay/labels/canary:predict",
        "/v1/models/flights_delay/versions/1795299581:predict",
        "/v1/models/flights_delay/versions/3:predict",
    ]
    assert script.received[1]["body"]["instances"] == [ROW, ROW]
    assert script.received[0]["body"]["signature_name"] == "serving_default"


def test_label_and_version_together_are_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="not both"):
        rest_client("http://127.0.0.1:1").predict(ROW, label="stable", version=1)


@pytest.mark.parametrize("code", ["UNAVAILABLE"])
def test_grpc_retries_unavailable_then_succeeds(code: str) -> None:
    script = Script([Step(code), Step(code), Step("OK", [[0.25]])])
    with grpc_server(script) as target, grpc_client(target) as client:
        answer = client.predict(ROW)
    assert answer.predictions == [[0.25]]
    assert answer.attempts == 3 and len(script.received) == 3
    assert answer.version == 7  # the version the server says answered


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        pytest.param("INVALID_ARGUMENT", InvalidRequestError, id="invalid-argument"),
        pytest.param("FAILED_PRECONDITION", InvalidRequestError, id="failed-precondition"),
        pytest.param("NOT_FOUND", ModelNotFoundError, id="not-found"),
        pytest.param("INTERNAL", ServingClientError, id="internal"),
        pytest.param("RESOURCE_EXHAUSTED", ServingClientError, id="resource-exhausted"),
    ],
)
def test_grpc_does_not_retry_errors_that_would_fail_again(code: str, error_type: type) -> None:
    script = Script([Step(code)])
    with grpc_server(script) as target, grpc_client(target) as client, pytest.raises(error_type) as raised:
        client.predict(ROW)
    assert type(raised.value) is error_type and raised.value.code == code
    assert raised.value.attempts == 1 and len(script.received) == 1


def test_grpc_deadline_is_a_timeout_error_and_not_retried() -> None:
    script = Script([Step("OK", delay_s=1.0)])
    with (
        grpc_server(script) as target,
        grpc_client(target, timeout_s=0.2) as client,
        pytest.raises(ServingTimeoutError) as raised,
    ):
        client.predict(ROW)
    assert raised.value.code == "DEADLINE_EXCEEDED" and raised.value.attempts == 1


def test_grpc_nothing_listening_is_unavailable_after_retries() -> None:
    with pytest.raises(ServingUnavailableError) as raised:
        grpc_client(f"127.0.0.1:{free_port()}").predict(ROW)
    assert raised.value.attempts == FAST.attempts


def test_grpc_routes_by_label_or_version_and_sends_typed_tensors() -> None:
    script = Script([Step("OK", [[0.1], [0.2]])])
    with grpc_server(script) as target, grpc_client(target) as client:
        client.predict([ROW, {"distance": 200.0, "carrier": "UA"}])
        client.predict(ROW, version=42)
    by_label, by_version = script.received
    assert by_label.model_spec.version_label == "stable" and by_label.model_spec.signature_name == "serving_default"
    assert by_version.model_spec.version.value == 42 and not by_version.model_spec.version_label
    assert list(by_label.inputs["distance"].float_val) == [1617.0, 200.0]
    assert list(by_label.inputs["carrier"].string_val) == [b"B6", b"UA"]


def test_no_retry_policy_surfaces_the_first_transient_failure() -> None:
    script = Script([Step(503), Step(200)])
    with rest_server(script) as url:
        client = ServingClient(rest_url=url, grpc_target=None, retry=NO_RETRY)
        with pytest.raises(ServingUnavailableError):
            client.predict(ROW)
    assert len(script.received) == 1


def test_from_fleet_reads_the_load_balancer_that_the_fleet_describes(tmp_path: Path) -> None:
    from pipeline_components.fleet import FleetState, write_fleet_state

    state = FleetState(
        rest_url="http://127.0.0.1:28501",
        grpc_target="127.0.0.1:28500",
        store=str(tmp_path / "models"),
        model_config_file=str(tmp_path / "models" / "models.config"),
        instances=[],
    )
    write_fleet_state(tmp_path, state)  # the fleet's own writer: the file the client reads is the fleet's contract
    client = ServingClient.from_fleet(tmp_path, model="tiny")
    assert (client.rest_url, client.grpc_target, client.model) == (state.rest_url, state.grpc_target, "tiny")


def test_from_fleet_without_a_fleet_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(ServingUnavailableError, match="runway fleet up"):
        ServingClient.from_fleet(tmp_path)


def test_the_client_imports_nothing_of_the_fleet(tmp_path: Path) -> None:
    """The fleet uses the client (notifications, assets); the client must not import the fleet back."""
    code = (
        "import sys; from pipeline_components.client import ServingClient, notify_stable\n"
        "from pipeline_components.client import load, notify, results, retries, rest_transport, grpc_transport\n"
        "try:\n    ServingClient.from_fleet(sys.argv[1])\nexcept Exception:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('pipeline_components.fleet')))"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
