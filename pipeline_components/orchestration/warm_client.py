"""Run nodes through the warm runtime service (``pipeline_components/runtime/warm``), from the orchestrator side.

``WarmNodeRunner`` has the interface of ``LocalNodeRunner``: the same ``NodeCommand``, the node's output line by
line into the task log, a ``NodeOutcome`` with the exit code and ``RUNWAY_RESULT`` summary. Instead of starting a
cold interpreter (11-13 s of imports), it asks the service, which forks a child of an already-loaded runtime.
The first task starts the service (a lock file makes concurrent tasks start only one); a service that does not
answer a ping in time is killed and started again; when the service cannot be used, the node runs in a cold
process as before and the task log says why. Only the local backend uses it: container and pod backends run one
container or pod per node.

| variable | default | what |
|---|---|---|
| ``RUNWAY_WARM_RUNTIME`` | ``on`` | ``on`` or ``off``: run local nodes through the warm runtime |
| ``RUNWAY_WARM_MAX_PARALLEL`` | CPU count | nodes the service runs at once; more wait their turn |
| ``RUNWAY_WARM_START_TIMEOUT`` | ``240`` | seconds to wait for a starting service (preload) before running cold |
| ``RUNWAY_WARM_PING_TIMEOUT`` | ``10`` | seconds a live service has to answer a ping before it counts as wedged |
| ``RUNWAY_WARM_IDLE_TIMEOUT`` | ``600`` | an idle service stops after this many seconds (``0``: never) |
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_components.boundary import RESULT_PREFIX, RUNTIME_ENV
from pipeline_components.errors import ConfigError, RunwayError
from pipeline_components.orchestration.runner import (
    TAIL_LINES,
    LocalNodeRunner,
    NodeCommand,
    NodeOutcome,
)
from pipeline_components.settings import Settings

# Kept in step with pipeline_components.runtime.warm.server (that module is the runtime env's; this side must not
# import anything of the runtime package's heavy modules, and the marker is a protocol constant).
EXIT_MARKER = "\x1eRUNWAY_WARM_EXIT "
SERVICE_MODULE = "pipeline_components.runtime.warm"
EXIT_SERVICE_LOST = 75  # the service and the node's child both vanished without an exit code (EX_TEMPFAIL: retried)
_MAX_UNIX_PATH = 100  # sun_path is 108 bytes on Linux


class WarmRuntimeUnavailable(RunwayError):
    """The warm runtime service could not be started or reached; the node runs in a cold process instead."""


@dataclass(frozen=True, kw_only=True)
class WarmSettings:
    enabled: bool
    max_parallel: int
    start_timeout: float
    ping_timeout: float
    idle_timeout: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WarmSettings:
        env = os.environ if environ is None else environ
        switch = env.get("RUNWAY_WARM_RUNTIME", "on").strip().lower()
        if switch not in ("on", "off"):
            raise ConfigError(f"RUNWAY_WARM_RUNTIME={switch!r}: use 'on' or 'off'")

        def number(name: str, default: float) -> float:
            raw = env.get(name)
            try:
                value = float(raw) if raw else default
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a number of seconds/nodes") from None
            if value < 0:
                raise ConfigError(f"{name}={raw!r} must not be negative")
            return value

        return cls(
            enabled=switch == "on",
            max_parallel=max(1, int(number("RUNWAY_WARM_MAX_PARALLEL", os.cpu_count() or 1))),
            start_timeout=number("RUNWAY_WARM_START_TIMEOUT", 240.0),
            ping_timeout=number("RUNWAY_WARM_PING_TIMEOUT", 10.0),
            idle_timeout=number("RUNWAY_WARM_IDLE_TIMEOUT", 600.0),
        )


@dataclass(frozen=True)
class ServicePaths:
    folder: Path

    @classmethod
    def for_settings(cls, settings: Settings) -> ServicePaths:
        folder = settings.home / "warm"
        if len(str(folder / "runtime.sock")) > _MAX_UNIX_PATH:  # a Unix socket path is short: use /tmp
            digest = hashlib.sha256(str(settings.home).encode()).hexdigest()[:16]
            folder = Path("/tmp") / f"runway-warm-{os.getuid()}-{digest}"
        return cls(folder)

    @property
    def socket(self) -> Path:
        return self.folder / "runtime.sock"

    @property
    def pidfile(self) -> Path:
        return self.folder / "server.pid"

    @property
    def logfile(self) -> Path:
        return self.folder / "server.log"

    @property
    def lockfile(self) -> Path:
        return self.folder / "start.lock"

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)  # owner-only, whatever the umask made of it


# --- talking to the service -------------------------------------------------------------------------------


def _request(path: Path, message: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall((json.dumps(message) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer: dict[str, Any] = json.loads(data)
    return answer


def ping(paths: ServicePaths, *, timeout: float) -> dict[str, Any] | None:
    """The service's status, or None when nothing answers on the socket in ``timeout`` seconds."""
    try:
        return _request(paths.socket, {"op": "ping"}, timeout=timeout)
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own unreaped child) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _recorded_pid(paths: ServicePaths) -> int | None:
    try:
        return int(paths.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _start_lock(paths: ServicePaths, timeout: float) -> Any:
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
    for _ in range(50):
        if not _pid_alive(pid):
            return
        time.sleep(0.1)


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
    """
    paths = ServicePaths.for_settings(settings)
    status = ping(paths, timeout=warm.ping_timeout)
    if status is not None:
        return status
    paths.prepare()
    with _start_lock(paths, warm.start_timeout):
        status = ping(paths, timeout=warm.ping_timeout)  # another task may have started it meanwhile
        if status is not None:
            return status
        pid = _recorded_pid(paths)
        if pid is not None and _pid_alive(pid):
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
    paths.pidfile.write_text(f"{process.pid}\n")
    deadline = started + warm.start_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise WarmRuntimeUnavailable(
                f"the service exited with code {process.returncode} while starting; see {paths.logfile}:\n"
                + _tail(paths.logfile)
            )
        status = ping(paths, timeout=warm.ping_timeout) if paths.socket.exists() else None
        if status is not None:
            log(f"[warm runtime] service pid {process.pid} ready in {time.monotonic() - started:.1f} s")
            return status
        time.sleep(0.2)
    _kill_service(process.pid)
    process.wait()
    raise WarmRuntimeUnavailable(f"the service was not ready after {warm.start_timeout:.0f} s; see {paths.logfile}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_service(settings: Settings, *, timeout: float = 30.0) -> dict[str, Any] | None:
    """Stop the service of ``settings.home`` (running nodes are killed); None when none was running."""
    paths = ServicePaths.for_settings(settings)
    pid = _recorded_pid(paths)
    try:
        answer = _request(paths.socket, {"op": "stop"}, timeout=10.0)
    except (OSError, ValueError):
        answer = None
        if pid is not None and _pid_alive(pid):
            _kill_service(pid)
            answer = {"stopping": True, "killed": pid}
    if pid is not None:
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            _kill_service(pid)
        with contextlib.suppress(FileNotFoundError):
            paths.pidfile.unlink()
    return answer


def start_in_background(settings: Settings) -> None:
    """Start the service without waiting for it (``runway airflow standalone|scheduler`` does this)."""
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


# --- the runner -------------------------------------------------------------------------------------------


def runtime_module(argv: list[str]) -> tuple[str, list[str]] | None:
    """``(module, args)`` of a ``python -m MODULE ARGS`` command line, else None."""
    if len(argv) >= 3 and argv[1] == "-m":
        return argv[2], argv[3:]
    return None


class WarmNodeRunner:
    """Runs a ``NodeCommand`` in a child forked by the warm runtime service, or cold when that is not possible."""

    def __init__(self, *, settings: Settings | None = None, warm: WarmSettings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.warm = warm or WarmSettings.from_env()
        self._cold = LocalNodeRunner()
        self._request_id: str | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self.used_warm: bool | None = None  # after run(): whether the node ran in the warm runtime

    def run(self, command: NodeCommand, *, log: Callable[[str], None]) -> NodeOutcome:
        target = runtime_module(command.argv)
        if target is None:
            return self._run_cold(command, log, f"{command.argv[:2]} is not a `python -m` command")
        for _attempt in range(3):
            outcome = self._run_warm(command, target, log)
            if outcome is not None:
                return outcome
        return self._run_cold(command, log, "the service kept asking to be restarted")

    def _run_warm(
        self, command: NodeCommand, target: tuple[str, list[str]], log: Callable[[str], None]
    ) -> NodeOutcome | None:
        """Run through the service; None when a restarted service must be asked again (code changed)."""
        env = {**os.environ, **command.env}
        python = command.argv[0]
        try:
            status = ensure_service(self.settings, warm=self.warm, env=env, python=python, log=log)
        except WarmRuntimeUnavailable as err:
            return self._run_cold(command, log, str(err))
        if os.path.realpath(status.get("python", "")) != os.path.realpath(python):
            return self._run_cold(command, log, f"the service runs {status.get('python')}, this node needs {python}")
        module, args = target
        request_id = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        message = {"op": "run", "id": request_id, "module": module, "args": args, "env": env, "cwd": os.getcwd()}
        paths = ServicePaths.for_settings(self.settings)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.warm.ping_timeout)
            sock.connect(str(paths.socket))
            sock.sendall((json.dumps(message) + "\n").encode())
            sock.settimeout(None)
        except OSError as err:
            sock.close()
            return self._run_cold(command, log, f"cannot send the request to {paths.socket}: {err}")
        log(f"[warm runtime] node runs in a child of service pid {status.get('pid')} (request {request_id})")
        with self._lock:
            self._sock, self._request_id = sock, request_id
        try:
            outcome, received, trailer = self._stream(sock, log)
        finally:
            with self._lock:
                self._sock, self._request_id = None, None
            sock.close()
        if trailer is not None and trailer.get("stale"):
            log(f"[warm runtime] the project's code changed ({', '.join(trailer['stale'])}): restarting the service")
            return None
        if outcome is None and not received:
            return self._run_cold(command, log, "the service closed the connection before the node started")
        self.used_warm = True
        if outcome is None:
            message_ = "[warm runtime] the service and the node's process ended without an exit status"
            log(message_)
            return NodeOutcome(returncode=EXIT_SERVICE_LOST, result=None, tail=[message_])
        return outcome

    def _stream(
        self, sock: socket.socket, log: Callable[[str], None]
    ) -> tuple[NodeOutcome | None, bool, dict[str, Any] | None]:
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        result: dict[str, Any] | None = None
        trailer: dict[str, Any] | None = None
        received = False
        with sock.makefile("rb") as stream:
            for raw in stream:
                received = True
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                if EXIT_MARKER in line:
                    line, _, payload = line.partition(EXIT_MARKER)
                    with contextlib.suppress(ValueError):
                        trailer = json.loads(payload)  # the server's (last) wins over the child's own
                    if not line:
                        continue
                if line.startswith(RESULT_PREFIX):
                    result = json.loads(line[len(RESULT_PREFIX) :])
                    continue
                tail.append(line)
                log(line)
        if trailer is None or trailer.get("returncode") is None:
            return None, received, trailer
        if trailer.get("from") == "child":
            log("[warm runtime] the service went away while the node ran; the node itself finished")
        return NodeOutcome(returncode=int(trailer["returncode"]), result=result, tail=list(tail)), received, trailer

    def _run_cold(self, command: NodeCommand, log: Callable[[str], None], reason: str) -> NodeOutcome:
        log(f"[warm runtime] not used ({reason}): running the node in a cold process")
        self.used_warm = False
        return self._cold.run(command, log=log)

    def kill(self) -> None:
        """Cancel the running node: its process group is killed (the service waits until it is gone)."""
        self._cold.kill()
        with self._lock:
            sock, request_id = self._sock, self._request_id
        if sock is None or request_id is None:
            return
        paths = ServicePaths.for_settings(self.settings)
        try:
            _request(paths.socket, {"op": "kill", "id": request_id}, timeout=30.0)
        except (OSError, ValueError):
            # No answer: closing our end also makes the service kill the node's process group.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def node_runner(settings: Settings | None = None) -> WarmNodeRunner | LocalNodeRunner:
    """The runner for local nodes: warm unless ``RUNWAY_WARM_RUNTIME=off``."""
    warm = WarmSettings.from_env()
    return WarmNodeRunner(settings=settings, warm=warm) if warm.enabled else LocalNodeRunner()
