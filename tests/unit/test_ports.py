"""Free ports for the servers the project and its tests start (pipeline_components/ports.py)."""

from __future__ import annotations

import socket

import pytest

from pipeline_components import ports
from pipeline_components.ports import _ephemeral_start, free_base_port, free_ports


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    # An ephemeral port can be taken by any outgoing connection before a slow server binds it (CI saw a model server
    # fail with "Address already in use" on one): none is handed out.
    found = free_ports(6)
    assert len(set(found)) == 6 and all(port < _ephemeral_start() for port in found)
    held = []
    try:
        for port in found:
            held.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            held[-1].bind(("127.0.0.1", port))
    finally:
        for sock in held:
            sock.close()


def test_a_base_port_leaves_every_offset_free_and_skips_a_taken_one(monkeypatch: pytest.MonkeyPatch) -> None:
    base = free_base_port([0, 1, 10, 11])
    assert base + 11 < _ephemeral_start()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", base + 10))
        taken.listen()
        draws = iter([base, base + 100])  # the first block drawn holds the taken port: the next one is given
        monkeypatch.setattr(ports.random, "randrange", lambda *_: next(draws))
        assert free_base_port([0, 1, 10, 11]) == base + 100
