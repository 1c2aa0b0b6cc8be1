"""Start, find and stop the warm runtime service (``pipeline_components/runtime/warm``), from the orchestrator side.

One service serves one ``RUNWAY_HOME``. Its socket, pid file and start lock live in a private runtime folder
(``ServicePaths``), never under ``RUNWAY_HOME``: that folder is the shared volume serving containers also mount.
The first task starts the service under the lock (concurrent tasks start only one); a service that does not answer
a ping in time is killed and started again. ``warm_runner.WarmNodeRunner`` runs nodes through it.

| variable | default | what |
|---|---|---|
| ``RUNWAY_WARM_RUNTIME`` | ``on`` | ``on`` or ``off``: run local nodes through the warm runtime |
| ``RUNWAY_WARM_MAX_PARALLEL`` | CPU count | nodes the service runs at once; more wait their turn |
| ``RUNWAY_WARM_START_TIMEOUT`` | ``240`` | seconds to wait for a starting service (preload) before running cold |
| ``RUNWAY_WARM_PING_TIMEOUT`` | ``10`` | seconds a live service has to answer a ping before it counts as wedged |
| ``RUNWAY_WARM_IDLE_TIMEOUT`` | ``600`` | an idle service stops after this many seconds (``0``: never) |
| ``XDG_RUNTIME_DIR`` | unset | where the private runtime folder goes (else the system temp folder) |
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_components.boundary import RUNTIME_ENV
from pipeline_components.durable import atomic_write
from pipeline_components.errors import ConfigError
from pipeline_components.processes import log_tail, pid_alive, wait_for
from pipeline_components.settings import Settings
from pipeline_components.warm_protocol import (
    MAX_UNIX_PATH,
    Op,
    WarmRuntimeUnavailable,
    check_private_folder,
    request,
)

SERVICE_MODULE = "pipeline_components.runtime.warm"


@dataclass(frozen=True, kw_only=True)
class WarmSettings:
    """The ``RUNWAY_WARM_*`` variables, read once (table above)."""

    enabled: bool  # run local nodes through the service at all
    max_parallel: int
    # seconds: for the service's preload; for an answer to a ping; of idleness before the service stops itself
    start_timeout: float
    ping_timeout: float
    idle_timeout: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WarmSettings:
        """Read the settings from ``environ`` (default: this process's environment).

        Raises:
            ConfigError: a switch other than on/off, or a value that is not a non-negative number.
        """
        env = os.environ if environ is None else environ
        switch = env.get("RUNWAY_WARM_RUNTIME", "on").strip().lower()
        if switch not in ("on", "off"):
            raise ConfigError(f"RUNWAY_WARM_RUNTIME={switch!r}: use 'on' or 'off'")
        return cls(
            enabled=switch == "on",
            max_parallel=max(1, int(_number(env, "RUNWAY_WARM_MAX_PARALLEL", os.cpu_count() or 1))),
            start_timeout=_number(env, "RUNWAY_WARM_START_TIMEOUT", 240.0),
            ping_timeout=_number(env, "RUNWAY_WARM_PING_TIMEOUT", 10.0),
            idle_timeout=_number(env, "RUNWAY_WARM_IDLE_TIMEOUT", 600.0),
        )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds/nodes") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r} must not be negative")
    return value


@dataclass(frozen=True, kw_only=True)
class ServicePaths:
    """Where the service of one ``RUNWAY_HOME`` keeps its socket, pid file and start lock (the private ``folder``)
    and its log (``log_folder``, under the home)."""

    folder: Path
    socket: Path
    pidfile: Path
    lockfile: Path
    log_folder: Path
    logfile: Path

    @classmethod
    def for_settings(cls, settings: Settings, *, environ: Mapping[str, str] | None = None) -> ServicePaths:
        """``$XDG_RUNTIME_DIR/runway-<hash>``, else ``<temp dir>/runway-<uid>-<hash>``; the hash is of the home.

        Args:
            settings: the home whose service this is.
            environ: where to read ``XDG_RUNTIME_DIR`` (default: this process's environment).
        """
        env = os.environ if environ is None else environ
        digest = hashlib.sha256(str(settings.home).encode()).hexdigest()[:16]
        runtime_dir = env.get("XDG_RUNTIME_DIR", "")
        if os.path.isabs(runtime_dir):
            folder = Path(runtime_dir) / f"runway-{digest}"
        else:
            folder = Path(tempfile.gettempdir()) / f"runway-{os.getuid()}-{digest}"
        if len(str(folder / "runtime.sock")) > MAX_UNIX_PATH:  # a Unix socket path is short: /tmp is
            folder = Path("/tmp") / f"runway-{os.getuid()}-{digest}"
        logs = settings.home / "warm"
        return cls(
            folder=folder,
            socket=folder / "runtime.sock",
            pidfile=folder / "server.pid",
            lockfile=folder / "start.lock",
            log_folder=logs,
            logfile=logs / "server.log",
        )

    def prepare(self) -> None:
        """Create both folders owner-only; refuse a runtime folder someone else owns or may enter.

        Raises:
            UnsafeRuntimeFolderError: the runtime folder is not private (what to do is in the message).
        """
        self.log_folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.log_folder, 0o700)  # owner-only, whatever the umask made of it
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # an existing one is checked, never chmod-ed into shape
            os.mkdir(self.folder, 0o700)
            os.chmod(self.folder, 0o700)
        check_private_folder(self.folder)


def ping(paths: ServicePaths, *, timeout: float) -> dict[str, Any] | None:
    """The service's status, or None when nothing answers on the socket in ``timeout`` seconds.

    Raises:
        UnsafeRuntimeFolderError: the socket's folder is not private: whatever listens there is not asked.
    """
    if not paths.folder.exists():
        return None
    check_private_folder(paths.folder)
    try:
        return request(paths.socket, {"op": Op.PING.value}, timeout=timeout)
    except (OSError, ValueError):
        return None


def _recorded_pid(paths: ServicePaths) -> int | None:
    try:
        return int(paths.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _start_lock(paths: ServicePaths, timeout: float) -> Iterator[None]:
    with paths.lockfile.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WarmRuntimeUnavailable(
                        f"another task holds {paths.lockfile} for over {timeout:.0f} s"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _kill_service(pid: int) -> None:
    """Kill a service that does not answer (its running children, in their own groups, finish on their own)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), timeout=5.0, interval=0.1)


def ensure_service(
    settings: Settings,
    *,
    warm: WarmSettings,
    env: Mapping[str, str],
    python: str,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Return the status of a running, answering service for ``settings.home``; start (or restart) it if needed.

    Raises:
        WarmRuntimeUnavailable: it could not be started within ``warm.start_timeout`` seconds.
        UnsafeRuntimeFolderError: its runtime folder is not private to this user.
    """
    paths = ServicePaths.for_settings(settings)
    paths.prepare()  # first: a socket in a folder others control is never asked anything
    status = ping(paths, timeout=warm.ping_timeout)
    if status is not None:
        return status
    with _start_lock(paths, warm.start_timeout):
        status = ping(paths, timeout=warm.ping_timeout)  # another task may have started it meanwhile
        if status is not None:
            return status
        pid = _recorded_pid(paths)
        if pid is not None and pid_alive(pid):
            log(f"[warm runtime] service pid {pid} does not answer within {warm.ping_timeout:.0f} s: restarting it")
            _kill_service(pid)
        return _start_service(paths, warm=warm, env=env, python=python, log=log)


def _start_service(
    paths: ServicePaths, *, warm: WarmSettings, env: Mapping[str, str], python: str, log: Callable[[str], None]
) -> dict[str, Any]:
    if not Path(python).exists():
        raise WarmRuntimeUnavailable(f"the runtime interpreter {python} does not exist")
    with contextlib.suppress(FileNotFoundError):
        paths.socket.unlink()
    argv = [
        python, "-m", SERVICE_MODULE, "serve", "--socket", str(paths.socket),
        "--max-parallel", str(warm.max_parallel), "--idle-timeout", str(warm.idle_timeout),
        "--pidfile", str(paths.pidfile),
    ]  # fmt: skip
    log(f"[warm runtime] starting the service (preloading TFX and TensorFlow once): {' '.join(argv)}")
    started = time.monotonic()
    with paths.logfile.open("ab") as logfile:
        process = subprocess.Popen(
            argv,
            env={**env, **RUNTIME_ENV},
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            cwd=str(paths.folder),
            start_new_session=True,  # outlives the task that started it; not in any task's process group
        )
    atomic_write(paths.pidfile, f"{process.pid}\n", mode=0o600)
    deadline = started + warm.start_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise WarmRuntimeUnavailable(
                f"the service exited with code {process.returncode} while starting; see {paths.logfile}:\n"
                + log_tail(paths.logfile)
            )
        status = ping(paths, timeout=warm.ping_timeout) if paths.socket.exists() else None
        if status is not None:
            log(f"[warm runtime] service pid {process.pid} ready in {time.monotonic() - started:.1f} s")
            return status
        time.sleep(0.2)
    _kill_service(process.pid)
    process.wait()
    raise WarmRuntimeUnavailable(f"the service was not ready after {warm.start_timeout:.0f} s; see {paths.logfile}")


def stop_service(settings: Settings, *, timeout: float = 30.0) -> dict[str, Any] | None:
    """Stop the service of ``settings.home`` (running nodes are killed); None when none was running."""
    paths = ServicePaths.for_settings(settings)
    pid = _recorded_pid(paths)
    try:
        answer = request(paths.socket, {"op": Op.STOP.value}, timeout=10.0)
    except (OSError, ValueError):
        answer = None
        if pid is not None and pid_alive(pid):
            _kill_service(pid)
            answer = {"stopping": True, "killed": pid}
    if pid is not None:
        if not wait_for(lambda: not pid_alive(pid), timeout=timeout, interval=0.1):
            _kill_service(pid)
        with contextlib.suppress(FileNotFoundError):
            paths.pidfile.unlink()
    return answer


def start_in_background(settings: Settings) -> None:
    """Start the service without waiting for it (``runway run`` and ``runway airflow standalone|scheduler`` do)."""
    paths = ServicePaths.for_settings(settings)
    paths.prepare()
    with paths.logfile.open("ab") as logfile:
        subprocess.Popen(
            [sys.executable, "-m", "pipeline_components.cli", "runtime", "start"],
            env={**os.environ, **settings.as_env()},
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
