"""Starting and talking to a model server binary: ports, readiness, REST and gRPC clients, model copies."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import grpc
import portpicker
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

START_TIMEOUT_S = 180.0
VARIABLES = Path("variables") / "variables.data-00000-of-00001"


def make_base_path(base: Path, source_version: Path, versions: dict[int, str]) -> Path:
    """A model base path whose versions are copies of one exported version folder.

    Args:
        base: the base path to create.
        source_version: a version folder exported by the pipeline.
        versions: version number -> ``"good"`` (a copy) or ``"corrupt"`` (a copy with its variables truncated,
            which no server can load).

    Returns:
        ``base``.
    """
    base.mkdir(parents=True, exist_ok=True)
    for number, kind in versions.items():
        add_version(base, source_version, number, corrupt=kind == "corrupt")
    return base


def add_version(base: Path, source_version: Path, number: int, *, corrupt: bool = False) -> Path:
    """Copy a version in atomically (copy under a non-numeric name, then rename, as a pusher should)."""
    staging = base / f".staging-{number}"
    shutil.copytree(source_version, staging)
    if corrupt:
        (staging / VARIABLES).write_bytes(b"")
    target = base / str(number)
    staging.rename(target)
    return target


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.25) -> None:
    """Poll ``condition`` until it holds, or fail after ``timeout_s`` saying what did not happen."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


class Response:
    """An HTTP response: status, raw body, and the body as JSON when it is JSON."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    def json(self) -> Any:
        return json.loads(self.body)


class ServerProcess:
    """One server process on free ports, with its log in a file.

    Args:
        binary: the server binary.
        folder: where its log goes.
        args: flags besides ``--port`` and ``--rest_api_port``.
        host: the address the clients below talk to (loopback unless the server is told to listen elsewhere).
    """

    def __init__(self, binary: str, folder: Path, args: list[str], host: str = "127.0.0.1") -> None:
        self.binary = binary
        self.args = args
        self.host = host
        self.log_path = folder / f"server-{time.monotonic_ns()}.log"
        self.grpc_port = portpicker.pick_unused_port()
        self.rest_port = portpicker.pick_unused_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None

    @property
    def rest(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    def start(self) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [self.binary, f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_available(self, model: str, versions: set[int], timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until every version in ``versions`` of ``model`` is AVAILABLE (REST status)."""

        def ready() -> bool:
            if not self.alive():
                raise AssertionError(
                    f"server exited with {self.process.returncode if self.process else None}:\n{self.log()[-4000:]}"
                )
            try:
                response = self.get(f"/v1/models/{model}", timeout=5)
            except OSError:
                return False
            if response.status != 200:
                return False
            states = {int(v["version"]): v["state"] for v in response.json()["model_version_status"]}
            return all(states.get(v) == "AVAILABLE" for v in versions)

        wait_for(ready, timeout_s, f"{model} versions {sorted(versions)} to be AVAILABLE")

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    # --- REST --------------------------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        timeout: float = 30,
        headers: dict[str, str] | None = None,
    ) -> Response:
        request = urllib.request.Request(self.rest + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return Response(reply.status, reply.read(), dict(reply.headers))
        except urllib.error.HTTPError as error:
            return Response(error.code, error.read(), dict(error.headers))

    def get(self, path: str, timeout: float = 30) -> Response:
        return self.request("GET", path, timeout=timeout)

    def post(self, path: str, document: Any, timeout: float = 30) -> Response:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        return self.request("POST", path, body, timeout=timeout, headers={"Content-Type": "application/json"})

    def status(self, model: str) -> dict[int, dict[str, Any]]:
        response = self.get(f"/v1/models/{model}")
        assert response.status == 200, response.body
        return {int(v["version"]): v for v in response.json()["model_version_status"]}

    # --- gRPC --------------------------------------------------------------------------------------------------------

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(f"{self.host}:{self.grpc_port}")
        return self._channel

    def prediction_stub(self) -> prediction_service_pb2_grpc.PredictionServiceStub:
        return prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def model_stub(self) -> model_service_pb2_grpc.ModelServiceStub:
        return model_service_pb2_grpc.ModelServiceStub(self.channel)

    def grpc_status(self, model: str) -> get_model_status_pb2.GetModelStatusResponse:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = model
        return self.model_stub().GetModelStatus(request, timeout=30)
