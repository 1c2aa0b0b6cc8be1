"""What a client on the network can do to the server: where it listens, open connections, slow clients, calls at once.

These check runway's own flags (``--bind_address``, ``--runway_rest_max_connections``) and what this server does
with TF Serving's ``--rest_api_timeout_in_ms`` and ``--grpc_max_threads``; they are skipped for other binaries
(tensorflow_model_server listens on every interface and refuses runway's flags).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from tensorflow_serving.apis import predict_pb2

from tests.conformance.fixtures import MODEL_NAME
from tests.conformance.harness import ServerProcess, wait_for
from tests.conformance.samples import ROWS, predict_request

TIMEOUT_S = 3.0  # --rest_api_timeout_in_ms of the limited server
MAX_CONNECTIONS = 3
GRPC_THREADS = 2
MAX_REQUEST_BYTES = 8 * 1024 * 1024  # twice the default: the flag raises the limit
PREDICT = f"/v1/models/{MODEL_NAME}:predict"
STATUS = f"/v1/models/{MODEL_NAME}"


@pytest.fixture(scope="module")
def limited_server(
    server_bin: str, is_runway: bool, shared_base: Path, outside_address: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server told to listen on every interface, with tight limits; its clients talk to a non-loopback address."""
    if not is_runway:
        pytest.skip("--bind_address and --runway_rest_max_connections are runway's own flags")
    server = ServerProcess(
        server_bin,
        tmp_path_factory.mktemp("limited"),
        [
            f"--model_name={MODEL_NAME}",
            f"--model_base_path={shared_base}",
            "--enable_model_warmup=false",
            "--bind_address=0.0.0.0",
            f"--rest_api_timeout_in_ms={int(TIMEOUT_S * 1000)}",
            f"--runway_rest_max_connections={MAX_CONNECTIONS}",
            f"--grpc_max_threads={GRPC_THREADS}",
            f"--runway_max_request_bytes={MAX_REQUEST_BYTES}",
        ],
        host=outside_address,
    )
    server.start()
    try:
        server.wait_available(MODEL_NAME, versions={2})
        yield server
    finally:
        server.stop()


def _read_until_closed(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed)."""
    received = b""
    try:
        while chunk := connection.recv(1 << 16):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_by_default_the_server_listens_on_loopback_only(
    shared_server: ServerProcess, is_runway: bool, outside_address: str
) -> None:
    if not is_runway:
        pytest.skip("tensorflow_model_server listens on every interface")
    for port in (shared_server.grpc_port, shared_server.rest_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((outside_address, port), timeout=10).close()
    assert shared_server.get(STATUS).status == 200  # through 127.0.0.1


def test_bind_address_flag_listens_on_every_interface(limited_server: ServerProcess) -> None:
    assert limited_server.get(STATUS).status == 200  # limited_server's clients use the non-loopback address
    assert limited_server.grpc_status(MODEL_NAME).model_version_status[0].version == 2


@pytest.mark.parametrize(
    ("opening", "trickled", "answer"),
    [
        pytest.param(f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\n", b"X", b"", id="slow-headers"),
        pytest.param(
            f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
            b" ",
            b"HTTP/1.1 408",
            id="slow-body",
        ),
    ],
)
def test_a_slow_client_is_cut_off_while_others_are_served(
    limited_server: ServerProcess, opening: str, trickled: bytes, answer: bytes
) -> None:
    slow = socket.create_connection((limited_server.host, limited_server.rest_port), timeout=30)
    stop = threading.Event()

    def trickle() -> None:
        # A byte every 200 ms: every read gets data, so only a deadline on the whole request cuts this client off.
        try:
            slow.sendall(opening.encode())
            while not stop.wait(0.2):
                slow.sendall(trickled)
        except OSError:
            pass  # cut off

    started = time.monotonic()
    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        assert limited_server.post(PREDICT, {"instances": ROWS}).status == 200
        served = time.monotonic()
        received = _read_until_closed(slow)
        closed = time.monotonic()
    finally:
        stop.set()
        slow.close()
    assert received.startswith(answer), received[:300]
    if answer:
        assert "did not arrive" in json.loads(received.split(b"\r\n\r\n", 1)[1])["error"]
    assert served < closed, "the other client was served only after the slow one was cut off"
    assert TIMEOUT_S - 0.1 <= closed - started < TIMEOUT_S + 5


def test_connections_beyond_the_cap_are_refused_and_the_server_recovers(limited_server: ServerProcess) -> None:
    address = (limited_server.host, limited_server.rest_port)
    idle = [socket.create_connection(address, timeout=30) for _ in range(MAX_CONNECTIONS)]
    try:
        extra = socket.create_connection(address, timeout=30)
        started = time.monotonic()
        extra.sendall(f"GET {STATUS} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        reply = _read_until_closed(extra)
        refused_in = time.monotonic() - started
        extra.close()
    finally:
        for connection in idle:
            connection.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503"), reply[:300]
    assert "connections open" in json.loads(body)["error"]
    assert refused_in < TIMEOUT_S, "the refusal waited instead of answering at once"
    wait_for(
        lambda: limited_server.get(STATUS).status == 200, 30, "the server to serve again after the idle clients left"
    )


def test_grpc_calls_beyond_max_threads_are_refused_and_the_server_recovers(limited_server: ServerProcess) -> None:
    # A call whose request message never comes holds one of --grpc_max_threads (a raw stream to a unary method).
    channel = grpc.insecure_channel(f"{limited_server.host}:{limited_server.grpc_port}")
    never_sent = channel.stream_unary(
        "/tensorflow.serving.PredictionService/Predict",
        request_serializer=predict_pb2.PredictRequest.SerializeToString,
        response_deserializer=predict_pb2.PredictResponse.FromString,
    )
    release = threading.Event()

    def nothing() -> Iterator[predict_pb2.PredictRequest]:
        release.wait(120)
        yield from ()

    stalled = [never_sent.future(nothing(), timeout=120) for _ in range(GRPC_THREADS)]
    stub = limited_server.prediction_stub()
    refusal: list[grpc.RpcError] = []

    def refused() -> bool:
        try:
            stub.Predict(predict_request(MODEL_NAME), timeout=30)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            refusal.append(error)
            return True
        return False

    try:
        wait_for(refused, 30, "a call beyond --grpc_max_threads to be refused with RESOURCE_EXHAUSTED")
    finally:
        for call in stalled:
            call.cancel()
        release.set()
        channel.close()
    assert refusal[0].code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    def served() -> bool:
        try:
            return stub.Predict(predict_request(MODEL_NAME), timeout=30).model_spec.version.value == 2
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            return False

    wait_for(served, 30, "gRPC calls to be served again after the stalled ones ended")


def test_the_request_size_limit_is_a_flag(limited_server: ServerProcess) -> None:
    over_default = b" " * (5 * 1024 * 1024)  # over the default limit (4 MiB), under this server's
    response = limited_server.request("POST", PREDICT, over_default, headers={"Content-Type": "application/json"})
    assert response.status == 400, response.body  # read and parsed: not JSON
    over_flag = b" " * (MAX_REQUEST_BYTES + 1)
    response = limited_server.request("POST", PREDICT, over_flag, headers={"Content-Type": "application/json"})
    assert response.status == 413, response.body
    assert f"limit of {MAX_REQUEST_BYTES} bytes" in response.json()["error"]
