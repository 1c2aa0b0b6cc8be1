"""``runway airflow standalone``: the Airflow UI and everything behind it, as one command that an operator can trust.

Airflow's own ``airflow standalone`` starts its components as ``airflow`` from ``PATH`` (absent from a fresh clone's
shell) in threads, and when a component dies it keeps running without it, or hangs. Here each component (API server,
scheduler, DAG processor, triggerer) is the orchestrator environment's own ``airflow`` executable, started by path in
its own process group, with runway's settings (``airflow_env``). Their output is printed line by line, prefixed with
the component's name. When one exits, the others are stopped and the command fails with that component's name, exit
status and last lines; on Ctrl-C or SIGTERM every component is stopped (its whole process group) before the command
returns. Once the UI answers, the login is printed: SimpleAuthManager's users and the password file it generated.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline_components.errors import RunwayError
from pipeline_components.orchestration.airflow_local import airflow_bin, airflow_env, ensure_database
from pipeline_components.settings import Settings

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
DEFAULT_PORT = 8080
STOP_GRACE_S = 20.0
TAIL_LINES = 15


class ComponentDied(RunwayError):
    """An Airflow component of ``runway airflow standalone`` exited; the others were stopped."""


@dataclass
class Component:
    """One Airflow component: its process (its own process group) and the last lines it printed."""

    name: str
    process: subprocess.Popen[str]
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    reader: threading.Thread | None = None


def standalone_env(settings: Settings) -> tuple[dict[str, str], int]:
    """The components' environment and the UI's port: the tasks' Execution API is this API server's."""
    env = airflow_env(settings)
    port = int(env.get("AIRFLOW__API__PORT") or DEFAULT_PORT)
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://127.0.0.1:{port}/execution/")
    return env, port


def run_standalone(settings: Settings, *, say: Callable[[str], None], ready_timeout_s: float = 300.0) -> None:
    """Start every component, print the login once the UI answers, and supervise them until one exits or the
    command is stopped.

    Raises:
        ComponentDied: a component exited (its name, status and last lines; the others were stopped).
        KeyboardInterrupt: Ctrl-C or SIGTERM, after every component was stopped.
    """
    ensure_database(settings)
    env, port = standalone_env(settings)
    url = f"http://{env['AIRFLOW__API__HOST']}:{port}"
    components: list[Component] = []
    lock = threading.Lock()  # one printed line at a time

    def start(name: str) -> None:
        process = subprocess.Popen(
            [airflow_bin(), name],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # stopped as a whole group: its workers and task processes with it
        )
        component = Component(name, process)
        component.reader = threading.Thread(target=_relay, args=(component, say, lock), daemon=True)
        component.reader.start()
        components.append(component)

    try:
        say(f"runway: starting Airflow ({', '.join(COMPONENTS)}) with {env['AIRFLOW_HOME']}; the UI: {url}")
        for name in COMPONENTS:
            start(name)
        _supervise(components, url=url, env=env, say=say, ready_timeout_s=ready_timeout_s)
    finally:
        stop_all(components)


def _relay(component: Component, say: Callable[[str], None], lock: threading.Lock) -> None:
    assert component.process.stdout is not None
    for line in component.process.stdout:
        text = line.rstrip()
        component.tail.append(text)
        with lock:
            say(f"{component.name:<13} | {text}")


def _supervise(
    components: list[Component], *, url: str, env: dict[str, str], say: Callable[[str], None], ready_timeout_s: float
) -> None:
    started = time.monotonic()
    ready = False
    while True:
        for component in components:
            code = component.process.poll()
            if code is not None:
                if component.reader is not None:
                    component.reader.join(timeout=5)  # its last lines, which say why
                raise ComponentDied(died_message(component, code))
        if not ready and _answers(url + "/api/v2/version"):
            ready = True
            for line in login_lines(url, env):
                say(line)
        elif not ready and time.monotonic() - started > ready_timeout_s:
            raise ComponentDied(f"Airflow's UI did not answer at {url} within {ready_timeout_s:.0f} s")
        time.sleep(0.5)


def died_message(component: Component, code: int) -> str:
    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
    last = "\n".join(f"  {line}" for line in component.tail) or "  (no output)"
    return (
        f"Airflow's {component.name} {how}; the other components were stopped. Its last lines:\n{last}\n"
        "Start it again with `runway airflow standalone`."
    )


def login_lines(url: str, env: dict[str, str]) -> list[str]:
    """How to log in: SimpleAuthManager's users and the password file the API server generated."""
    lines = ["", f"runway: Airflow is ready: {url}"]
    if env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "").lower() == "true":
        return [*lines, "runway: no login (simple_auth_manager_all_admins)", ""]
    users = [
        item.split(":")[0] for item in env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin").split(",")
    ]
    password_file = Path(
        env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
        or Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    )
    try:
        passwords = dict(json.loads(password_file.read_text()))
    except (OSError, ValueError):
        passwords = {}
    for user in users:
        secret = passwords.get(user)
        shown = f"password {secret}" if secret else "no password generated yet"
        lines.append(f"runway: log in as {user}, {shown} (from {password_file})")
    return [*lines, ""]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # 401 without a login: the API server is up
    except OSError:
        return False


def stop_all(components: list[Component], *, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to every component's process group at once; SIGKILL to what is left after ``grace_s``."""
    for component in components:
        _signal_group(component.process, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for component in components:
        with contextlib.suppress(subprocess.TimeoutExpired):
            component.process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for component in components:
        _signal_group(component.process, signal.SIGKILL)  # also workers left behind by a component that exited
        component.process.wait()


def _signal_group(process: subprocess.Popen[str], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
