"""Run one TFX node in the pipeline runtime environment, from the orchestrator side.

``NodeCommand`` is what every backend runs: the same argv and environment, whether as a local subprocess
(here), a Docker container or a Kubernetes pod. The local runner streams the node's output line by line into
the caller's log as it happens, and turns a non-zero exit into a ``NodeFailedError`` that carries the tail of
that output.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_components.boundary import RESULT_PREFIX, RUNTIME_ENV
from pipeline_components.errors import NodeFailedError, RuntimeEnvironmentError
from pipeline_components.settings import Settings

TAIL_LINES = 40


def node_argv(*, python: str, ir_path: str, node_id: str, run_id: str, params_json: str) -> list[str]:
    """The one command every backend (subprocess, container, pod) runs for a node."""
    return [
        python, "-m", "pipeline_components.runtime", "run-node",
        "--ir", ir_path, "--node", node_id, "--run-id", run_id, "--params", params_json,
    ]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class NodeCommand:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_node(
        cls, *, settings: Settings, ir_path: Path, node_id: str, run_id: str, params: dict[str, Any] | None = None
    ) -> NodeCommand:
        return cls(
            argv=node_argv(
                python=str(settings.runtime_python),
                ir_path=str(ir_path),
                node_id=node_id,
                run_id=run_id,
                params_json=json.dumps(params or {}, sort_keys=True),
            ),
            env={**settings.as_env(), **RUNTIME_ENV},
        )


@dataclass
class NodeOutcome:
    returncode: int
    result: dict[str, Any] | None
    tail: list[str]


class LocalNodeRunner:
    """Runs a ``NodeCommand`` as a child process of the caller, in its own process group."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None

    def run(self, command: NodeCommand, *, log: Callable[[str], None]) -> NodeOutcome:
        python = Path(command.argv[0])
        if not python.exists():
            raise RuntimeEnvironmentError(
                f"the pipeline runtime interpreter {python} does not exist; run `make setup` "
                "(or set RUNWAY_RUNTIME_PYTHON)"
            )
        env = {**os.environ, **command.env}
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        result: dict[str, Any] | None = None
        self._process = subprocess.Popen(
            command.argv,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group: on_kill takes Beam workers down with it
        )
        assert self._process.stdout is not None
        for raw_line in self._process.stdout:
            line = raw_line.rstrip("\n")
            if line.startswith(RESULT_PREFIX):
                result = json.loads(line[len(RESULT_PREFIX) :])
                continue
            tail.append(line)
            log(line)
        returncode = self._process.wait()
        self._process = None
        return NodeOutcome(returncode=returncode, result=result, tail=list(tail))

    def kill(self) -> None:
        if self._process is not None:
            stop_process_group(self._process, grace=10.0)


def stop_process_group(process: subprocess.Popen[Any], grace: float = 15.0) -> None:
    """SIGTERM to a process started with ``start_new_session=True`` and its whole group; SIGKILL after ``grace``."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_node_locally(command: NodeCommand, *, node_id: str, log: Callable[[str], None]) -> dict[str, Any]:
    """Run a node to completion; return its result summary or raise ``NodeFailedError``."""
    outcome = LocalNodeRunner().run(command, log=log)
    if outcome.returncode != 0:
        raise NodeFailedError(node_failure_message(node_id, outcome))
    return outcome.result or {}


def node_failure_message(node_id: str, outcome: NodeOutcome) -> str:
    error_lines = [line for line in outcome.tail if line.strip()]
    # The last lines of a Python traceback say what went wrong; show those first.
    last = error_lines[-1] if error_lines else "(no output)"
    return (
        f"TFX node {node_id} failed with exit code {outcome.returncode}: {last}\n"
        f"--- last {len(outcome.tail)} lines of the node's output ---\n" + "\n".join(outcome.tail)
    )
