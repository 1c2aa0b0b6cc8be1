"""The warm runtime's wire protocol and its private folder: what the service and its client agree on.

The service (``pipeline_components/runtime/warm``, runtime environment) and its client
(``pipeline_components/orchestration/warm_service.py`` and ``warm_runner.py``, orchestrator environment) both
import this module, which imports neither side and no TensorFlow: only the standard library and the errors.

One connection carries one request: the client sends one JSON line, ``{"op": OP, ...}``.

- ``ping`` -> one JSON line: pid, python, preloaded modules, running and queued requests, limit.
- ``run`` (``run_message``) -> the child's stdout and stderr, raw, as they are written (the connection *is* the
  child's fd 1 and 2), then one trailer line (``trailer``): ``EXIT_MARKER {"returncode": N, ...}``. Only the
  project's own entry points (``ENTRY_POINTS``) run; any other module gets a trailer with ``"error"`` and no
  returncode, and nothing runs. Closing the connection early kills the child's process group.
- ``kill`` -> kills that request's process group, answers one JSON line once it is gone.
- ``stop`` -> kills running children, answers, removes the socket and exits.

The socket lives in a private runtime folder (``check_private_folder``): owned by the user, mode 0700, never on
the shared ``$RUNWAY_HOME`` volume; the socket itself is 0600 and the service drops any peer whose uid
(``peer_credentials``, ``SO_PEERCRED``) is not its own.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import struct
from enum import StrEnum
from pathlib import Path
from typing import Any

from pipeline_components.errors import RunwayError

EXIT_MARKER = "\x1eRUNWAY_WARM_EXIT "
# The modules a ``run`` request may name: runway's runtime commands (``run-node`` for every TFX node, and the
# summaries, ``predict`` and ``report`` of the CLI's bridge to the runtime). Nothing else is ever run.
ENTRY_POINTS: tuple[str, ...] = ("pipeline_components.runtime",)
MAX_REQUEST_LINE = 16 * 1024 * 1024
MAX_UNIX_PATH = 100  # sun_path is 108 bytes on Linux


class Op(StrEnum):
    PING = "ping"
    RUN = "run"
    KILL = "kill"
    STOP = "stop"


class WarmRuntimeUnavailable(RunwayError):
    """The warm runtime service could not be started or reached; the node runs in a cold process instead."""


class UnsafeRuntimeFolderError(WarmRuntimeUnavailable):
    """The warm runtime's folder (where its socket lives) is not private to this user, so it is not used."""


def run_message(*, request_id: str, module: str, args: list[str], env: dict[str, str], cwd: str) -> dict[str, Any]:
    """The ``run`` request: run ``python -m MODULE ARGS`` with this environment and working directory."""
    return {"op": Op.RUN.value, "id": request_id, "module": module, "args": args, "env": env, "cwd": cwd}


def refusal(module: str, allowed: tuple[str, ...] = ENTRY_POINTS) -> str:
    """The error of a ``run`` request for a module that is not one of the service's entry points."""
    return (
        f"the warm runtime runs only runway's own entry points ({', '.join(allowed)}), not {module!r}; "
        "run anything else in a process of your own"
    )


def trailer(payload: dict[str, Any]) -> str:
    """The last line of a ``run`` answer: the exit status (``returncode``: None when the node did not run)."""
    return EXIT_MARKER + json.dumps(payload) + "\n"


def split_trailer(line: str) -> tuple[str, dict[str, Any] | None]:
    """``(output before the marker, trailer payload)`` of one line; no marker: ``(line, None)``."""
    if EXIT_MARKER not in line:
        return line, None
    text, _, payload = line.partition(EXIT_MARKER)
    try:
        return text, json.loads(payload)
    except ValueError:
        return text, None


def read_line(conn: socket.socket, limit: int = MAX_REQUEST_LINE) -> str:
    """One request line, read without consuming anything after its newline (the rest belongs to the request).

    Raises:
        ValueError: the peer closed before a newline, or the line exceeds ``limit`` bytes.
    """
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


def send(conn: socket.socket, text: str) -> None:
    """Send ``text``; a peer that is gone is not an error (its request ends anyway)."""
    try:
        conn.sendall(text.encode())
    except OSError as err:
        if err.errno not in (errno.EPIPE, errno.ECONNRESET, errno.EBADF):
            raise


def answer(conn: socket.socket, payload: dict[str, Any]) -> None:
    """Send one JSON line and close the connection."""
    with contextlib.suppress(OSError):
        send(conn, json.dumps(payload) + "\n")
    conn.close()


def request(path: Path, message: dict[str, Any], *, timeout: float) -> dict[str, Any]:
    """Send one request and return its one-line JSON answer (``ping``, ``kill``, ``stop``).

    Raises:
        OSError: nothing listens at ``path``, or no answer within ``timeout`` seconds.
        ValueError: the answer is not JSON (e.g. the service closed the connection without one).
    """
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
    reply: dict[str, Any] = json.loads(data)
    return reply


def peer_credentials(conn: socket.socket) -> tuple[int, int]:
    """``(pid, uid)`` of the process at the other end of a Unix socket, as the kernel recorded it at connect."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    return pid, uid


def check_private_folder(folder: Path) -> None:
    """Refuse a socket folder that another user owns or may enter (they could connect, or replace the socket).

    Raises:
        UnsafeRuntimeFolderError: what is wrong with it and what to do.
    """
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        raise UnsafeRuntimeFolderError(f"the warm runtime's folder {folder} does not exist") from None
    problem = None
    if not stat.S_ISDIR(info.st_mode):
        problem = "not a folder (a symlink or a file)"
    elif info.st_uid != os.getuid():
        problem = f"owned by uid {info.st_uid}, not by this user (uid {os.getuid()})"
    elif info.st_mode & 0o077:
        problem = f"open to others (mode {stat.S_IMODE(info.st_mode):04o})"
    if problem:
        raise UnsafeRuntimeFolderError(
            f"the warm runtime's folder {folder} is {problem}; it must be a folder of uid {os.getuid()} with mode "
            f"0700, since whoever can enter it can reach the service's socket. Remove it (rm -r {folder}) or point "
            "XDG_RUNTIME_DIR at a private folder of yours; until then nodes run in cold processes"
        )
