"""Free TCP ports on this machine (standard library only: both environments import it)."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

# Ports are chosen below the kernel's ephemeral range: a port from it can be taken, between the choice and the
# server's bind, by the local end of any outgoing connection (a server that binds seconds later, after importing
# TensorFlow, then fails with "Address already in use").
_LOWEST = 20000


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free TCP ports below the ephemeral range, checked all bound at once.

    Raises:
        OSError: none found after many tries (the range is nearly full).
    """
    return _find(host, lambda top: random.sample(range(_LOWEST, top), count), top=_top(0))


def free_base_port(offsets: Sequence[int], host: str = "127.0.0.1") -> int:
    """A port ``base`` below the ephemeral range with ``base + offset`` free for every offset (a local fleet's
    instances listen on ``base + 10 i`` and ``base + 10 i + 1``: ``runway fleet up --instance-base-port``).

    Raises:
        OSError: none found after many tries.
    """

    def draw(top: int) -> list[int]:
        base = random.randrange(_LOWEST, top)
        return [base + offset for offset in offsets]

    return _find(host, draw, top=_top(max(offsets, default=0)))[0] - offsets[0]


def _top(span: int) -> int:
    return max(_ephemeral_start(), _LOWEST + 1000) - span - 1


def _find(host: str, draw: Callable[[int], list[int]], *, top: int) -> list[int]:
    for _ in range(200):
        ports = draw(top)
        sockets: list[socket.socket] = []
        try:
            for port in ports:
                sockets.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                sockets[-1].bind((host, port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return ports
    raise OSError(f"no free ports between {_LOWEST} and {top} on {host} after 200 tries")


def port_free(host: str, port: int) -> bool:
    """Whether a server could bind ``host:port`` now (a port in TIME_WAIT counts as free: servers bind with
    SO_REUSEADDR, and so does this probe)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
