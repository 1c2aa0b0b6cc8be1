"""The service's listening socket and pid file: created owner-only, removed only while they are still its own."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

from pipeline_components.durable import atomic_write


class Listener:
    """A Unix socket at ``path`` (0600), and this process's pid in ``pidfile`` while it listens."""

    def __init__(self, path: str, *, pidfile: str | None = None) -> None:
        self.path = path
        self.pidfile = pidfile
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._inode: int | None = None

    def bind(self) -> None:
        """Replace whatever is at ``path`` with this socket, record the pid, and listen (non-blocking)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        old_umask = os.umask(0o177)  # the socket file is created 0600: only this user may connect
        try:
            self.sock.bind(self.path)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        self._inode = os.stat(self.path).st_ino
        if self.pidfile:
            atomic_write(self.pidfile, f"{os.getpid()}\n", mode=0o600)
        self.sock.listen(64)
        self.sock.setblocking(False)

    def still_ours(self) -> bool:
        """Whether ``path`` is still this socket (a new service, or someone, may have replaced or removed it)."""
        try:
            return os.stat(self.path).st_ino == self._inode
        except OSError:
            return False

    def withdraw(self) -> None:
        """Stop listening; remove the socket and the pid file if they are still this service's."""
        if self.sock.fileno() >= 0:
            self.sock.close()
        if self.still_ours():
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        with contextlib.suppress(OSError, ValueError):
            if self.pidfile and int(Path(self.pidfile).read_text().strip()) == os.getpid():
                os.unlink(self.pidfile)
