"""`runway airflow standalone`, as the README says to start the UI: the real command and the real Airflow components,
from a shell whose PATH does not hold the orchestrator environment's `bin` (a fresh clone).

It prints how to log in once the UI answers; when a component dies it stops the others and exits non-zero naming
that component; on SIGTERM it stops every component. Either way no process of Airflow's is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from pipeline_components.orchestration.standalone import COMPONENTS
from pipeline_components.ports import free_ports

pytestmark = pytest.mark.e2e

RUNWAY = Path(sys.executable).parent / "runway"
LOGIN = "runway: log in as admin, password "


@dataclass
class Standalone:
    process: subprocess.Popen[bytes]
    output: Path
    port: int
    home: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_for(self, what: str, done: object, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():  # type: ignore[operator]
            assert self.process.poll() is None, (
                f"exited ({self.process.returncode}) before {what}:\n{self.text()[-3000:]}"
            )
            assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s: {what}\n{self.text()[-3000:]}"
            time.sleep(0.5)

    def components(self) -> dict[str, psutil.Process]:
        """The Airflow components it started: component name -> process (each leads its own process group)."""
        found = {}
        for child in psutil.Process(self.process.pid).children():
            # [python, .../bin/airflow, COMPONENT]; the API server renames itself (e.g. "airflow api_server ...")
            command = " ".join(child.cmdline()).replace("_", "-")
            names = [name for name in COMPONENTS if name in command]
            assert len(names) == 1, f"not one Airflow component: {child.cmdline()}"
            found[names[0]] = child
        return found


def _ui_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/version", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@pytest.fixture
def standalone(tmp_path: Path) -> Iterator[Standalone]:
    (port,) = free_ports(1)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RUNWAY_"))},
        "PATH": "/usr/bin:/bin",  # no .venv/bin: what a fresh clone's shell has
        "RUNWAY_HOME": str(tmp_path / "home"),
        "RUNWAY_WARM_RUNTIME": "off",  # a service of its own, not one of Airflow's components
        "AIRFLOW__API__PORT": str(port),
    }
    output = tmp_path / "standalone.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(RUNWAY), "airflow", "standalone"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Standalone(process, output, port, tmp_path / "home")
    try:
        running.wait_for("the UI's port and the login", lambda: _ui_answers(port) and LOGIN in running.text(), 300)
        yield running
    finally:
        if process.poll() is None:  # a failed test: leave nothing behind for the next one
            for child in psutil.Process(process.pid).children():
                with_group = os.getpgid(child.pid)
                os.killpg(with_group, signal.SIGKILL)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _left_behind(groups: set[int]) -> list[str]:
    left = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if os.getpgid(process.pid) in groups and process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{process.pid}: {' '.join(process.info['cmdline'] or [])}")
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return left


def test_it_prints_the_login_and_exits_naming_a_component_that_died(standalone: Standalone) -> None:
    components = standalone.components()
    assert set(components) == {"api-server", "scheduler", "dag-processor", "triggerer"} == set(COMPONENTS)
    passwords = json.loads((standalone.home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())
    assert f"{LOGIN}{passwords['admin']} " in standalone.text()  # what an operator types to log in
    groups = {os.getpgid(process.pid) for process in components.values()}

    components["scheduler"].kill()

    code = standalone.process.wait(timeout=90)
    assert code != 0
    assert "Airflow's scheduler was killed by signal 9; the other components were stopped" in standalone.text()
    assert _left_behind(groups) == []


def test_sigterm_stops_every_component(standalone: Standalone) -> None:
    groups = {os.getpgid(process.pid) for process in standalone.components().values()}
    assert len(groups) == 4

    standalone.process.send_signal(signal.SIGTERM)

    assert standalone.process.wait(timeout=90) == 143
    assert _left_behind(groups) == []
