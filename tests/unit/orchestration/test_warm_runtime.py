"""The warm runtime service and its client, at the protocol level.

The service here is the real service module run by this environment's interpreter with a light preload, and the
"nodes" are a small fake module (``warm_fakes``), so every behaviour (streaming, exit codes, crash, cancel, a killed
or wedged service, parallel requests, fallback) is exercised in seconds. ``test_warm_runtime_security.py`` checks
who may connect and what may run; ``test_warm_runtime_nodes.py`` runs real TFX nodes through it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from pipeline_components.errors import ConfigError
from pipeline_components.orchestration.runner import NodeOutcome
from pipeline_components.orchestration.warm_client import ServicePaths, WarmNodeRunner, WarmSettings, stop_service
from pipeline_components.processes import pid_alive, wait_for
from pipeline_components.settings import Settings
from tests.unit.orchestration.warm_fakes import (
    assert_served_by_a_new_service,
    command,
    fake_env_fixture,  # noqa: F401 - the fixture fake_env
    live_members,
    run,
    service_pid,
)


def test_a_node_runs_in_a_forked_child_with_its_output_streamed(fake_env: Settings) -> None:
    runner = WarmNodeRunner(settings=fake_env, warm=WarmSettings.from_env())
    outcome, lines = run(runner, "ok")
    assert outcome.returncode == 0
    assert runner.used_warm is True
    assert outcome.result == {"node": "fake", "figures": {"rows": 3}}
    assert any("starting the service" in line for line in lines)
    for i in range(3):
        assert f"out {i}" in lines and f"err {i}" in lines
    assert lines.index("out 0") < lines.index("err 0") < lines.index("out 1")  # in the order written
    started = next(line for line in lines if line.startswith("started "))
    fields = dict(part.split("=", 1) for part in started.split()[1:])
    assert fields["pid"] == fields["pgid"], "the child leads its own process group"
    assert int(fields["pid"]) != service_pid(fake_env)
    assert fields["var"] == "seen" and fields["cwd"] == os.getcwd()
    # The socket is the owner's only.
    paths = ServicePaths.for_settings(fake_env)
    assert paths.socket.stat().st_mode & 0o777 == 0o600
    assert paths.folder.stat().st_mode & 0o777 == 0o700
    # A second node reuses the same service.
    pid = service_pid(fake_env)
    outcome, lines = run(runner, "ok")
    assert outcome.returncode == 0 and not any("starting the service" in line for line in lines)
    assert service_pid(fake_env) == pid


@pytest.mark.parametrize(
    ("args", "returncode", "expected_line"),
    [
        pytest.param(("crash",), 1, "RuntimeError: the node broke", id="exception"),
        pytest.param(("segfault",), -signal.SIGSEGV, None, id="segfault"),
        pytest.param(("exit", "3"), 3, None, id="gate-exit-code"),
        pytest.param(("exit", "99"), 99, None, id="skip-exit-code"),
    ],
)
def test_a_failing_node_fails_only_itself(
    fake_env: Settings, args: tuple[str, ...], returncode: int, expected_line: str | None
) -> None:
    runner = WarmNodeRunner(settings=fake_env, warm=WarmSettings.from_env())
    outcome, lines = run(runner, *args)
    assert outcome.returncode == returncode
    if expected_line:
        assert expected_line in lines
        traceback = lines[lines.index("Traceback (most recent call last):") :]
        assert not any("runtime/warm/" in line for line in traceback), "the traceback starts at the node"
    pid = service_pid(fake_env)
    outcome, _ = run(runner, "ok")
    assert outcome.returncode == 0 and service_pid(fake_env) == pid


def _run_in_thread(runner: WarmNodeRunner, *args: str) -> tuple[threading.Thread, dict[str, object]]:
    box: dict[str, object] = {"lines": []}

    def target() -> None:
        lines: list[str] = box["lines"]  # type: ignore[assignment]
        box["outcome"] = runner.run(command(*args), log=lines.append)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def _wait_for_line(box: dict[str, object], prefix: str, timeout: float = 20) -> str:
    def found() -> str | None:
        return next((str(line) for line in list(box["lines"]) if line.startswith(prefix)), None)  # type: ignore[call-overload]

    assert wait_for(found, timeout=timeout), f"no line starting with {prefix!r}: {box['lines']}"
    return str(found())


def test_cancelling_kills_the_node_and_everything_it_started(fake_env: Settings) -> None:
    runner = WarmNodeRunner(settings=fake_env, warm=WarmSettings.from_env())
    thread, box = _run_in_thread(runner, "sleep", "120")
    started = _wait_for_line(box, "started ")
    pgid = int(started.split("pgid=")[1].split()[0])
    grandchild = int(_wait_for_line(box, "grandchild=").split("=")[1])
    assert grandchild in live_members(pgid)
    runner.kill()  # what TfxNodeOperator.on_kill does
    thread.join(timeout=20)
    assert not thread.is_alive()
    outcome = box["outcome"]
    assert isinstance(outcome, NodeOutcome) and outcome.returncode == -signal.SIGTERM
    assert wait_for(lambda: not live_members(pgid), timeout=10), "no process of the cancelled node remains"
    assert run(runner, "ok")[0].returncode == 0  # the service serves on


def test_a_client_that_disappears_takes_its_node_down(fake_env: Settings) -> None:
    import json
    import socket

    runner = WarmNodeRunner(settings=fake_env, warm=WarmSettings.from_env())
    assert run(runner, "ok")[0].returncode == 0  # service up
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(ServicePaths.for_settings(fake_env).socket))
    request = {"op": "run", "id": "gone", "module": "fake_node", "args": ["sleep", "120"], "env": {}}
    sock.sendall((json.dumps(request) + "\n").encode())
    first = sock.makefile("rb").readline().decode()
    pgid = int(first.split("pgid=")[1].split()[0])
    sock.close()  # the task process died
    assert wait_for(lambda: not live_members(pgid), timeout=15), f"left in the node's group: {live_members(pgid)}"


def test_a_service_killed_mid_run_is_restarted_by_the_next_node(fake_env: Settings) -> None:
    runner = WarmNodeRunner(settings=fake_env, warm=WarmSettings.from_env())
    thread, box = _run_in_thread(runner, "sleep", "1.5")
    _wait_for_line(box, "started ")
    old = service_pid(fake_env)
    os.kill(old, signal.SIGKILL)
    thread.join(timeout=30)
    outcome = box["outcome"]
    assert isinstance(outcome, NodeOutcome)
    # The node itself was not killed with the service: it finished and said how.
    assert outcome.returncode == 0
    assert any("service went away" in str(line) for line in box["lines"])  # type: ignore[attr-defined]
    assert_served_by_a_new_service(fake_env, runner, old, "starting the service")


def test_a_wedged_service_is_killed_and_replaced(fake_env: Settings) -> None:
    runner = WarmNodeRunner(settings=fake_env, warm=WarmSettings.from_env())
    assert run(runner, "ok")[0].returncode == 0
    old = service_pid(fake_env)
    os.kill(old, signal.SIGSTOP)  # alive, but answers nothing
    try:
        assert_served_by_a_new_service(fake_env, runner, old, f"service pid {old} does not answer")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(old, signal.SIGKILL)


def test_parallel_nodes_run_at_once_up_to_the_limit(
    fake_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNWAY_WARM_MAX_PARALLEL", "2")
    warm = WarmSettings.from_env()
    runner_setup = WarmNodeRunner(settings=fake_env, warm=warm)
    assert run(runner_setup, "ok")[0].returncode == 0
    stamps = [tmp_path / f"stamp-{i}" for i in range(3)]
    jobs = [_run_in_thread(WarmNodeRunner(settings=fake_env, warm=warm), "sleep", "1.5", str(s)) for s in stamps]
    for thread, _ in jobs:
        thread.join(timeout=60)
    events = []
    for stamp in stamps:
        for line in stamp.read_text().splitlines():
            at, what = line.split()
            events.append((float(at), +1 if what == "start" else -1))
    running, peak = 0, 0
    for _, delta in sorted(events):
        running += delta
        peak = max(peak, running)
    assert peak == 2, "two nodes ran at once, never three"
    for _, box in jobs:
        outcome = box["outcome"]
        assert isinstance(outcome, NodeOutcome) and outcome.returncode == 0
    waited = [box for _, box in jobs if any("waiting" in str(line) for line in box["lines"])]  # type: ignore[attr-defined]
    assert len(waited) == 1, "the third request waited for a free slot and said so"


def test_an_unusable_service_falls_back_to_a_cold_process(fake_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNWAY_WARM_PRELOAD", "no_such_module_for_runway")
    runner = WarmNodeRunner(settings=fake_env, warm=WarmSettings.from_env())
    outcome, lines = run(runner, "ok")
    assert outcome.returncode == 0 and outcome.result == {"node": "fake", "figures": {"rows": 3}}
    assert runner.used_warm is False
    fallback = next(line for line in lines if "running the node in a cold process" in line)
    assert "exited with code 1 while starting" in fallback and "no_such_module_for_runway" in fallback


def test_a_service_with_outdated_code_makes_way_for_a_new_one(
    fake_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = tmp_path / "modules" / "fake_library.py"
    library.write_text("VERSION = 1\n")
    monkeypatch.setenv("RUNWAY_WARM_PRELOAD", "json,fake_library")
    runner = WarmNodeRunner(settings=fake_env, warm=WarmSettings.from_env())
    assert run(runner, "ok")[0].returncode == 0
    old = service_pid(fake_env)
    library.write_text("VERSION = 2\n")
    os.utime(library, (time.time() + 5, time.time() + 5))  # a different mtime even on a coarse clock
    assert_served_by_a_new_service(fake_env, runner, old, "code changed (fake_library.py)")


def test_stop_ends_the_service_and_removes_its_socket(fake_env: Settings) -> None:
    runner = WarmNodeRunner(settings=fake_env, warm=WarmSettings.from_env())
    assert run(runner, "ok")[0].returncode == 0
    pid = service_pid(fake_env)
    assert stop_service(fake_env) is not None
    assert not pid_alive(pid)  # stop_service returns once it is gone
    assert not ServicePaths.for_settings(fake_env).socket.exists()
    assert stop_service(fake_env) is None  # nothing to stop


def test_settings_are_checked() -> None:
    assert WarmSettings.from_env({}).enabled is True
    assert WarmSettings.from_env({"RUNWAY_WARM_RUNTIME": "off"}).enabled is False
    assert WarmSettings.from_env({"RUNWAY_WARM_MAX_PARALLEL": "3"}).max_parallel == 3
    with pytest.raises(ConfigError, match="RUNWAY_WARM_RUNTIME"):
        WarmSettings.from_env({"RUNWAY_WARM_RUNTIME": "yes please"})
    with pytest.raises(ConfigError, match="RUNWAY_WARM_START_TIMEOUT"):
        WarmSettings.from_env({"RUNWAY_WARM_START_TIMEOUT": "soon"})


def test_the_operator_uses_the_warm_runner_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline_components.orchestration.operators import TfxNodeOperator
    from pipeline_components.orchestration.runner import LocalNodeRunner

    monkeypatch.delenv("RUNWAY_WARM_RUNTIME", raising=False)
    assert isinstance(TfxNodeOperator(task_id="a", ir_path="x", node_id="a").runner, WarmNodeRunner)
    monkeypatch.setenv("RUNWAY_WARM_RUNTIME", "off")
    assert isinstance(TfxNodeOperator(task_id="b", ir_path="x", node_id="b").runner, LocalNodeRunner)
