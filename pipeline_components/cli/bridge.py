"""The bridge to the pipeline runtime environment (TFX, TensorFlow), which the ``runway`` command never imports.

A runtime command is ``python -m pipeline_components.runtime COMMAND ARGS`` in the runtime interpreter
(``RUNWAY_RUNTIME_PYTHON``); it prints ``error: ...`` lines on failure and its answer as the last JSON line. When
the warm runtime is already up (``runway run`` starts it) the command runs there: the answer in a second instead of
ten seconds of cold imports. Otherwise it runs in a cold process; this module never starts the service.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from typing import Any

from pipeline_components.boundary import RUNTIME_ENV, error_message
from pipeline_components.errors import RuntimeEnvironmentError, RunwayError
from pipeline_components.settings import Settings


def runtime_python(settings: Settings) -> str:
    """The runtime environment's interpreter.

    Raises:
        RuntimeEnvironmentError: it is not installed (``make setup`` installs it).
    """
    python = settings.runtime_python
    if not python.exists():
        raise RuntimeEnvironmentError(f"the pipeline runtime environment is missing ({python}); run `make setup`")
    return str(python)


def runtime(settings: Settings, *args: str, verbose: bool = False) -> Any:
    """Run ``python -m pipeline_components.runtime ARGS`` in the runtime environment; return its JSON answer.

    Raises:
        RunwayError: the command failed; the message is its error, every line of it (else its last lines).
    """
    argv = [runtime_python(settings), "-m", "pipeline_components.runtime", *args]
    env = {**os.environ, **settings.as_env(), **RUNTIME_ENV}
    if not verbose:
        env.setdefault("RUNWAY_LOG_LEVEL", "WARNING")
        if (warm := _warm_service_if_up(settings)) is not None:
            from pipeline_components.orchestration.runner import NodeCommand

            lines: list[str] = []  # the child's stdout and stderr, as one stream
            outcome = warm.run(NodeCommand(argv=argv, env=env), log=lines.append)
            return _runtime_answer(outcome.returncode, lines, lines)
    result = subprocess.run(
        argv, env=env, stdout=subprocess.PIPE, stderr=None if verbose else subprocess.PIPE, text=True
    )
    return _runtime_answer(result.returncode, result.stdout.splitlines(), (result.stderr or "").splitlines())


def run_module(settings: Settings, module: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``python -m MODULE ARGS`` in the runtime environment, cold; return (exit status, its stdout).

    For commands whose output is the answer itself (a report to print as it is). Their ``error: ...`` message on
    stderr (every line of it) becomes the ``RunwayError`` of exit status 2; any other status but 0 and 1 raises
    with their stderr.
    """
    command = [runtime_python(settings), "-m", module, *args]
    result = subprocess.run(
        command, env={**os.environ, **settings.as_env(), **RUNTIME_ENV, **(env or {})}, capture_output=True, text=True
    )
    if result.returncode not in (0, 1):
        message = error_message(result.stderr.splitlines())
        raise RunwayError(message or result.stderr.strip()[-2000:] or f"{module} failed")
    return result.returncode, result.stdout


def _runtime_answer(returncode: int, output: list[str], detail: list[str]) -> Any:
    """A runtime command's answer, its last JSON line; or its error message (else its last lines) raised."""
    if returncode != 0:
        message = error_message(detail)
        raise RunwayError(message or "\n".join(detail[-25:]).strip() or "runtime command failed")
    for line in reversed(output):
        if line.startswith(("{", "[")):
            with contextlib.suppress(ValueError):
                return json.loads(line)
    return None


def warm_runtime_wanted() -> bool:
    """Local nodes run through the warm runtime (the local backend, and ``RUNWAY_WARM_RUNTIME`` not off)."""
    from pipeline_components.orchestration import backends, warm_client

    local = backends.ContainerSettings.from_env().backend is backends.NodeBackend.LOCAL
    return local and warm_client.WarmSettings.from_env().enabled


def _warm_service_if_up(settings: Settings) -> Any:
    """A runner for the warm runtime when it is wanted and answering, else None."""
    if not warm_runtime_wanted():
        return None
    from pipeline_components.orchestration import warm_client

    if warm_client.ping(warm_client.ServicePaths.for_settings(settings), timeout=2.0) is None:
        return None
    return warm_client.WarmNodeRunner(settings=settings)
