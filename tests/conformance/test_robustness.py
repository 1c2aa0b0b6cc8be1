"""Malformed, oversized and concurrent requests: 4xx for bad ones, and the server keeps serving."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from tests.conformance.fixtures import MODEL_NAME
from tests.conformance.harness import ServerProcess
from tests.conformance.samples import ROWS

PREDICT = f"/v1/models/{MODEL_NAME}:predict"
DEFAULT_LIMIT = 4 * 1024 * 1024  # runway's default --runway_max_request_bytes (gRPC's own default message limit)
OVER_LIMIT = DEFAULT_LIMIT + 1  # not JSON either, so tensorflow_model_server (no REST limit, 2 GiB gRPC) refuses it


def _still_serving(server: ServerProcess) -> None:
    response = server.post(PREDICT, {"instances": ROWS})
    assert response.status == 200, response.body


@pytest.mark.parametrize("chunked", [pytest.param(False, id="content-length"), pytest.param(True, id="chunked")])
def test_oversized_body_is_refused_and_server_keeps_serving(
    shared_server: ServerProcess, is_runway: bool, chunked: bool
) -> None:
    body = b" " * OVER_LIMIT
    # urllib sends an iterable body chunked; bytes with their Content-Length.
    payload: bytes | Iterator[bytes] = iter([body[: 1 << 20], body[1 << 20 :]]) if chunked else body
    headers = {"Content-Type": "application/json"} | ({"Transfer-Encoding": "chunked"} if chunked else {})
    response = shared_server.request("POST", PREDICT, payload, timeout=120, headers=headers)
    if is_runway:
        assert response.status == 413, response.body
        assert response.json() == {"error": f"Request body is larger than the limit of {DEFAULT_LIMIT} bytes"}
    else:
        assert 400 <= response.status < 500
    _still_serving(shared_server)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\xff\xfe\x00garbage", id="not-utf8"),
        pytest.param(b'{"instances": [' * 5000, id="deeply-nested-unclosed"),
        pytest.param(b'{"instances": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]}', id="too-deep"),
        pytest.param(b'{"instances": "Dream"}', id="instances-not-a-list"),
        pytest.param(b'{"signature_name": 7, "instances": []}', id="signature-not-a-string"),
    ],
)
def test_malformed_requests_get_4xx(shared_server: ServerProcess, body: bytes) -> None:
    response = shared_server.request("POST", PREDICT, body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status < 500, response.body
    _still_serving(shared_server)


def test_stalled_client_does_not_block_others(shared_server: ServerProcess) -> None:
    stalled = socket.create_connection(("127.0.0.1", shared_server.rest_port), timeout=30)
    try:
        stalled.sendall(
            f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            '{"instances": ['.encode()
        )
        # The first request is waiting for 985 more bytes; the server must answer others meanwhile.
        _still_serving(shared_server)
    finally:
        stalled.close()


def test_concurrent_requests_all_succeed(shared_server: ServerProcess) -> None:
    barrier = threading.Barrier(8, timeout=60)

    def one(_: int) -> int:
        barrier.wait()
        return shared_server.post(PREDICT, {"instances": ROWS}).status

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(one, range(8))) == [200] * 8


def test_oversized_grpc_message_is_refused_and_server_keeps_serving(
    shared_server: ServerProcess, is_runway: bool
) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    request.inputs["island"].CopyFrom(tf.make_tensor_proto([b"x" * OVER_LIMIT], dtype=tf.string))
    with pytest.raises(grpc.RpcError) as refused:
        shared_server.prediction_stub().Predict(request, timeout=120)
    if is_runway:
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert str(DEFAULT_LIMIT) in (refused.value.details() or "")
    else:
        assert refused.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INVALID_ARGUMENT)
    _still_serving(shared_server)
