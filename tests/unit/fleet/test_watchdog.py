"""The local fleet's watchdog (``fleet.watchdog``) on real processes that start in milliseconds (no model server):
it starts what it supervises, restarts one that exits with a doubling backoff and its exit status recorded, leaves a
process held down on purpose alone until released, and stops everything (and itself) on SIGTERM. The same watchdog
over real model servers and nginx: tests/fleet/test_supervision.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.fleet.spec import connect_address
from pipeline_components.fleet.supervisor import FleetError, Supervisor
from pipeline_components.fleet.watchdog import STATUS_FILE, describe_exit, watchdog_argv
from pipeline_components.processes import pid_alive, stop_pid

# "model_server" in the command line: the fleet only ever signals processes that look like its own.
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)", "model_server"]
CRASHER = [sys.executable, "-c", "import sys; sys.exit(3)", "model_server"]


def poll(what: str, condition: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s: {what}"
        time.sleep(0.05)
    return result


@pytest.fixture
def watchdog(tmp_path: Path) -> Iterator[tuple[Supervisor, subprocess.Popen[bytes]]]:
    fleet_dir = tmp_path / "fleet"
    processes = Supervisor(fleet_dir)
    processes.prepare()
    processes.record_argv("sleeper", SLEEPER)
    processes.record_argv("crasher", CRASHER)
    log = open(processes.log_path("watchdog"), "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen(watchdog_argv(fleet_dir, ["sleeper", "crasher"]), stdout=log, stderr=log)
    try:
        yield processes, process
    finally:
        stop_pid(process.pid)
        process.wait(timeout=30)
        log.close()
        for pid in processes.recorded_pids().values():
            stop_pid(pid, kill=True)


def report(processes: Supervisor) -> dict[str, Any]:
    try:
        return dict(json.loads((processes.pid_dir / STATUS_FILE).read_text())["processes"])
    except (OSError, ValueError, KeyError):
        return {}


def test_a_process_that_exits_is_restarted_with_a_doubling_backoff_and_its_exit_status(
    watchdog: tuple[Supervisor, subprocess.Popen[bytes]],
) -> None:
    processes, _ = watchdog
    poll("the crasher restarted twice", lambda: report(processes).get("crasher", {}).get("restarts", 0) >= 2)
    entry = report(processes)["crasher"]
    assert entry["last_exit"] == "exit status 3", entry
    log = processes.log_path("watchdog").read_text()
    assert "restart 1 in 0.5 s" in log and "restart 2 in 1.0 s" in log, log
    sleeper = report(processes)["sleeper"]
    assert sleeper["restarts"] == 0 and sleeper["state"] == "running" and pid_alive(sleeper["pid"]), sleeper


def test_a_held_process_stays_down_until_released_and_sigterm_stops_everything(
    watchdog: tuple[Supervisor, subprocess.Popen[bytes]],
) -> None:
    processes, process = watchdog
    first = poll("the sleeper started", lambda: processes.recorded_pid("sleeper"))
    processes.hold("sleeper")
    stop_pid(first)
    poll("the watchdog sees it held", lambda: report(processes).get("sleeper", {}).get("state") == "held")
    assert processes.recorded_pid("sleeper") == first  # not restarted

    processes.release("sleeper")
    process.send_signal(signal.SIGHUP)  # what `runway fleet up` sends: start what is down now
    second = poll("restarted once released", lambda: (pid := processes.recorded_pid("sleeper")) != first and pid)
    assert pid_alive(second)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert not pid_alive(second)
    assert {entry["state"] for entry in report(processes).values()} == {"stopped"}


def test_exit_statuses_read_as_an_operator_writes_them() -> None:
    assert describe_exit(3) == "exit status 3"
    assert describe_exit(-signal.SIGKILL) == "killed by signal 9 (SIGKILL)"
    assert describe_exit(None).startswith("exit status unknown")


def test_the_connect_address_of_a_bind_address() -> None:
    # A server bound to every interface (IPv4 or IPv6) is reached through loopback; one bound to an address, on it.
    expected = {"127.0.0.1": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "127.0.0.1", "10.1.2.3": "10.1.2.3"}
    assert {bind: connect_address(bind) for bind in expected} == expected


def test_a_bind_address_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(FleetError, match="not an IP address"):
        connect_address("localhost:8500")
