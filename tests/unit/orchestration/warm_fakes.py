"""The warm runtime with light parts, for the protocol-level tests (``test_warm_runtime*.py``): the fixture
``fake_env`` (import ``fake_env_fixture``) and helpers.

The service is the real service module run by this environment's interpreter, with a light preload (the standard
library's ``json``) instead of TensorFlow, and one more entry point: ``fake_node``, a small module whose modes
stand for a node that succeeds, crashes, segfaults, exits with a code or runs long (with a grandchild). The
service is started through ``fake_service``, which calls the real ``main`` with ``fake_node`` added to the
project's entry points (the only change to the service: ``main``'s ``entry_points`` argument).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_components.orchestration import warm_service
from pipeline_components.orchestration.runner import NodeCommand, NodeOutcome
from pipeline_components.orchestration.warm_client import ServicePaths, WarmNodeRunner, ping, stop_service
from pipeline_components.settings import Settings

FAKE_NODE = textwrap.dedent("""
    import os, subprocess, sys, time
    mode = sys.argv[1]
    print(f"started pid={os.getpid()} pgid={os.getpgid(0)} var={os.environ.get('NODE_VAR')} cwd={os.getcwd()}",
          flush=True)
    if mode == "ok":
        for i in range(3):
            print(f"out {i}", flush=True)
            print(f"err {i}", file=sys.stderr, flush=True)
        print('RUNWAY_RESULT {"node": "fake", "figures": {"rows": 3}}')
    elif mode == "crash":
        raise RuntimeError("the node broke")
    elif mode == "segfault":
        os.kill(os.getpid(), 11)
    elif mode == "exit":
        sys.exit(int(sys.argv[2]))
    elif mode == "sleep":
        seconds = float(sys.argv[2])
        stamp = sys.argv[3] if len(sys.argv) > 3 else None
        if stamp:
            open(stamp, "a").write(f"{time.time()} start\\n")
        grandchild = subprocess.Popen(["sleep", "300"])
        print(f"grandchild={grandchild.pid}", flush=True)
        time.sleep(seconds)  # a long-running node
        if stamp:
            open(stamp, "a").write(f"{time.time()} end\\n")
        grandchild.kill()
        print("slept", flush=True)
""")
FAKE_SERVICE = textwrap.dedent("""
    import sys
    from pipeline_components.runtime.warm.service import main
    from pipeline_components.warm_protocol import ENTRY_POINTS

    if __name__ == "__main__":
        sys.exit(main(entry_points=(*ENTRY_POINTS, "fake_node")))
""")


@pytest.fixture(name="fake_env")
def fake_env_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A short RUNWAY_HOME, a runtime folder of its own, a light preload, the fake node on the service's path."""
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "fake_node.py").write_text(FAKE_NODE)
    (modules / "fake_service.py").write_text(FAKE_SERVICE)
    monkeypatch.setattr(warm_service, "SERVICE_MODULE", "fake_service")
    monkeypatch.setenv("PYTHONPATH", str(modules))
    monkeypatch.setenv("RUNWAY_WARM_PRELOAD", "json")
    monkeypatch.setenv("RUNWAY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RUNWAY_WARM_START_TIMEOUT", "30")
    monkeypatch.setenv("RUNWAY_WARM_PING_TIMEOUT", "2")
    # Directly under /tmp (pytest's tmp_path is in a 0700 tree): the other-uid test must be able to walk to it.
    runtime_dir = tempfile.mkdtemp(prefix="runway-xdg-", dir="/tmp")
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime_dir)
    settings = Settings.from_env()
    try:
        yield settings
    finally:
        stop_service(settings, timeout=10)
        shutil.rmtree(runtime_dir, ignore_errors=True)


def command(*args: str) -> NodeCommand:
    return NodeCommand(argv=[sys.executable, "-m", "fake_node", *args], env={"NODE_VAR": "seen"})


def run(runner: WarmNodeRunner, *args: str) -> tuple[NodeOutcome, list[str]]:
    lines: list[str] = []
    return runner.run(command(*args), log=lines.append), lines


def service_pid(settings: Settings) -> int:
    status = ping(ServicePaths.for_settings(settings), timeout=2)
    assert status is not None, "the service does not answer"
    return int(status["pid"])


def live_members(pgid: int) -> list[int]:
    """Processes of a process group that are still running (zombies are dead already)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def assert_served_by_a_new_service(settings: Settings, runner: WarmNodeRunner, old: int, said: str) -> None:
    """The next node runs warm, in a service other than ``old``, and its log says ``said``."""
    outcome, lines = run(runner, "ok")
    assert outcome.returncode == 0 and runner.used_warm
    assert any(said in line for line in lines), lines
    assert service_pid(settings) != old
