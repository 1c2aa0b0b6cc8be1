"""ServingClient against a real model server (runway's, or ``RUNWAY_MODEL_SERVER_BIN``) that the test stops and
restarts: routing by label and version, real error answers, retries across a restart.

Tiny models (tests/fleet/tiny_models.py) answer ``y = w * x + n``: version 1 has w=2, version 2 has w=3, so the
answer says which version served. The same client behaviours against scripted servers: tests/unit/client/.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_components.client import NO_RETRY, RetryPolicy, ServingClient
from pipeline_components.errors import InvalidRequestError, ModelNotFoundError, ServingUnavailableError
from pipeline_components.settings import CHECKOUT, Settings
from tests.fleet.fixtures import free_ports

pytestmark = pytest.mark.runtime

MODEL = "tiny"
ROW = {"x": 1.0, "n": 0}
PATIENT = RetryPolicy(attempts=200, initial_backoff_s=0.1, max_backoff_s=0.5)  # ~90 s: a cold server start


class Server:
    """One model server process with a models.config: stable -> 1, canary -> 2."""

    def __init__(self, base: Path, models: Path) -> None:
        store = base / "store" / MODEL
        for version, kind in ((1, "good_a"), (2, "good_b")):
            if not (store / str(version)).exists():
                shutil.copytree(models / kind, store / str(version))
        self.config = base / "models.config"
        self.config.write_text(
            "model_config_list { config { "
            f'name: "{MODEL}" base_path: "{store}" model_platform: "tensorflow" '
            "model_version_policy { specific { versions: 1 versions: 2 } } "
            'version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 } } }\n'
        )
        self.grpc_port, self.rest_port = free_ports(2)
        self.log = base / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def argv(self) -> list[str]:
        binary = os.environ.get("RUNWAY_MODEL_SERVER_BIN") or str(CHECKOUT / "scripts" / "runway-model-server")
        return [
            binary,
            f"--port={self.grpc_port}",
            f"--rest_api_port={self.rest_port}",
            f"--model_config_file={self.config}",
            "--allow_version_labels_for_unavailable_models",
        ]

    def start(self) -> None:
        env = {**os.environ, "RUNWAY_RUNTIME_PYTHON": str(Settings.from_env().runtime_python)}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=env)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def client(self, **kwargs: object) -> ServingClient:
        options = {"model": MODEL, "retry": PATIENT, **kwargs}
        return ServingClient(
            rest_url=f"http://127.0.0.1:{self.rest_port}",
            grpc_target=f"127.0.0.1:{self.grpc_port}",
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("client-server"), tiny_model_dir)
    running.start()
    try:
        with running.client() as client:
            client.predict(ROW)  # patient: returns once the server answers
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_label_and_version_reach_the_right_version(server: Server, protocol: str) -> None:
    with server.client(protocol=protocol) as client:
        stable = client.predict(ROW)
        canary = client.predict([ROW, {"x": 2.0, "n": 1}], label="canary")
        pinned = client.predict(ROW, version=1)
        assert stable.predictions == [2.0] and stable.label == "stable"
        assert canary.predictions == [3.0, 7.0]
        assert pinned.predictions == [2.0] and pinned.version == 1
        if protocol == "grpc":
            assert (stable.version, canary.version) == (1, 2)  # gRPC says which version answered
        else:
            assert client.predict(ROW, label="canary", resolve_version=True).version == 2
        assert client.resolve_version(label="canary") == 2


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_real_error_answers_are_typed_and_not_retried(server: Server, protocol: str) -> None:
    with server.client(protocol=protocol) as client:
        with pytest.raises(ModelNotFoundError) as not_found:
            client.predict(ROW, version=99)
        with pytest.raises(InvalidRequestError) as bad_label:
            client.predict(ROW, label="nightly")
        with pytest.raises(InvalidRequestError) as bad_feature:
            client.predict({"x": 1.0, "n": 0, "unknown_feature": 1.0})
    assert not_found.value.attempts == bad_label.value.attempts == bad_feature.value.attempts == 1
    assert "99" in str(not_found.value) and "nightly" in str(bad_label.value)


def test_retries_carry_a_request_across_a_server_restart(server: Server) -> None:
    server.stop()
    try:
        for protocol in ("rest", "grpc"):
            with (
                server.client(protocol=protocol, retry=NO_RETRY) as impatient,
                pytest.raises(ServingUnavailableError) as down,
            ):
                impatient.predict(ROW)
            assert down.value.attempts == 1
        server.start()
        started = time.monotonic()
        with server.client(protocol="rest") as client:
            answer = client.predict(ROW)  # sent while the server is still starting: retried until it answers
        assert answer.predictions == [2.0]
        assert answer.attempts > 1, "the request should have needed retries while the server started"
        with server.client(protocol="grpc") as client:
            assert client.predict(ROW).predictions == [2.0]
        print(f"answered {time.monotonic() - started:.1f} s after the restart, {answer.attempts} attempts")
    finally:
        if server.process is None:
            server.start()
