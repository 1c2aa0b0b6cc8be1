"""Readiness of the local fleet's instances (``fleet.readiness``): probes, fencing, and how a rollout step treats
an instance fenced while it ran. The whole loop on a real fleet is in tests/fleet/test_supervision.py."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_components.errors import RunwayError
from pipeline_components.fleet import FleetState, InstanceAddress, write_fleet_state
from pipeline_components.fleet.readiness import READINESS_FILE, Readiness, ReadinessPolicy, Rotation, fenced, probe


class NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[InstanceAddress]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    yield InstanceAddress(
        name="serving-0", rest_url=f"http://127.0.0.1:{port}", grpc_target=f"127.0.0.1:{port}", store_path="/models"
    )
    server.shutdown()


@pytest.fixture
def silent() -> Iterator[InstanceAddress]:
    """A port that accepts connections and never answers: a hung server (its kernel still accepts)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    yield InstanceAddress(
        name="serving-1", rest_url=f"http://127.0.0.1:{port}", grpc_target=f"127.0.0.1:{port}", store_path="/models"
    )
    listener.close()


def test_a_probe_counts_any_http_answer_and_names_what_went_wrong(
    answering: InstanceAddress, silent: InstanceAddress
) -> None:
    assert probe(answering, timeout_s=2.0) is None  # 404 for the probe's model: the server is there
    problem = probe(silent, timeout_s=0.3)
    assert problem is not None and problem.startswith("no answer within 0.3 s"), problem


def test_the_second_failed_probe_fences_and_the_rest_stays_in(
    tmp_path: Path, answering: InstanceAddress, silent: InstanceAddress
) -> None:
    fleet_dir = tmp_path / "fleet"
    (fleet_dir / "instances").mkdir(parents=True)
    conf = fleet_dir / "nginx" / "nginx.conf"
    conf.parent.mkdir()
    conf.write_text(
        "".join(
            f"        server {target} max_fails=1 fail_timeout=5s;\n"
            for a in (answering, silent)
            for target in (a.rest_url.removeprefix("http://"), a.grpc_target)
        )
    )
    state = FleetState(rest_url="", grpc_target="", store=str(tmp_path / "store"), model_config_file="",
                       instances=[answering, silent])  # fmt: skip
    write_fleet_state(tmp_path, state)
    said: list[str] = []
    readiness = Readiness(
        fleet_dir, running=lambda name: 42, say=said.append, policy=ReadinessPolicy(timeout_s=0.3, failures=2)
    )

    readiness.answered["serving-1"] = 42  # it answered once since it started (else it is starting, not hung)
    readiness.tick()
    assert fenced(fleet_dir) == {}  # one failure is not enough
    readiness.tick()

    out = fenced(fleet_dir)
    assert set(out) == {"serving-1"} and out["serving-1"]["reason"].startswith("no answer"), out
    assert f"server {silent.grpc_target} max_fails=1 fail_timeout=5s down;" in conf.read_text()
    assert f"server {answering.grpc_target} max_fails=1 fail_timeout=5s;" in conf.read_text()
    assert any("serving-1 out of rotation: 2 readiness probes failed" in line for line in said), said
    assert json.loads((fleet_dir / "instances" / READINESS_FILE).read_text())["fenced"] == out


def test_an_instance_not_running_or_still_starting_is_the_restarts_business(
    tmp_path: Path, silent: InstanceAddress
) -> None:
    fleet_dir = tmp_path / "fleet"
    (fleet_dir / "instances").mkdir(parents=True)
    write_fleet_state(tmp_path, FleetState(rest_url="", grpc_target="", store="", model_config_file="",
                                           instances=[silent]))  # fmt: skip
    for pid in (None, 42):  # not running; running but it never answered since it started
        readiness = Readiness(
            fleet_dir, running=lambda name, pid=pid: pid, say=print, policy=ReadinessPolicy(timeout_s=0.3)
        )
        for _ in range(3):
            readiness.tick()
        assert fenced(fleet_dir) == {}


def _fence(fleet_dir: Path, name: str) -> None:
    (fleet_dir / "instances").mkdir(parents=True, exist_ok=True)
    (fleet_dir / "instances" / READINESS_FILE).write_text(json.dumps({"fenced": {name: {"reason": "test"}}}))


def test_a_step_that_failed_on_an_instance_fenced_meanwhile_runs_again_and_other_failures_stand(
    tmp_path: Path,
) -> None:
    fleet_dir = tmp_path / "fleet"
    rotation = Rotation(fleet_dir, fence_wait_s=1.0)
    tries: list[set[str]] = []
    said: list[str] = []

    def step() -> str:
        tries.append(rotation.out())
        if len(tries) == 1:
            _fence(fleet_dir, "serving-1")  # what the watchdog does while the step waits on it
            raise RunwayError("serving-1: HandleReloadConfigRequest failed: DEADLINE_EXCEEDED")
        return "done"

    assert rotation.without_fenced("load", step, say=said.append) == "done"
    assert tries == [set(), {"serving-1"}]
    assert said == ["load: serving-1 left the rotation (serving-1: HandleReloadConfigRequest failed: "
                    "DEADLINE_EXCEEDED); the step runs again without it"]  # fmt: skip

    def wrong_answer() -> str:
        raise RunwayError("verification failed: serving-0 answered 2.0, the export 3.0")

    with pytest.raises(RunwayError, match="verification failed"):  # nothing new fenced: the error stands
        rotation.without_fenced("verify", wrong_answer, say=said.append)


def test_without_a_local_fleet_every_instance_is_in_rotation(tmp_path: Path) -> None:
    _fence(tmp_path / "fleet", "serving-1")
    assert Rotation(None).out() == set()
    assert Rotation(tmp_path / "fleet").out() == {"serving-1"}
