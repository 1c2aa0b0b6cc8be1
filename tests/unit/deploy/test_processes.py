"""The deployment's watchdog as ``runway deploy`` drives it (``deploy/processes.py``), on a process that starts in
milliseconds and no hosts: ``up`` starts it once (a second ``up`` finds it), it restarts a component that exits with
the environment recorded for it, and ``down`` stops it alone, forgetting its counts. The Airflow components
themselves, restarted on their hosts after the faults: tests/e2e/test_deployment.py."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pipeline_components.deploy.hosts import HostPlan, Hosts
from pipeline_components.deploy.processes import DeploymentProcesses
from pipeline_components.fleet.watchdog import STATUS_FILE
from pipeline_components.processes import pid_alive, stop_pid, wait_for

# "airflow" in its command line, as a component's; it prints the host it was given, then lives.
COMPONENT = [sys.executable, "-c", "import os, time; print('host', os.environ['RUNWAY_DEPLOY_HOST'], flush=True); "
             "time.sleep(120)", "airflow"]  # fmt: skip


def test_up_supervises_once_a_component_is_restarted_with_its_environment_and_down_stops_only_the_watchdog(
    tmp_path: Path,
) -> None:
    root = tmp_path / "deploy"
    said: list[str] = []
    processes = DeploymentProcesses(root, Hosts(HostPlan.for_home(root)), say=said.append)
    env = {**os.environ, "RUNWAY_DEPLOY_HOST": "worker-1"}
    first = processes.records.spawn("airflow-worker-1", COMPONENT, env=env)
    processes.records.record_env("airflow-worker-1", env)
    try:
        watchdog = processes.supervise(["airflow-worker-1"], {})
        assert processes.supervise(["airflow-worker-1"], {}) == watchdog  # `up` twice: one watchdog
        assert any("restarts airflow-worker-1 when they exit" in line for line in said), said
        stop_pid(first, kill=True)
        assert wait_for(lambda: processes.pid("airflow-worker-1") not in (None, first), timeout=20)
        second = processes.pid("airflow-worker-1")
        assert wait_for(
            lambda: processes.log_path("airflow-worker-1").read_text().count("host worker-1") == 2, timeout=20
        )
        status = root / "instances" / STATUS_FILE
        assert wait_for(
            lambda: json.loads(status.read_text())["processes"]["airflow-worker-1"]["restarts"] == 1, timeout=10
        )

        assert processes.stop_watchdog() is True
        assert not pid_alive(watchdog) and pid_alive(second), "down stops the watchdog first, its processes after"
        assert not status.exists()  # the next `up` counts restarts from zero
        assert processes.stop_watchdog() is False
        assert processes.stop(["airflow-worker-1"]) == ["airflow-worker-1"] and not pid_alive(second)
    finally:
        processes.stop_watchdog()
        for pid in processes.records.recorded_pids().values():
            stop_pid(pid, kill=True)
