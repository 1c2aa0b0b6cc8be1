"""The warm runtime service: TFX, TensorFlow, TFDV, TFMA and Beam imported once, one forked child per node.

A cold ``python -m pipeline_components.runtime run-node ...`` spends 11-13 s importing before the node starts.
This server pays that once, then forks a child per request, so every node still starts from a clean process
(no state, memory or threads shared between nodes) but without the imports. The parent only imports modules:
it never runs a TensorFlow op, opens ML Metadata or starts a Beam pipeline, so no thread pool exists to be
lost in the fork (``preload`` checks that only the main thread is alive afterwards).

Protocol (one JSON line per connection from the client, on an owner-only Unix socket):

- ``{"op": "ping"}`` -> one JSON line: pid, python, preloaded modules, running and queued requests, limit.
- ``{"op": "run", "id": ..., "module": ..., "args": [...], "env": {...}, "cwd": ...}`` -> the child's stdout
  and stderr, raw, as they are written (the connection *is* the child's fd 1 and 2), then one trailer line
  ``EXIT_MARKER {"returncode": N, ...}``. The child runs ``python -m MODULE ARGS`` in-process (``runpy``), so a
  node runs exactly the code a cold process runs. Closing the connection early, or ``kill``, kills the child's
  process group (the child and everything it started).
- ``{"op": "kill", "id": ...}`` -> kills that request's process group (SIGTERM, SIGKILL after a grace period),
  answers one JSON line once it is gone.
- ``{"op": "stop"}`` -> kills running children, answers, removes the socket and exits.

At most ``max_parallel`` children run at once; further requests wait in order (their log says so).
Everything here is the standard library: the server module itself imports no TensorFlow, only ``--preload``
does, which lets the protocol be tested with a light preload.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import io
import json
import logging
import os
import random
import runpy
import select
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXIT_MARKER = "\x1eRUNWAY_WARM_EXIT "
DEFAULT_PRELOAD = (
    "tensorflow",
    "tfx.v1",
    "tensorflow_data_validation",
    "tensorflow_model_analysis",
    "tensorflow_transform",
    "apache_beam",
    "ml_metadata",
    "pipeline_components.runtime.node",
    "pipeline_components.runtime.reports",
)
KILL_GRACE_SECONDS = 10.0
log = logging.getLogger("runway.warm")


def preload(modules: list[str]) -> dict[str, float]:
    """Import ``modules`` (seconds per module); refuse to serve if that left extra threads running."""
    seconds: dict[str, float] = {}
    for name in modules:
        start = time.monotonic()
        __import__(name)
        seconds[name] = round(time.monotonic() - start, 2)
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:
        # A thread in the parent would be missing in every child (and could hold a lock across the fork).
        raise RuntimeError(f"preloading {modules} started threads {threads}; forking children would not be safe")
    return seconds


@dataclass
class Request:
    id: str
    conn: socket.socket
    module: str
    args: list[str]
    env: dict[str, str]
    cwd: str
    queued_at: float = field(default_factory=time.monotonic)
    pid: int | None = None
    pidfd: int | None = None
    kill_deadline: float | None = None
    client_gone: bool = False
    kill_waiters: list[socket.socket] = field(default_factory=list)


class WarmServer:
    def __init__(
        self,
        *,
        socket_path: str,
        max_parallel: int,
        preloaded: dict[str, float],
        idle_timeout: float = 0.0,
        pidfile: str | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.pidfile = pidfile
        self.socket_inode: int | None = None
        self.sources = _project_sources()
        self.max_parallel = max(1, max_parallel)
        self.idle_timeout = idle_timeout
        self.last_active = time.monotonic()
        self.preloaded = preloaded
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.running: dict[str, Request] = {}
        self.queue: collections.deque[Request] = collections.deque()
        self.stopping = False
        self.served = 0

    # --- lifecycle ---------------------------------------------------------------------------------------

    def bind(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        old_umask = os.umask(0o177)  # the socket file is created 0600: only this user may connect
        try:
            self.listener.bind(self.socket_path)
        finally:
            os.umask(old_umask)
        os.chmod(self.socket_path, 0o600)
        self.socket_inode = os.stat(self.socket_path).st_ino
        if self.pidfile:
            with open(self.pidfile, "w") as handle:
                handle.write(f"{os.getpid()}\n")
        self.listener.listen(64)
        self.listener.setblocking(False)

    def serve_forever(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        log.info("serving on %s (max %d nodes in parallel, pid %d)", self.socket_path, self.max_parallel, os.getpid())
        try:
            while not (self.stopping and not self.running):
                self._tick()
        finally:
            self.close()

    def close(self) -> None:
        for request in list(self.running.values()):
            self._kill_group(request, signal.SIGKILL)
        self._withdraw()
        log.info("stopped after %d requests", self.served)

    def _withdraw(self) -> None:
        """Close the listener and remove the socket and pid file, if they are still this server's."""
        if self.listener.fileno() >= 0:
            self.listener.close()
        with contextlib.suppress(OSError):
            if os.stat(self.socket_path).st_ino == self.socket_inode:
                os.unlink(self.socket_path)
        with contextlib.suppress(OSError, ValueError):
            if self.pidfile and int(Path(self.pidfile).read_text().strip()) == os.getpid():
                os.unlink(self.pidfile)

    def _on_term(self, signum: int, frame: Any) -> None:
        self._begin_stop()

    def _retire(self, conn: socket.socket, changed: list[str]) -> None:
        stale = EXIT_MARKER + json.dumps({"returncode": None, "stale": changed[:5]}) + "\n"
        for waiting in [conn, *(r.conn for r in self.queue)]:
            _send(waiting, stale)
            waiting.close()
        self.queue.clear()
        self.stopping = True
        self._withdraw()

    def _begin_stop(self) -> None:
        if not self.stopping:
            self.stopping = True
            for request in list(self.queue):
                self._finish_unstarted(request, "the warm runtime service is stopping")
            self.queue.clear()
            for request in self.running.values():
                self._request_kill(request)

    # --- the event loop ----------------------------------------------------------------------------------

    def _tick(self) -> None:
        readable: list[Any] = [] if self.stopping else [self.listener]
        by_fd: dict[int, tuple[str, Request]] = {}
        for request in self.running.values():
            if request.pidfd is not None:
                readable.append(request.pidfd)
                by_fd[request.pidfd] = ("exit", request)
            if not request.client_gone:
                readable.append(request.conn)
                by_fd[request.conn.fileno()] = ("conn", request)
        for request in self.queue:
            readable.append(request.conn)
            by_fd[request.conn.fileno()] = ("queued", request)
        try:
            ready, _, _ = select.select(readable, [], [], 0.5)
        except InterruptedError:
            ready = []
        for item in ready:
            if item is self.listener:
                self._accept()
                continue
            fd = item if isinstance(item, int) else item.fileno()
            kind, request = by_fd[fd]
            if kind == "exit":
                self._reap(request)
            elif kind == "conn" and request.id in self.running:
                self._on_client_input(request)
            elif kind == "queued" and request in self.queue and not _peek_alive(request.conn):
                self.queue.remove(request)
                request.conn.close()
        now = time.monotonic()
        if self.running or self.queue:
            self.last_active = now
        elif not self.stopping and self.idle_timeout and now - self.last_active > self.idle_timeout:
            log.info("idle for %.0f s: stopping", self.idle_timeout)
            self._begin_stop()
        elif not self.stopping and not _same_inode(self.socket_path, self.socket_inode):
            log.info("socket %s was removed: stopping", self.socket_path)
            self._begin_stop()
        for request in list(self.running.values()):
            if request.pidfd is None:  # no pidfd on this kernel: poll
                self._reap(request, block=False)
            if request.kill_deadline is not None and now > request.kill_deadline and request.id in self.running:
                self._kill_group(request, signal.SIGKILL)
        while self.queue and len(self.running) < self.max_parallel and not self.stopping:
            self._start(self.queue.popleft())

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(True)
        conn.settimeout(5.0)
        try:
            message = json.loads(_read_line(conn))
        except (OSError, ValueError) as err:
            log.warning("dropping a connection with an unreadable request: %s", err)
            conn.close()
            return
        conn.settimeout(None)
        op = message.get("op")
        if op == "ping":
            self._answer(conn, self.status())
        elif op == "stop":
            self._answer(conn, {"stopping": True, "running": sorted(self.running)})
            self._begin_stop()
        elif op == "kill":
            target = self.running.get(str(message.get("id")))
            queued = [r for r in self.queue if r.id == str(message.get("id"))]
            if target is not None:
                target.kill_waiters.append(conn)
                self._request_kill(target)
            else:
                for request in queued:
                    self.queue.remove(request)
                    self._finish_unstarted(request, "cancelled before it started")
                self._answer(conn, {"killed": bool(queued), "id": message.get("id")})
        elif op == "run" and (changed := _changed(self.sources)):
            # The project's code changed since the preload: a child would run the old code. Make way for a new
            # service (running nodes finish here first) and tell the client to ask again.
            log.info("project code changed (%s): retiring this service", ", ".join(changed[:3]))
            self._retire(conn, changed)
        elif op == "run":
            request = Request(
                id=str(message.get("id") or f"request-{self.served + len(self.queue) + 1}"),
                conn=conn,
                module=str(message["module"]),
                args=[str(a) for a in message.get("args", [])],
                env={str(k): str(v) for k, v in message.get("env", {}).items()},
                cwd=str(message.get("cwd") or os.getcwd()),
            )
            if self.stopping:
                self._finish_unstarted(request, "the warm runtime service is stopping")
            elif len(self.running) >= self.max_parallel:
                _send(conn, f"[warm runtime] {len(self.running)} nodes running (limit {self.max_parallel}): waiting\n")
                self.queue.append(request)
            else:
                self._start(request)
        else:
            self._answer(conn, {"error": f"unknown op {op!r}"})

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "python": sys.executable,
            "preloaded": self.preloaded,
            "running": sorted(self.running),
            "queued": [r.id for r in self.queue],
            "max_parallel": self.max_parallel,
            "served": self.served,
        }

    @staticmethod
    def _answer(conn: socket.socket, payload: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            conn.sendall((json.dumps(payload) + "\n").encode())
        conn.close()

    # --- children ----------------------------------------------------------------------------------------

    def _start(self, request: Request) -> None:
        waited = time.monotonic() - request.queued_at
        if waited > 0.5:
            _send(request.conn, f"[warm runtime] started after waiting {waited:.1f} s for a free slot\n")
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _child(request, self)
        request.pid = pid
        try:
            request.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            request.pidfd = None
        self.running[request.id] = request
        self.served += 1
        log.info("request %s: pid %d runs -m %s %s", request.id, pid, request.module, " ".join(request.args[:4]))

    def _on_client_input(self, request: Request) -> None:
        """The client sent ``kill`` on its connection, or closed it (task killed): end the node."""
        try:
            data = request.conn.recv(4096, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            request.client_gone = True
        if not data or b"kill" in data:
            log.info("request %s: %s: killing its process group", request.id, "kill" if data else "client gone")
            self._request_kill(request)

    def _request_kill(self, request: Request) -> None:
        if request.kill_deadline is None:
            request.kill_deadline = time.monotonic() + KILL_GRACE_SECONDS
            self._kill_group(request, signal.SIGTERM)

    @staticmethod
    def _kill_group(request: Request, sig: int) -> None:
        if request.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(request.pid, sig)

    def _reap(self, request: Request, *, block: bool = True) -> None:
        assert request.pid is not None
        try:
            pid, status = os.waitpid(request.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            pid, status = request.pid, 0
        if pid == 0:
            return
        # Whatever the node started and left behind goes with it, as a cold process group would on cancel.
        self._kill_group(request, signal.SIGKILL)
        returncode = os.waitstatus_to_exitcode(status)
        if request.pidfd is not None:
            os.close(request.pidfd)
        del self.running[request.id]
        trailer = {"returncode": returncode, "pid": pid, "killed": request.kill_deadline is not None}
        _send(request.conn, EXIT_MARKER + json.dumps(trailer) + "\n")
        request.conn.close()
        for waiter in request.kill_waiters:
            self._answer(waiter, {"killed": True, "id": request.id, "returncode": returncode})
        log.info("request %s: pid %d exited with %d", request.id, pid, returncode)

    def _finish_unstarted(self, request: Request, reason: str) -> None:
        _send(request.conn, f"[warm runtime] {reason}\n")
        _send(request.conn, EXIT_MARKER + json.dumps({"returncode": -int(signal.SIGTERM), "killed": True}) + "\n")
        request.conn.close()


def _child(request: Request, server: WarmServer) -> None:
    """In the forked child: become a clean ``python -m MODULE ARGS`` process, run it, exit with its code."""
    code = 1
    try:
        os.setsid()  # its own process group: cancelling kills the node and everything it starts
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        conn_fd = request.conn.fileno()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(conn_fd, 1)
        os.dup2(conn_fd, 2)
        os.close(devnull)
        server.listener.close()
        for other in list(server.running.values()) + list(server.queue):
            with contextlib.suppress(OSError):
                other.conn.close()
            if other.pidfd is not None:
                with contextlib.suppress(OSError):
                    os.close(other.pidfd)
        request.conn.close()
        # Unbuffered text streams on the new fd 1 and 2, as PYTHONUNBUFFERED gives a cold process.
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = io.TextIOWrapper(open(1, "wb", 0, closefd=False), write_through=True, line_buffering=True)  # noqa: SIM115
        sys.stderr = io.TextIOWrapper(open(2, "wb", 0, closefd=False), write_through=True, line_buffering=True)  # noqa: SIM115
        root = logging.getLogger()
        for handler in list(root.handlers):  # the server's own log handler: the node configures its own
            root.removeHandler(handler)
        logging.getLogger("runway.warm").handlers.clear()
        if request.env:  # exactly the environment a cold process would get
            os.environ.clear()
            os.environ.update(request.env)
        os.chdir(request.cwd)
        _reseed()
        sys.argv = [request.module, *request.args]
        sys.modules.pop(f"{request.module}.__main__", None)  # runpy runs it afresh, as `python -m` does
        try:
            runpy.run_module(request.module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            if exit_.code is not None and not isinstance(exit_.code, int):
                print(exit_.code, file=sys.stderr)
        except BaseException as error:  # as a cold interpreter would: traceback (from the module down), exit 1
            frames = error.__traceback__
            while frames is not None and frames.tb_frame.f_code.co_filename in (__file__, runpy.__file__):
                frames = frames.tb_next
            traceback.print_exception(type(error), error, frames)
            code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
            # The node's own exit code, in case the server is gone when the node ends (the server's trailer,
            # written after the child is reaped, follows and is the one the client keeps).
            os.write(1, (EXIT_MARKER + json.dumps({"returncode": code, "from": "child"}) + "\n").encode())
        os._exit(code)


def _project_sources() -> dict[str, float]:
    """Modification times of the loaded modules that are not installed libraries (the project's own code)."""
    libraries = tuple({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
    sources: dict[str, float] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py") or os.path.realpath(path).startswith(libraries):
            continue
        with contextlib.suppress(OSError):
            sources[path] = os.stat(path).st_mtime
    return sources


def _changed(sources: dict[str, float]) -> list[str]:
    changed = []
    for path, mtime in sources.items():
        try:
            if os.stat(path).st_mtime != mtime:
                changed.append(os.path.basename(path))
        except OSError:
            changed.append(os.path.basename(path))
    return changed


def _same_inode(path: str, inode: int | None) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def _reseed() -> None:
    """Children of one parent would share its random state; a cold process starts with fresh seeds."""
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _read_line(conn: socket.socket, limit: int = 16 * 1024 * 1024) -> str:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(65536, socket.MSG_PEEK)
        if not chunk:
            raise ValueError("connection closed before a request line")
        newline = chunk.find(b"\n")
        take = len(chunk) if newline < 0 else newline + 1
        chunks.append(conn.recv(take))
        size += take
        if newline >= 0:
            return b"".join(chunks).decode()
        if size > limit:
            raise ValueError("request line too long")


def _peek_alive(conn: socket.socket) -> bool:
    try:
        return bool(conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return True
    except OSError:
        return False


def _send(conn: socket.socket, text: str) -> None:
    try:
        conn.sendall(text.encode())
    except OSError as err:
        if err.errno not in (errno.EPIPE, errno.ECONNRESET, errno.EBADF):
            raise


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline_components.runtime.warm", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="preload the runtime and serve node requests on a Unix socket")
    s.add_argument("--socket", required=True, help="socket path (its folder must be owner-only)")
    s.add_argument("--max-parallel", type=int, default=os.cpu_count() or 1)
    s.add_argument("--pidfile", help="write this server's pid here (removed when it stops)")
    s.add_argument("--idle-timeout", type=float, default=0.0, help="stop after this many idle seconds (0: never)")
    s.add_argument(
        "--preload",
        default=os.environ.get("RUNWAY_WARM_PRELOAD", ",".join(DEFAULT_PRELOAD)),
        help="comma-separated modules to import once (default: TFX, TensorFlow, TFDV, TFMA, Beam, the node runner)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    folder = os.path.dirname(args.socket)
    mode = os.stat(folder).st_mode & 0o777
    if mode & 0o077:
        print(f"error: {folder} is readable by others (mode {mode:o}); it must be 0700", file=sys.stderr)
        return 2
    modules = [m for m in args.preload.split(",") if m.strip()]
    start = time.monotonic()
    # Beam logs one line per unsupported type hint at import: noise in the service's log.
    logging.getLogger("apache_beam.typehints").setLevel(logging.WARNING)
    preloaded = preload(modules)
    log.info("preloaded %d modules in %.1f s: %s", len(modules), time.monotonic() - start, preloaded)
    server = WarmServer(
        socket_path=args.socket,
        max_parallel=args.max_parallel,
        preloaded=preloaded,
        idle_timeout=args.idle_timeout,
        pidfile=args.pidfile,
    )
    server.bind()
    server.serve_forever()
    return 0
