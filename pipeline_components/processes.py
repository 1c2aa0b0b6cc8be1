"""Small process helpers both environments use (standard library only): is a pid alive, what is it and what did
it start, stop it, wait for a condition, the end of a log file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path


def pid_alive(pid: int | None) -> bool:
    """Whether process ``pid`` is running; a zombie (exited, waiting for its parent to reap it) is not.

    Args:
        pid: a process id; None or 0 is never alive.

    Returns:
        True while the process runs, also when it belongs to another user.
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:  # it ended between the two looks
        return False
    except OSError:  # no /proc here: the signal check is all there is
        return True
    return state != "Z"


def descendants(pid: int) -> set[int]:
    """Every live process whose chain of parents reaches ``pid`` (read from /proc; empty without it)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def command_line(pid: int) -> str:
    """The command line of ``pid``, arguments joined by spaces; empty when it cannot be read."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_pid(pid: int | None, *, kill: bool = False, timeout_s: float = 15.0) -> None:
    """SIGTERM ``pid`` (SIGKILL with ``kill``), SIGKILL it if it is still alive after ``timeout_s``; reap it if it
    is our child."""
    if not pid or not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_for(lambda: _reaped_or_gone(pid), timeout=timeout_s, interval=0.1):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), timeout=5.0, interval=0.1)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _reaped_or_gone(pid: int) -> bool:
    _reap(pid)  # our own child stays a zombie (alive to kill -0) until reaped
    return not pid_alive(pid)


def wait_for(condition: Callable[[], object], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds have passed.

    Args:
        condition: checked at once, then every ``interval`` seconds.
        timeout: the deadline, in seconds from now.
        interval: seconds between two checks.

    Returns:
        Whether the condition held before the deadline (it is checked once more at the deadline).
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(interval)
    return True


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file, or ``(no log)`` when it cannot be read."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
