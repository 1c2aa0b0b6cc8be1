"""Small scripted servers on loopback for the client's tests: real sockets, real HTTP and gRPC, scripted answers.

Each answers from a script (a list of steps, the last one repeated) and records what it received, so a test can
check both the client's retries and what reached the server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc

from pipeline_components import serving_protos as sp


@dataclass
class Step:
    """One scripted answer: an HTTP status (REST) or gRPC code name, a body or prediction, a delay."""

    status: int | str = 200
    body: Any = None
    delay_s: float = 0.0
    close: bool = False  # REST: drop the connection without answering (a reset mid-request)


@dataclass
class Script:
    steps: list[Step]
    received: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, request: Any) -> Step:
        with self.lock:
            self.received.append(request)
            return self.steps[min(len(self.received), len(self.steps)) - 1]


@contextmanager
def rest_server(script: Script) -> Iterator[str]:
    """An HTTP server answering every request from ``script``; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            received = {"method": self.command, "path": self.path, "body": json.loads(body or b"null")}
            step = script.next({**received, "headers": dict(self.headers.items()), "raw": body})
            time.sleep(step.delay_s)
            if step.close:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            payload = json.dumps(step.body if step.body is not None else {"predictions": [[0.5]]}).encode()
            self.send_response(int(step.status))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _answer
        do_POST = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def grpc_server(script: Script) -> Iterator[str]:
    """A gRPC PredictionService whose Predict answers from ``script`` (``body``: the prediction); yields its target."""

    def predict(request: Any, context: grpc.ServicerContext) -> Any:
        step = script.next(request)
        time.sleep(step.delay_s)
        if step.status not in (200, "OK"):
            context.abort(getattr(grpc.StatusCode, str(step.status)), f"scripted {step.status}")
        response = sp.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = request.model_spec.version.value or 7
        response.outputs["probabilities"].CopyFrom(
            sp.make_tensor_proto(step.body if step.body is not None else [[0.5]], dtype="DT_FLOAT")
        )
        return response

    def metadata(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "no metadata in this test server")

    handlers = {
        "Predict": grpc.unary_unary_rpc_method_handler(
            predict,
            request_deserializer=sp.PredictRequest.FromString,
            response_serializer=lambda message: message.SerializeToString(),
        ),
        "GetModelMetadata": grpc.unary_unary_rpc_method_handler(
            metadata,
            request_deserializer=sp.GetModelMetadataRequest.FromString,
            response_serializer=lambda message: message.SerializeToString(),
        ),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", handlers)]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)
