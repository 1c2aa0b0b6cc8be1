from __future__ import annotations

import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pipeline_components.boundary import RESULT_PREFIX
from pipeline_components.errors import NodeFailedError, RuntimeEnvironmentError
from pipeline_components.orchestration.runner import (
    LocalNodeRunner,
    NodeCommand,
    NodeOutcome,
    run_node_locally,
)
from pipeline_components.processes import pid_alive, wait_for
from pipeline_components.settings import Settings


def python_command(code: str) -> NodeCommand:
    return NodeCommand(argv=[sys.executable, "-c", textwrap.dedent(code)], env={"NODE_VAR": "seen"})


def test_node_command_runs_the_runtime_module_with_the_run_id(isolated_settings: Settings) -> None:
    command = NodeCommand.for_node(
        settings=isolated_settings,
        ir_path=Path("/ir/flights.json"),
        node_id="Trainer",
        run_id="manual__1",
        params={"train_steps": 5},
    )
    assert command.argv[0] == str(isolated_settings.runtime_python)
    assert command.argv[1:] == [
        "-m",
        "pipeline_components.runtime",
        "run-node",
        "--ir",
        "/ir/flights.json",
        "--node",
        "Trainer",
        "--run-id",
        "manual__1",
        "--params",
        '{"train_steps": 5}',
    ]
    assert command.env["TF_USE_LEGACY_KERAS"] == "1"
    assert command.env["RUNWAY_HOME"] == str(isolated_settings.home)


def test_streams_lines_and_returns_the_result() -> None:
    lines: list[str] = []
    result = run_node_locally(
        python_command(f"""
            import os, json
            print("first line")
            print("env", os.environ["NODE_VAR"])
            print({RESULT_PREFIX!r} + json.dumps({{"node": "X", "executed": True}}))
        """),
        node_id="X",
        log=lines.append,
    )
    assert lines == ["first line", "env seen"]
    assert result == {"node": "X", "executed": True}


def test_failure_carries_the_nodes_error() -> None:
    with pytest.raises(NodeFailedError) as caught:
        run_node_locally(
            python_command("""
                import sys
                print("working")
                raise ValueError("Split pattern does not match any files")
            """),
            node_id="CsvExampleGen",
            log=lambda line: None,
        )
    message = str(caught.value)
    assert "CsvExampleGen failed with exit code 1" in message
    assert "ValueError: Split pattern does not match any files" in message.splitlines()[0]


def test_missing_runtime_interpreter_says_run_setup(tmp_path: Path) -> None:
    command = NodeCommand(argv=[str(tmp_path / "no-python"), "-c", "pass"])
    with pytest.raises(RuntimeEnvironmentError, match="make setup"):
        LocalNodeRunner().run(command, log=print)


def test_kill_takes_down_the_process_group(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    runner = LocalNodeRunner()
    code = f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(marker)!r}, "w").write(str(child.pid))
        print("started", flush=True)
        time.sleep(60)  # a long-running node
    """
    outcome: list[NodeOutcome] = []
    thread = threading.Thread(target=lambda: outcome.append(runner.run(python_command(code), log=lambda _: None)))
    thread.start()
    assert wait_for(lambda: marker.exists() and marker.read_text(), timeout=20), "the node never started its child"
    runner.kill()
    thread.join(timeout=20)
    assert outcome and outcome[0].returncode != 0
    child_pid = int(marker.read_text())
    assert wait_for(lambda: not pid_alive(child_pid), timeout=10), "the node's own child process survived the kill"
