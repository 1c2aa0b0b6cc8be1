"""The warm runtime service's event loop: accept requests, fork a child per node, relay each child's exit.

A single thread runs a ``select`` loop over the listening socket, the running requests' connections and their
children's pidfds. Each ``run`` request for one of the service's entry points (``warm_protocol.ENTRY_POINTS``)
gets a forked child (``child.become_node``) as soon as fewer than ``max_parallel`` run; later ones wait in order
(their log says so). A connection from a process of another user (``SO_PEERCRED``) is closed unanswered. The
parent never runs a TensorFlow op, opens ML Metadata or starts a Beam pipeline: it only forks.

The wire protocol (message shapes, the exit trailer, the op names) is ``pipeline_components.warm_protocol``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from pipeline_components.runtime.warm.child import NodeProcess, become_node
from pipeline_components.runtime.warm.freshness import changed_sources, project_sources
from pipeline_components.runtime.warm.listener import Listener
from pipeline_components.warm_protocol import (
    ENTRY_POINTS,
    Op,
    answer,
    peer_credentials,
    read_line,
    refusal,
    send,
    trailer,
)

KILL_GRACE_SECONDS = 10.0
log = logging.getLogger("runway.warm")


@dataclass
class Request:
    id: str
    conn: socket.socket
    node: NodeProcess
    queued_at: float = field(default_factory=time.monotonic)
    pid: int | None = None
    pidfd: int | None = None
    kill_deadline: float | None = None
    client_gone: bool = False
    kill_waiters: list[socket.socket] = field(default_factory=list)


class WarmServer:
    """One service: a listening socket, the running and queued requests, and their children."""

    def __init__(
        self,
        *,
        socket_path: str,
        max_parallel: int,
        preloaded: dict[str, float],
        idle_timeout: float = 0.0,
        pidfile: str | None = None,
        entry_points: tuple[str, ...] = ENTRY_POINTS,
    ) -> None:
        self.listener = Listener(socket_path, pidfile=pidfile)
        self.entry_points = entry_points
        self.sources = project_sources()
        self.max_parallel = max(1, max_parallel)
        self.idle_timeout = idle_timeout
        self.last_active = time.monotonic()
        self.preloaded = preloaded
        self.running: dict[str, Request] = {}
        self.queue: collections.deque[Request] = collections.deque()
        self.stopping = False
        self.served = 0

    # --- lifecycle ---------------------------------------------------------------------------------------

    def bind(self) -> None:
        self.listener.bind()

    def serve_forever(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        log.info("serving on %s (max %d nodes in parallel, pid %d)", self.listener.path, self.max_parallel, os.getpid())
        try:
            while not (self.stopping and not self.running):
                self._tick()
        finally:
            self.close()

    def close(self) -> None:
        for request in list(self.running.values()):
            self._kill_group(request, signal.SIGKILL)
        self.listener.withdraw()
        log.info("stopped after %d requests", self.served)

    def _on_term(self, signum: int, frame: Any) -> None:
        self._begin_stop()

    def _retire(self, conn: socket.socket, changed: list[str]) -> None:
        stale = trailer({"returncode": None, "stale": changed[:5]})
        for waiting in [conn, *(r.conn for r in self.queue)]:
            send(waiting, stale)
            waiting.close()
        self.queue.clear()
        self.stopping = True
        self.listener.withdraw()

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
        readable: list[Any] = [] if self.stopping else [self.listener.sock]
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
            if item is self.listener.sock:
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
        elif not self.stopping and not self.listener.still_ours():
            log.info("socket %s was removed: stopping", self.listener.path)
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
            conn, _ = self.listener.sock.accept()
        except BlockingIOError:
            return
        peer_pid, peer_uid = peer_credentials(conn)
        if peer_uid != os.getuid():
            # The socket is 0600 in a 0700 folder: this check still holds if either is ever loosened by mistake.
            log.warning(
                "refused a connection from pid %d, uid %d: only uid %d may connect", peer_pid, peer_uid, os.getuid()
            )
            conn.close()
            return
        conn.setblocking(True)
        conn.settimeout(5.0)
        try:
            message = json.loads(read_line(conn))
        except (OSError, ValueError) as err:
            log.warning("dropping a connection with an unreadable request: %s", err)
            conn.close()
            return
        conn.settimeout(None)
        self._dispatch(conn, message)

    def _dispatch(self, conn: socket.socket, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == Op.PING:
            answer(conn, self.status())
        elif op == Op.STOP:
            answer(conn, {"stopping": True, "running": sorted(self.running)})
            self._begin_stop()
        elif op == Op.KILL:
            self._kill_by_id(conn, str(message.get("id")))
        elif op == Op.RUN and str(message.get("module")) not in self.entry_points:
            module = str(message.get("module"))
            log.warning("refused to run module %r: not one of %s", module, ", ".join(self.entry_points))
            send(conn, trailer({"returncode": None, "error": refusal(module, self.entry_points)}))
            conn.close()
        elif op == Op.RUN and (changed := changed_sources(self.sources)):
            # The project's code changed since the preload: a child would run the old code. Make way for a new
            # service (running nodes finish here first) and tell the client to ask again.
            log.info("project code changed (%s): retiring this service", ", ".join(changed[:3]))
            self._retire(conn, changed)
        elif op == Op.RUN:
            self._enqueue(conn, message)
        else:
            answer(conn, {"error": f"unknown op {op!r}; known: {[o.value for o in Op]}"})

    def _enqueue(self, conn: socket.socket, message: dict[str, Any]) -> None:
        request = Request(
            id=str(message.get("id") or f"request-{self.served + len(self.queue) + 1}"),
            conn=conn,
            node=NodeProcess(
                module=str(message["module"]),
                args=[str(a) for a in message.get("args", [])],
                env={str(k): str(v) for k, v in message.get("env", {}).items()},
                cwd=str(message.get("cwd") or os.getcwd()),
            ),
        )
        if self.stopping:
            self._finish_unstarted(request, "the warm runtime service is stopping")
        elif len(self.running) >= self.max_parallel:
            send(conn, f"[warm runtime] {len(self.running)} nodes running (limit {self.max_parallel}): waiting\n")
            self.queue.append(request)
        else:
            self._start(request)

    def _kill_by_id(self, conn: socket.socket, request_id: str) -> None:
        target = self.running.get(request_id)
        if target is not None:
            target.kill_waiters.append(conn)  # answered once the node's process group is gone
            self._request_kill(target)
            return
        queued = [r for r in self.queue if r.id == request_id]
        for request in queued:
            self.queue.remove(request)
            self._finish_unstarted(request, "cancelled before it started")
        answer(conn, {"killed": bool(queued), "id": request_id})

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "python": sys.executable,
            "preloaded": self.preloaded,
            "running": sorted(self.running),
            "queued": [r.id for r in self.queue],
            "max_parallel": self.max_parallel,
            "served": self.served,
            "entry_points": list(self.entry_points),
        }

    # --- children ----------------------------------------------------------------------------------------

    def _start(self, request: Request) -> None:
        waited = time.monotonic() - request.queued_at
        if waited > 0.5:
            send(request.conn, f"[warm runtime] started after waiting {waited:.1f} s for a free slot\n")
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            others = [r for r in [*self.running.values(), *self.queue] if r is not request]
            inherited: list[socket.socket | int] = [self.listener.sock, *(r.conn for r in others)]
            inherited += [r.pidfd for r in others if r.pidfd is not None]
            become_node(request.node, conn=request.conn, inherited=inherited)
        request.pid = pid
        try:
            request.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            request.pidfd = None
        self.running[request.id] = request
        self.served += 1
        node = request.node
        log.info("request %s: pid %d runs -m %s %s", request.id, pid, node.module, " ".join(node.args[:4]))

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
        send(request.conn, trailer({"returncode": returncode, "pid": pid, "killed": request.kill_deadline is not None}))
        request.conn.close()
        for waiter in request.kill_waiters:
            answer(waiter, {"killed": True, "id": request.id, "returncode": returncode})
        log.info("request %s: pid %d exited with %d", request.id, pid, returncode)

    def _finish_unstarted(self, request: Request, reason: str) -> None:
        send(request.conn, f"[warm runtime] {reason}\n")
        send(request.conn, trailer({"returncode": -int(signal.SIGTERM), "killed": True}))
        request.conn.close()


def _peek_alive(conn: socket.socket) -> bool:
    try:
        return bool(conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return True
    except OSError:
        return False
