"""The local cluster supervisor on plain processes (no TensorFlow): a member that dies fails the run with its log,
every other member is stopped with its process group, and nothing outlives the supervisor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline_components.errors import TrainingWorkerError
from pipeline_components.ports import free_ports
from pipeline_components.processes import pid_alive, wait_for
from pipeline_components.training.cluster import LocalCluster, cluster_spec, tf_config

PY = sys.executable


def start_supervisor(tmp_path: Path, member: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    """A stand-in Trainer: a process whose ``LocalCluster`` launched ``member``; it and the member's pid."""
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from pipeline_components.training.cluster import LocalCluster
        cluster = LocalCluster(Path({str(tmp_path / "logs")!r}))
        member = cluster.launch("worker", 0, {member!r}, {{}}, serves_forever=False)
        Path({str(pid_file)!r}).write_text(str(member.process.pid))
        time.sleep(300)
    """)
    supervisor = subprocess.Popen([PY, "-c", script])
    assert wait_for(lambda: supervisor.poll() is not None or (pid_file.is_file() and pid_file.read_text()), timeout=60)
    assert supervisor.poll() is None, "the supervisor ended before it launched its member"
    return supervisor, int(pid_file.read_text())


def test_free_ports_are_distinct_and_the_cluster_spec_uses_them() -> None:
    ports = free_ports(6)
    assert len(set(ports)) == 6
    spec = cluster_spec({"chief": 1, "worker": 3, "ps": 2})
    addresses = [a for role in spec.values() for a in role]
    assert len(set(addresses)) == 6 and all(a.startswith("127.0.0.1:") for a in addresses)
    assert '"task": {"type": "worker", "index": 2}' in tf_config(spec, "worker", 2)


def test_a_dead_member_fails_the_run_with_its_log_and_stops_the_others(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path)
    # a member that also started a grandchild: the whole process group must go
    sleeper = cluster.launch(
        "worker",
        0,
        [PY, "-c", "import subprocess,time; subprocess.Popen(['sleep','300']); time.sleep(300)"],
        {},
        serves_forever=False,
    )
    dying = cluster.launch(
        "worker",
        1,
        [PY, "-c", "import sys,time; print('step 1 ok'); print('boom: out of memory'); sys.exit(7)"],
        {},
        serves_forever=False,
    )
    with pytest.raises(TrainingWorkerError) as caught:
        cluster.wait(timeout_s=60, poll_s=0.1)
    assert caught.value.role == "worker" and caught.value.index == 1
    assert "exited with status 7" in str(caught.value)
    assert "boom: out of memory" in caught.value.log_tail
    assert not pid_alive(sleeper.process.pid) and not pid_alive(dying.process.pid)  # wait() reaped them

    def group_left() -> list[str]:  # the grandchild, SIGKILLed with the group: gone once init reaps it
        group = subprocess.run(["pgrep", "-g", str(sleeper.process.pid)], capture_output=True, text=True).stdout
        return [pid for pid in group.split() if pid_alive(int(pid))]

    assert wait_for(lambda: not group_left(), timeout=10), f"left in the worker's process group: {group_left()}"


def test_a_server_that_exits_at_all_is_a_failure(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path)
    cluster.launch("ps", 0, [PY, "-c", "pass"], {}, serves_forever=True)
    with pytest.raises(TrainingWorkerError, match="ps 0"):
        cluster.wait(timeout_s=30, poll_s=0.1)


def test_the_timeout_stops_everything(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path)
    member = cluster.launch("worker", 0, ["sleep", "300"], {}, serves_forever=False)
    with pytest.raises(TrainingWorkerError, match="worker_timeout_s"):
        cluster.wait(timeout_s=0.5, poll_s=0.1)
    assert not pid_alive(member.process.pid)


def test_members_die_with_a_supervisor_killed_by_sigkill(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: even a SIGKILLed Trainer (no handler can run) leaves no worker behind."""
    supervisor, worker = start_supervisor(tmp_path, ["sleep", "300"])
    assert pid_alive(worker)
    os.kill(supervisor.pid, signal.SIGKILL)
    supervisor.wait(10)
    assert wait_for(lambda: not pid_alive(worker), timeout=10), "the worker outlived its SIGKILLed supervisor"


def test_sigterm_to_the_supervisor_stops_its_members(tmp_path: Path) -> None:
    """A cancelled Airflow task sends SIGTERM: the handler stops the cluster before the process ends."""
    ready = tmp_path / "ignoring-sigterm"
    stubborn = (
        "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(300)"
    )
    supervisor, worker = start_supervisor(tmp_path, [PY, "-c", stubborn])
    assert wait_for(ready.exists, timeout=30), "the member never started ignoring SIGTERM"
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(30) == -signal.SIGTERM
    assert not pid_alive(worker)  # it ignored SIGTERM: the SIGKILL after the grace period took it (and reaped it)
