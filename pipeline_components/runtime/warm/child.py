"""In a forked child of the warm runtime service: become a clean ``python -m MODULE ARGS`` process and run it.

The child is what a cold interpreter would be, minus the imports: its own process group, default signal
handlers, stdin from /dev/null, stdout and stderr on the request's connection (unbuffered, so lines reach the task
log as they are written), the request's environment and working directory, fresh random seeds. The module runs
through ``runpy`` exactly as ``python -m`` runs it, and the child ends with ``os._exit`` and the module's code.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import runpy
import signal
import socket
import sys
import traceback
from dataclasses import dataclass

from pipeline_components.warm_protocol import trailer


@dataclass(frozen=True, kw_only=True)
class NodeProcess:
    """What the child runs: the module and its arguments, environment and working directory."""

    module: str
    args: list[str]
    env: dict[str, str]
    cwd: str


def become_node(node: NodeProcess, *, conn: socket.socket, inherited: list[socket.socket | int]) -> None:
    """Run ``node`` in this (forked) process with fd 1 and 2 on ``conn``; never returns.

    Args:
        node: the module to run and how.
        conn: the request's connection: the node's stdout and stderr.
        inherited: the service's other descriptors (listener, other requests' connections and pidfds), closed
            here so that a node never holds another node's connection open.
    """
    code = 1
    try:
        os.setsid()  # its own process group: cancelling kills the node and everything it starts
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(conn.fileno(), 1)
        os.dup2(conn.fileno(), 2)
        os.close(devnull)
        for item in [*inherited, conn]:
            with contextlib.suppress(OSError):
                item.close() if isinstance(item, socket.socket) else os.close(item)
        # Unbuffered text streams on the new fd 1 and 2, as PYTHONUNBUFFERED gives a cold process.
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = io.TextIOWrapper(open(1, "wb", 0, closefd=False), write_through=True, line_buffering=True)  # noqa: SIM115
        sys.stderr = io.TextIOWrapper(open(2, "wb", 0, closefd=False), write_through=True, line_buffering=True)  # noqa: SIM115
        root = logging.getLogger()
        for handler in list(root.handlers):  # the service's own log handler: the node configures its own
            root.removeHandler(handler)
        logging.getLogger("runway.warm").handlers.clear()
        if node.env:  # exactly the environment a cold process would get
            os.environ.clear()
            os.environ.update(node.env)
        os.chdir(node.cwd)
        _reseed()
        code = _run_module(node)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
            # The node's own exit code, in case the service is gone when the node ends (the service's trailer,
            # written after the child is reaped, follows and is the one the client keeps).
            os.write(1, trailer({"returncode": code, "from": "child"}).encode())
        os._exit(code)


def _run_module(node: NodeProcess) -> int:
    """``python -m MODULE ARGS`` in this process; its exit code as a cold interpreter would report it."""
    sys.argv = [node.module, *node.args]
    sys.modules.pop(f"{node.module}.__main__", None)  # runpy runs it afresh, as `python -m` does
    try:
        runpy.run_module(node.module, run_name="__main__", alter_sys=True)
        return 0
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)
        return 1
    except BaseException as error:  # as a cold interpreter would: traceback (from the module down), exit 1
        frames = error.__traceback__
        while frames is not None and frames.tb_frame.f_code.co_filename in (__file__, runpy.__file__):
            frames = frames.tb_next
        traceback.print_exception(type(error), error, frames)
        return 1


def _reseed() -> None:
    """Children of one parent would share its random state; a cold process starts with fresh seeds."""
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
