"""The local fleet restarts a model server that dies (issue 18, item 5), on a real 2-instance fleet behind nginx.

One fleet for the module (``runway fleet up``'s code: the watchdog starts nginx and both model servers), serving
version 2 of a tiny model, which a rollout wrote to ``models.config`` after the instances started with an empty one:

- an instance killed with SIGKILL under client load through nginx comes back on its own, serving stable version 2,
  and no client request fails meanwhile (nginx retries the other instance; its access log shows no error at all);
- a rollout that meets an instance being restarted waits for it and completes on both instances;
- with the watchdog itself killed too, ``runway fleet up`` brings the instance back (and says so) instead of
  answering "already running"; ``runway fleet status`` shows the restarts and the watchdog;
- an instance that hangs (SIGSTOP) leaves nginx's rotation, a rollout completes without it, no client request
  fails, and it catches up with the new stable before it serves again (``fleet.readiness``);
- ``runway fleet down`` leaves no process of the fleet, the watchdog included.

Each waits on the event (a new pid, an answer, nginx's access log), never on a sleep.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.cli.commands.fleet import cmd_down, cmd_status
from pipeline_components.client import ServingClient
from pipeline_components.fleet import InstanceAddress
from pipeline_components.fleet.readiness import fenced
from pipeline_components.fleet.restarts import watchdog_report
from pipeline_components.fleet.watchdog import WATCHDOG
from pipeline_components.processes import command_line, pid_alive, wait_for
from pipeline_components.settings import Settings
from tests.fleet.fixtures import RunningFleet, start_fleet
from tests.helpers import check, require_nginx, runway

pytestmark = pytest.mark.runtime

MODEL = "tiny_supervised"
ROW = {"x": 1.0, "n": 0}  # tiny models answer w * x + n: good_a 2.0, good_b 3.0
RESTART_DEADLINE_S = 90.0  # a model server imports TensorFlow before it listens: seconds, more on a loaded machine
PACE_S = 0.02  # between two requests of one client: a steady load that leaves the CPUs to the restarting server


class PacedLoad:
    """One REST and one gRPC client, each a thread sending ``ROW`` through nginx every ``PACE_S``, with the client's
    default retry policy: what a downstream app sees. (``client.load.LoadGenerator`` saturates the CPUs, which
    slows a restart down by a minute on 2 cores.)"""

    def __init__(self, rest_url: str, grpc_target: str) -> None:
        self.urls = {"rest_url": rest_url, "grpc_target": grpc_target}
        self.requests = {"rest": 0, "grpc": 0}
        self.retried = {"rest": 0, "grpc": 0}
        self.failures: list[str] = []
        self.answers: set[float] = set()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(p,), daemon=True) for p in ("rest", "grpc")]

    def _run(self, protocol: str) -> None:
        with ServingClient(**self.urls, model=MODEL, protocol=protocol) as client:  # type: ignore[arg-type]
            while not self._stop.is_set():
                try:
                    answered = client.predict(ROW)
                    self.answers.add(float(answered.predictions[0]))
                    self.retried[protocol] += int(answered.attempts > 1)
                except Exception as error:
                    self.failures.append(f"{protocol}: {type(error).__name__}: {error}")
                self.requests[protocol] += 1
                time.sleep(PACE_S)

    def __enter__(self) -> PacedLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def poll(what: str, condition: Callable[[], Any], *, timeout_s: float = RESTART_DEADLINE_S) -> Any:
    """Poll ``condition`` until it returns something truthy (returned); fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s: {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[RunningFleet]:
    require_nginx()
    home = tmp_path_factory.mktemp("supervised-fleet")
    running = start_fleet(home, tiny_model_dir, instances=2)
    try:
        running.publish(MODEL, 2, "good_b")
        running.rollout(MODEL).run(2)  # models.config was empty when the instances started
        yield running
    finally:
        running.stop()


def instance(fleet: RunningFleet, name: str) -> InstanceAddress:
    state = fleet.fleet.state()
    assert state is not None
    return next(a for a in state.instances if a.name == name)


def answer(address: InstanceAddress) -> float | None:
    """What the instance itself (not nginx) answers for ``stable`` now; None while it does not answer."""
    try:
        with ServingClient(rest_url=address.rest_url, grpc_target=address.grpc_target, model=MODEL) as client:
            return float(client.predict(ROW).predictions[0])
    except Exception:
        return None


def answered_by(line: str) -> str | None:
    """The upstream that answered an nginx access-log line (the last one nginx tried), if any."""
    found = re.search(r"upstream=(\S+(?:, \S+)*) upstream_status=", line)
    return found.group(1).split(", ")[-1] if found else None


def fleet_status(settings: Settings, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``runway fleet status`` prints (its command, in this process: the CLI's start-up costs 3-10 s)."""
    capsys.readouterr()
    cmd_status(argparse.Namespace(json=False), settings)
    return capsys.readouterr().out


def restarted(fleet: RunningFleet, name: str, old_pid: int | None) -> InstanceAddress | None:
    """The instance once ``fleet.json`` names a new, live pid for it."""
    address = instance(fleet, name)
    return address if address.pid != old_pid and pid_alive(address.pid) else None


def test_a_killed_instance_comes_back_serving_stable_and_no_client_request_fails(fleet: RunningFleet) -> None:
    victim = instance(fleet, "serving-0")
    assert victim.pid is not None
    log = fleet.access_log()
    state = fleet.fleet.state()
    assert state is not None
    with PacedLoad(state.rest_url, state.grpc_target) as load:
        log.wait_answered(log.mark(), 20)
        during = log.mark()
        os.kill(victim.pid, signal.SIGKILL)
        back = poll("the watchdog restarts serving-0", lambda: restarted(fleet, "serving-0", victim.pid))
        # It reads models.config as it starts: the stable version the last rollout wrote, not the empty file it
        # started with.
        poll("the restarted serving-0 answers stable version 2 (3.0)", lambda: answer(back) == 3.0)
        mark = log.mark()  # ... and nginx sends it traffic again, REST and gRPC
        log.wait_answered(mark, 1, by=back.rest_url.removeprefix("http://"))
        log.wait_answered(mark, 1, by=back.grpc_target)
    print(f"\nSIGKILL and restart under load: {load.requests} requests, {load.retried} retried by the client")

    assert not load.failures, load.failures[:5]
    assert min(load.requests.values()) >= 20, f"the load did not run: {load.requests}"
    assert load.answers == {3.0}, load.answers
    # nginx answered every REST request itself, retrying the other instance. A gRPC request in flight on the killed
    # instance cannot be (nginx streams gRPC request bodies to the upstream): it gets 502 from nginx, which the
    # client retries; that is all that may show.
    errors = [line for line in log.since(during) if '" 200 ' not in line]
    rest_errors = [line for line in errors if "/v1/models/" in line]
    assert not rest_errors, rest_errors
    assert all(f"upstream={victim.grpc_target} " in line for line in errors), errors
    assert len(errors) <= load.retried["grpc"], (errors, load.retried)

    entry = watchdog_report(fleet.fleet.dir)["processes"]["serving-0"]
    assert entry["restarts"] == 1 and entry["pid"] == back.pid, entry
    assert entry["last_exit"] == "killed by signal 9 (SIGKILL)", entry
    watchdog_log = fleet.fleet.processes.log_path(WATCHDOG).read_text()
    assert re.search(rf"serving-0 \(pid {victim.pid}\) exited: killed by signal 9 \(SIGKILL\)", watchdog_log)


def test_a_rollout_waits_for_an_instance_being_restarted(
    fleet: RunningFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.publish(MODEL, 3, "good_a")
    victim = instance(fleet, "serving-1")
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)

    lines = fleet.rollout(MODEL, restart_wait_s=RESTART_DEADLINE_S).run(3)

    said = capsys.readouterr().out
    assert "serving-1 is being restarted by the fleet's watchdog" in said, said
    serving = fleet.store.serving(MODEL)
    assert serving.stable == 3 and serving.canary is None, lines
    for name in ("serving-0", "serving-1"):
        assert answer(instance(fleet, name)) == 2.0, f"{name} does not serve version 3 as stable"
    assert instance(fleet, "serving-1").pid != victim.pid


def test_fleet_up_brings_back_an_instance_nobody_restarted_and_status_shows_restarts(
    fleet: RunningFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = fleet.settings
    watchdog = fleet.fleet.processes.recorded_pid(WATCHDOG)
    assert pid_alive(watchdog)
    assert watchdog is not None
    os.kill(watchdog, signal.SIGKILL)  # whatever supervised the fleet is gone too ...
    poll("the watchdog is gone", lambda: not pid_alive(watchdog), timeout_s=10)
    victim = instance(fleet, "serving-0")
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)  # ... so nothing restarts this one
    poll("serving-0 is gone", lambda: not pid_alive(victim.pid), timeout_s=10)

    status = fleet_status(settings, capsys)
    assert re.search(r"serving-0 \(pid \d+, DOWN, restarts 1", status), status
    assert "watchdog: NOT running" in status, status

    up = check(runway(settings, "fleet", "up"))
    assert "already running" not in up, up
    assert "the fleet's watchdog was not running: starting it" in up, up
    assert "serving-0 was down: restarting" in up, up
    back = instance(fleet, "serving-0")
    assert f"back: serving-0 (pid {back.pid})" in up, up
    assert answer(back) == 2.0  # stable is version 3 (good_a)

    status = fleet_status(settings, capsys)
    assert "watchdog: running" in status, status
    assert re.search(rf"serving-0 \(pid {back.pid}, up, restarts 2, last exit: exit status unknown", status), status
    assert re.search(r"serving-1 \(pid \d+, up, restarts 1, last exit: killed by signal 9", status), status


def test_a_hung_instance_leaves_the_rotation_a_rollout_goes_on_without_it_and_it_catches_up(
    fleet: RunningFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model server that stops answering without dying (SIGSTOP: what a host cut off looks like to nginx and to
    the rollout) is fenced by the watchdog's readiness probes. A rollout started just after it hung abandons its
    call to it and completes on the other instance; no client request fails; once it answers again it is sent
    models.config, and it serves the new stable before nginx sends it a request."""
    fleet.publish(MODEL, 4, "good_b")  # stable is version 3 (good_a: 2.0); version 4 answers 3.0
    victim = instance(fleet, "serving-0")
    assert victim.pid is not None
    state = fleet.fleet.state()
    assert state is not None
    log = fleet.access_log()
    capsys.readouterr()
    with PacedLoad(state.rest_url, state.grpc_target) as load:
        log.wait_answered(log.mark(), 20)
        os.kill(victim.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            lines = fleet.rollout(MODEL).run(4)  # its first reload to serving-0 hangs until readiness fences it
            took = time.monotonic() - started
            fence = fenced(fleet.fleet.dir).get("serving-0")
            assert fence is not None, "serving-0 was not fenced"
            said = capsys.readouterr().out
            status = fleet_status(fleet.settings, capsys)
            assert re.search(
                r"serving-0 \(pid \d+, up, .*\n    out of rotation since \d\d:\d\d:\d\d: no answer", status
            )
            assert answer(instance(fleet, "serving-1")) == 3.0
            during = log.mark()
            log.wait_answered(during, 20)
            # No request is answered by serving-0 while it is out (one already stuck on it when it hung may still
            # be logged: nginx's per-try timeout answered it from serving-1, "upstream=serving-0, serving-1").
            assert not [line for line in log.since(during) if answered_by(line) == victim.rest_url[len("http://") :]]
        finally:
            os.kill(victim.pid, signal.SIGCONT)
        watchdog_log = fleet.fleet.processes.log_path(WATCHDOG)
        if not wait_for(lambda: "serving-0" not in fenced(fleet.fleet.dir), timeout=RESTART_DEADLINE_S, interval=0.2):
            pytest.fail(f"serving-0 did not catch up; the watchdog's log ends:\n{watchdog_log.read_text()[-3000:]}")
        assert answer(instance(fleet, "serving-0")) == 3.0  # the new stable, though it hung before the rollout
        mark = log.mark()
        log.wait_answered(mark, 1, by=victim.rest_url.removeprefix("http://"))
        log.wait_answered(mark, 1, by=victim.grpc_target)
    print(f"\nhung instance: rollout in {took:.1f} s, {load.requests} requests, {load.retried} retried by the client")

    assert fleet.store.serving(MODEL).stable == 4, lines
    assert not load.failures, load.failures[:5]
    assert load.answers <= {2.0, 3.0} and 3.0 in load.answers, load.answers
    assert str(fence["reason"]).startswith("no answer within"), fence
    assert "serving-0 out of rotation, takes models.config when it answers again" in said, said
    events = watchdog_log.read_text()
    assert "serving-0 out of rotation: 3 readiness probes failed" in events, events[-2000:]
    caught_up = r"serving-0 caught up with models.config \(serving tiny_supervised \[\d+, 4\] \(stable 4\)"
    assert re.search(caught_up, events), events[-2000:]
    assert instance(fleet, "serving-0").pid == victim.pid  # it was never restarted: it caught up


def test_fleet_down_leaves_no_process_watchdog_included(
    fleet: RunningFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = fleet.settings
    state = fleet.fleet.state()
    assert state is not None
    pids = {**fleet.fleet.processes.recorded_pids(), **{a.name: a.pid for a in state.instances}}
    assert WATCHDOG in pids and len(pids) == 4  # watchdog, nginx, two model servers

    capsys.readouterr()
    cmd_down(argparse.Namespace(), settings)  # `runway fleet down`, in this process (the CLI's start-up costs 3-10 s)
    down = capsys.readouterr().out

    assert "watchdog" in down, down
    assert not [name for name, pid in pids.items() if pid_alive(pid)], down
    home = str(settings.home)
    left = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if home in command_line(pid)]
    assert not [pid for pid in left if pid_alive(pid)], [command_line(pid) for pid in left]
    assert fleet.fleet.state() is None
