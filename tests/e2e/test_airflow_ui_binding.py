"""`runway airflow ...` starts Airflow's UI and REST API on loopback only, unless the operator says otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipeline_components.ports import free_ports
from pipeline_components.settings import CHECKOUT

pytestmark = pytest.mark.e2e


def _listening_addresses(port: int) -> set[str]:
    """The local IPv4/IPv6 addresses with a socket listening on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_api_server_listens_on_loopback_only(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNWAY_", "AIRFLOW"))}
    env["RUNWAY_HOME"] = str(tmp_path / "home")
    log = (tmp_path / "api-server.log").open("w")
    server = subprocess.Popen(
        [str(CHECKOUT / ".venv" / "bin" / "runway"), "airflow", "api-server", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (addresses := _listening_addresses(port)):
            assert server.poll() is None, (tmp_path / "api-server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the API server did not listen within 120 s"
            time.sleep(0.5)
        # 0100007F is 127.0.0.1 in /proc's byte order; 00000000 (0.0.0.0) or :: would be every interface.
        assert addresses == {"0100007F"}, f"listening on {addresses}, not on loopback only"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
