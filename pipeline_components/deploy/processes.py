"""The long-running processes of a deployment (Airflow's components on their hosts, the loopback publisher):
started, waited for, supervised and stopped.

Supervision is the fleet's watchdog (``fleet/watchdog.py``, ``--processes``), one more instance of it under
``<deploy>/instances/``. It restarts any of them that exits, whatever the cause (a scheduler killed; a
dag-processor or triggerer, found exited after PostgreSQL and Redis were restarted), with the command line and
environment recorded at its start, after the same bounded backoff as the model servers, as compose's ``restart:
unless-stopped`` and the Kubernetes Deployments' ``restartPolicy: Always`` do for the same containers. ``deploy
up`` starts it last, once every process runs; ``deploy down`` stops it first, then the processes in order.
PostgreSQL and Redis are not under it: in production they are a managed database and a StatefulSet, restarted
there.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pipeline_components.deploy import airflow as components
from pipeline_components.deploy.hosts import Hosts
from pipeline_components.deploy.topology import WORKERS
from pipeline_components.errors import RunwayError
from pipeline_components.fleet.supervisor import Supervisor, is_ours, own_environment
from pipeline_components.fleet.watchdog import STATUS_FILE, WATCHDOG, watchdog_argv
from pipeline_components.processes import command_line, log_tail, pid_alive, stop_pid, wait_for

START_TIMEOUT_S = 240.0
WATCHDOG_START_S = 30.0


class DeploymentError(RunwayError):
    """A service of the deployment did not start, or the deployment is not up."""


def worker_name(host: str) -> str:
    return f"airflow-{host}"


AIRFLOW_PROCESSES = (*components.CONTROL_COMPONENTS, *(worker_name(host) for host in WORKERS))


class DeploymentProcesses:
    """The processes recorded under ``<deploy>/instances/`` (pid, command line, environment) and their logs."""

    def __init__(self, root: Path, hosts: Hosts, *, say: Callable[[str], None]) -> None:
        self.root = root
        self.hosts = hosts
        self.say = say
        self.records = Supervisor(root)

    def pid(self, name: str) -> int | None:
        return self.records.recorded_pid(name)

    def log_path(self, name: str) -> Path:
        return self.records.log_path(name)

    def start(self, name: str, host: str, argv: list[str], env: Mapping[str, str]) -> None:
        """Start ``argv`` on ``host`` as ``name``, unless it runs. Under the records' lock, which the watchdog takes
        to restart a process: one of them starts it, the other sees it running."""
        with self.records.locked():
            pid = self.pid(name)
            if pid and pid_alive(pid) and is_ours(pid):
                return
            started = self.records.spawn(name, self.hosts.command(host, argv), env=env, banner=" ".join(argv))
            self.records.record_env(name, env)  # what the watchdog restarts it with
        self.say(f"{host}: {name} started (pid {started}, log {self.log_path(name)})")

    def died(self, name: str) -> str | None:
        """The end of ``name``'s log if its process is gone, else None."""
        if pid_alive(self.pid(name)):
            return None
        return log_tail(self.log_path(name), 25)

    def migrate(self, env: Mapping[str, str], host: str) -> None:
        """``airflow db migrate`` once per deployment (a marker file remembers it)."""
        marker = self.root / "airflow" / ".migrated"
        if marker.is_file():
            return
        self.say("control: creating Airflow's tables (airflow db migrate)")
        marker.parent.mkdir(parents=True, exist_ok=True)
        done = self.hosts.exec(host, [components.airflow_bin(), "db", "migrate"], env=dict(env), capture_output=True,
                               text=True)  # fmt: skip
        if done.returncode != 0:
            raise DeploymentError(f"`airflow db migrate` failed:\n{(done.stdout + done.stderr)[-3000:]}")
        marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))

    def wait_api(self, url: str) -> None:
        """Wait until the api-server answers ``url`` (its health), failing at once if a control component exits."""

        def healthy() -> bool:
            for name in components.CONTROL_COMPONENTS:
                tail = self.died(name)
                if tail is not None:
                    raise DeploymentError(f"{name} exited at start-up; its log {self.log_path(name)}:\n{tail}")
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    return bool(answer.status == 200)
            except (urllib.error.URLError, OSError):
                return False

        if not wait_for(healthy, timeout=START_TIMEOUT_S, interval=1.0):
            raise DeploymentError(f"Airflow's api-server did not answer {url} within {START_TIMEOUT_S:.0f} s")

    def wait_workers(self) -> None:
        def ready() -> bool:
            for host in WORKERS:
                tail = self.died(worker_name(host))
                if tail is not None:
                    raise DeploymentError(f"the Celery worker of {host} exited at start-up:\n{tail}")
            return all(self.worker_ready(host) for host in WORKERS)

        if not wait_for(ready, timeout=START_TIMEOUT_S, interval=1.0):
            raise DeploymentError(f"the Celery workers did not become ready within {START_TIMEOUT_S:.0f} s")

    def worker_ready(self, host: str) -> bool:
        """Whether the worker of ``host`` said ``ready`` since its last start (the banner in its log)."""
        log = self.log_path(worker_name(host))
        if not log.is_file():
            return False
        last_start = log.read_text(errors="replace").rsplit("\n=== ", 1)[-1]
        return " ready." in last_start

    # -- supervision ------------------------------------------------------------------------------------------------

    def supervise(self, names: Sequence[str], env: Mapping[str, str]) -> int:
        """Start the watchdog over ``names`` unless it runs. Returns its pid.

        Raises:
            DeploymentError: it exited at start-up, or did not take them over within 30 s.
        """
        running = self._watchdog_pid()
        if running is not None:
            return running
        pid = self.records.spawn(WATCHDOG, watchdog_argv(self.root, list(names), fleet=False),
                                 env=own_environment(env))  # fmt: skip
        status = self.records.pid_dir / STATUS_FILE

        def watching() -> bool:
            if not pid_alive(pid):
                raise DeploymentError(f"the deployment's watchdog exited at start-up:\n{self.died(WATCHDOG)}")
            return status.is_file() and status.stat().st_mtime >= started

        started = time.time() - 1
        if not wait_for(watching, timeout=WATCHDOG_START_S, interval=0.2):
            raise DeploymentError(f"the deployment's watchdog did not start; see {self.log_path(WATCHDOG)}")
        self.say(f"control: watchdog (pid {pid}) restarts {', '.join(names)} when they exit")
        return pid

    def _watchdog_pid(self) -> int | None:
        pid = self.pid(WATCHDOG)
        return pid if pid and pid_alive(pid) and "pipeline_components.fleet.watchdog" in command_line(pid) else None

    def stop_watchdog(self) -> bool:
        """Stop the watchdog (its processes keep running) and forget its report, so that the next ``up`` counts
        restarts from zero. Returns whether it ran."""
        pid = self._watchdog_pid()
        stop_pid(pid, timeout_s=15.0)
        (self.records.pid_dir / STATUS_FILE).unlink(missing_ok=True)
        return pid is not None

    def stop(self, names: Sequence[str]) -> list[str]:
        """Stop ``names`` in that order (each SIGTERM, SIGKILL after 30 s). Returns those that ran."""
        stopped = []
        for name in names:
            pid = self.pid(name)
            if pid_alive(pid):
                stop_pid(pid, timeout_s=30.0)
                stopped.append(name)
            (self.records.pid_dir / f"{name}.pid").unlink(missing_ok=True)
        return stopped
