"""Process bookkeeping for the local fleet: start a process in its own session, record it, wait for it, stop it.

``runway fleet up`` and ``runway fleet down`` are separate commands, so nothing here keeps a handle on a child:
every process gets a pid file and its command line in ``$RUNWAY_HOME/fleet/instances/`` and a log in
``$RUNWAY_HOME/fleet/logs/``, and is found again from those. A recorded pid is only signalled while its command
line still looks like one of ours (a pid recycled by the system after a reboot could be anything). The fleet's
watchdog (``fleet.watchdog``) starts and restarts the processes through the same records; ``<name>.held`` marks a
process stopped on purpose, which the watchdog leaves down.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline_components.durable import atomic_write
from pipeline_components.errors import RunwayError
from pipeline_components.processes import command_line, pid_alive, stop_pid

# Words of the command lines runway supervises: nginx and the model servers (runway's or TF Serving's), and a
# deployment's Airflow components (a Celery worker renames itself "[celeryd: worker-1@runway:MainProcess] ...").
OUR_PROCESSES = (
    "nginx", "model_server", "model-server", "pipeline_components.serving", "pipeline_components.fleet", "airflow",
    "celeryd",
)  # fmt: skip


class FleetError(RunwayError):
    """The local fleet could not be started, stopped or described."""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def is_ours(pid: int) -> bool:
    """Whether ``pid`` is a process the local fleet starts (nginx or a model server)."""
    cmdline = command_line(pid)
    return any(word in cmdline for word in OUR_PROCESSES)


@dataclass(frozen=True, kw_only=True)
class Listener:
    """A started process and the ports it must open before it counts as up."""

    name: str
    pid: int | None
    host: str
    ports: tuple[int, ...]
    log: Path


def wait_listening(listeners: list[Listener], *, timeout_s: float) -> None:
    """Wait until every listener accepts connections on each of its ports.

    Raises:
        FleetError: a process exited first, or the ports were not open within ``timeout_s`` (its log is named).
    """
    deadline = time.monotonic() + timeout_s
    pending = {listener.name: listener for listener in listeners}
    while pending:
        for name, listener in list(pending.items()):
            if not pid_alive(listener.pid):
                raise FleetError(f"{name} exited during start-up; see {listener.log}")
            if all(port_open(port, listener.host) for port in listener.ports):
                del pending[name]
        if not pending:
            return
        if time.monotonic() > deadline:
            logs = ", ".join(str(listener.log) for listener in pending.values())
            raise FleetError(f"{sorted(pending)} not listening after {timeout_s:.0f} s; see {logs}")
        time.sleep(0.2)


class Supervisor:
    """The processes of one local fleet, found through the pid files under ``fleet_dir``."""

    def __init__(self, fleet_dir: Path) -> None:
        self.pid_dir = fleet_dir / "instances"
        self.log_dir = fleet_dir / "logs"

    def prepare(self) -> None:
        """Create the pid and log folders."""
        for folder in (self.pid_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def spawn(self, name: str, argv: list[str], *, env: Mapping[str, str] | None = None, banner: str = "") -> int:
        """Start ``argv`` in its own session (a Ctrl-C of the starting command does not reach it), its output
        appended to ``<log dir>/<name>.log``; record its pid and command line. Returns the pid."""
        return self.start(name, argv, env=env, banner=banner).pid

    def start(
        self, name: str, argv: list[str], *, env: Mapping[str, str] | None = None, banner: str = ""
    ) -> subprocess.Popen[bytes]:
        """``spawn``, returning the process: a parent that waits for it keeps this object, because ``subprocess``
        reaps the children of dropped ``Popen`` objects itself whenever it starts another one (and their exit
        status is then lost)."""
        self.prepare()
        with open(self.log_path(name), "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {banner or ' '.join(argv)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        atomic_write(self.pid_dir / f"{name}.pid", f"{process.pid}\n")
        self.record_argv(name, argv)
        return process

    def record_argv(self, name: str, argv: list[str]) -> None:
        """Record the command line ``name`` is (re)started with."""
        atomic_write(self.pid_dir / f"{name}.argv", "\n".join(argv) + "\n")

    def record_env(self, name: str, env: Mapping[str, str]) -> None:
        """Record the environment ``name`` is restarted with (``<name>.env``, readable by its owner only): a process
        whose environment is its own (a deployment's Airflow component: its host's name, address and runtime
        folder) rather than the watchdog's. Secrets are not in it: they are read from their files at start."""
        atomic_write(self.pid_dir / f"{name}.env", json.dumps(dict(env), indent=1, sort_keys=True) + "\n", mode=0o600)

    def recorded_env(self, name: str) -> dict[str, str] | None:
        """The environment recorded for ``name``, or None (it inherits the watchdog's)."""
        try:
            recorded = json.loads((self.pid_dir / f"{name}.env").read_text())
            return {str(key): str(value) for key, value in recorded.items()}
        except (OSError, ValueError, AttributeError):
            return None

    def recorded_pid(self, name: str) -> int | None:
        """The pid in ``<name>.pid`` (None when there is none or it cannot be read)."""
        try:
            return int((self.pid_dir / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def hold(self, name: str) -> None:
        """Mark ``name`` as stopped on purpose: the watchdog leaves it down (as docker does for a container that
        was stopped by hand, whatever its restart policy) until ``release``."""
        self.prepare()
        atomic_write(self.pid_dir / f"{name}.held", "stopped on purpose\n")

    def release(self, name: str) -> None:
        """Let the watchdog restart ``name`` again."""
        (self.pid_dir / f"{name}.held").unlink(missing_ok=True)

    def held(self, name: str) -> bool:
        return (self.pid_dir / f"{name}.held").exists()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the fleet's lock: ``fleet.json`` and the pid files are read and rewritten together under it (the
        watchdog records a restart while a command may be starting an instance)."""
        self.prepare()
        with open(self.pid_dir / "fleet.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def recorded_argv(self, name: str) -> list[str]:
        """The command line ``name`` was last started with.

        Raises:
            FleetError: it was never started under this folder.
        """
        path = self.pid_dir / f"{name}.argv"
        if not path.is_file():
            raise FleetError(f"{name} was never started here (no {path})")
        return [arg for arg in path.read_text().split("\n") if arg]

    def recorded_pids(self) -> dict[str, int]:
        """Every pid file's name and pid (unreadable files are skipped)."""
        pids: dict[str, int] = {}
        if self.pid_dir.is_dir():
            for pid_file in self.pid_dir.glob("*.pid"):
                try:
                    pids[pid_file.stem] = int(pid_file.read_text().strip())
                except (OSError, ValueError):
                    continue
        return pids

    def stop(self, name: str, pid: int | None, *, kill: bool = False, timeout_s: float = 15.0) -> bool:
        """Stop ``name`` (SIGTERM, or SIGKILL with ``kill``; SIGKILL after ``timeout_s``) if its pid is alive and
        ours; forget its pid file.

        Returns:
            Whether a live process was stopped.
        """
        stopped = False
        if pid and pid_alive(pid) and is_ours(pid):
            stop_pid(pid, kill=kill, timeout_s=timeout_s)
            stopped = True
        (self.pid_dir / f"{name}.pid").unlink(missing_ok=True)
        return stopped


def own_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with ``extra`` on top and unbuffered Python output (logs in real time)."""
    return {**os.environ, **extra, "PYTHONUNBUFFERED": "1"}
