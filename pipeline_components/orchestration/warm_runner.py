"""Run nodes through the warm runtime service, with the interface of ``LocalNodeRunner``.

``WarmNodeRunner`` takes the same ``NodeCommand`` and gives the same ``NodeOutcome``: the node's output line by
line into the task log, its exit code and ``RUNWAY_RESULT`` summary. Instead of starting a cold interpreter
(11-13 s of imports) it asks the service (``warm_service``), which forks a child of an already-loaded runtime.
When the service cannot be used (it does not start, runs another interpreter, refuses the module), the node runs
in a cold process as before and the task log says why. Only the local backend uses it: container and pod
backends run one container or pod per node.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from pipeline_components.boundary import RESULT_PREFIX
from pipeline_components.orchestration.runner import TAIL_LINES, LocalNodeRunner, NodeCommand, NodeOutcome
from pipeline_components.orchestration.warm_service import ServicePaths, WarmSettings, ensure_service
from pipeline_components.settings import Settings
from pipeline_components.warm_protocol import Op, WarmRuntimeUnavailable, request, run_message, split_trailer

EXIT_SERVICE_LOST = 75  # the service and the node's child both vanished without an exit code (EX_TEMPFAIL: retried)


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
        """Run ``command`` to its end, through the service when possible; its outcome either way."""
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
        message = run_message(request_id=request_id, module=module, args=args, env=env, cwd=os.getcwd())
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
        if trailer is not None and trailer.get("error"):
            return self._run_cold(command, log, str(trailer["error"]))
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
                line, payload = split_trailer(raw.decode("utf-8", errors="replace").rstrip("\n"))
                if payload is not None:
                    trailer = payload  # the server's (last) wins over the child's own
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
            request(paths.socket, {"op": Op.KILL.value, "id": request_id}, timeout=30.0)
        except (OSError, ValueError):
            # No answer: closing our end also makes the service kill the node's process group.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def node_runner(settings: Settings | None = None) -> WarmNodeRunner | LocalNodeRunner:
    """The runner for local nodes: warm unless ``RUNWAY_WARM_RUNTIME=off``."""
    warm = WarmSettings.from_env()
    return WarmNodeRunner(settings=settings, warm=warm) if warm.enabled else LocalNodeRunner()
