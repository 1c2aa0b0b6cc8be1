"""The local fleet's watchdog (``fleet.watchdog``) on real processes that start in milliseconds (no model server):
it starts what it supervises, restarts one that exits with a doubling backoff and its exit status recorded, leaves a
process held down on purpose alone until released, and stops everything (and itself) on SIGTERM. The same watchdog
over real model servers and nginx: tests/fleet/test_supervision.py."""

from __future__ import annotations

import json
import os
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


# A process that prints its environment's RUNWAY_TEST_HOST into its log, then lives ("airflow" in its command line:
# a deployment's Airflow component, as the watchdog recognises one).
AIRFLOW_LIKE = [sys.executable, "-c", "import os, time; print(os.environ['RUNWAY_TEST_HOST'], flush=True); "
                "time.sleep(120)", "airflow"]  # fmt: skip


def test_over_a_deployments_processes_it_restarts_with_the_recorded_environment_and_sigterm_leaves_them(
    tmp_path: Path,
) -> None:
    """``--processes`` (``runway deploy``'s Airflow components): no fleet.json to follow, each restart with the
    environment recorded for that process, a process someone else started meanwhile adopted rather than started
    twice, and SIGTERM stops the watchdog only (``deploy down`` stops the processes, in order)."""
    processes = Supervisor(tmp_path / "deploy")
    started = processes.spawn("scheduler", AIRFLOW_LIKE, env={**os.environ, "RUNWAY_TEST_HOST": "control"})
    processes.record_env("scheduler", {**os.environ, "RUNWAY_TEST_HOST": "control"})
    assert (processes.pid_dir / "scheduler.env").stat().st_mode & 0o777 == 0o600
    log = open(processes.log_path("watchdog"), "ab")  # noqa: SIM115 - closed below
    watchdog = subprocess.Popen(watchdog_argv(tmp_path / "deploy", ["scheduler"], fleet=False), stdout=log, stderr=log)
    try:
        poll("the running scheduler adopted", lambda: report(processes).get("scheduler", {}).get("pid") == started)
        os.kill(started, signal.SIGKILL)
        restarted = poll("the scheduler restarted", lambda: (p := processes.recorded_pid("scheduler")) != started and p)
        poll("the restart counted", lambda: report(processes)["scheduler"]["restarts"] == 1)
        poll("its log shows the recorded environment", lambda: processes.log_path("scheduler").read_text().count(
            "control") == 2)  # fmt: skip
        # Started by someone else (`deploy up`) while the watchdog waits out a backoff: adopted, not started twice.
        stop_pid(restarted, kill=True)
        with processes.locked():
            poll("the exit seen", lambda: report(processes)["scheduler"]["state"] == "backoff", timeout_s=5)
            other = processes.spawn("scheduler", AIRFLOW_LIKE, env={**os.environ, "RUNWAY_TEST_HOST": "control"})
        poll("adopted", lambda: report(processes)["scheduler"]["pid"] == other and "adopted" in
             processes.log_path("watchdog").read_text().rsplit("scheduler (pid", 1)[-1])  # fmt: skip
        time.sleep(1.0)
        assert processes.recorded_pid("scheduler") == other and pid_alive(other)
        watchdog.send_signal(signal.SIGTERM)
        assert watchdog.wait(timeout=15) == 0
        assert pid_alive(other), "SIGTERM stopped a process of the deployment: deploy down stops them in order"
        assert not (tmp_path / "fleet.json").exists() and not (processes.pid_dir / "readiness.json").exists()
    finally:
        stop_pid(watchdog.pid)
        log.close()
        for pid in processes.recorded_pids().values():
            stop_pid(pid, kill=True)
