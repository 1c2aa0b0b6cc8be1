"""The embedded Airflow: SQLite metadata database, LocalExecutor, this checkout's ``dags/`` folder.

Everything that starts an ``airflow`` process for a person (``runway run``, ``runway airflow ...``) takes its
environment from ``airflow_env`` so that the CLI, the scheduler and the DAG files agree on one layout.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_components.errors import RunwayError
from pipeline_components.orchestration.runner import stop_process_group
from pipeline_components.ports import free_ports
from pipeline_components.settings import CHECKOUT, Settings

_RUN_CREATED = re.compile(r"<DagRun (?P<dag>\S+) @ .*?: (?P<run_id>[a-z_]+__\S+?), state:")
_TASK_SKIPPED = re.compile(r"Skipping task\..*reason='(?P<task>\w+) skipped: (?P<reason>.*?)'")


SQLITE_CONNECT = "pipeline_components.orchestration.sqlite_connect"


def airflow_env(settings: Settings) -> dict[str, str]:
    """The environment of every Airflow process runway starts: the embedded Airflow of this checkout.

    Secure by default: Airflow's API server (the UI and REST API of ``runway airflow standalone`` or
    ``runway airflow api-server``) listens on loopback only, unless ``AIRFLOW__API__HOST`` says otherwise. The
    orchestrator environment's ``bin`` folder leads ``PATH``, because ``airflow standalone`` starts its components
    as ``airflow`` from ``PATH``.
    """
    home = settings.home / "airflow"
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        **settings.as_env(),
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", os.defpath)]),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__API__HOST": os.environ.get("AIRFLOW__API__HOST", "127.0.0.1"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(CHECKOUT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        # A writer waits 30 s for SQLite's lock, not 5 (sqlite_connect.py says why).
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": f"{SQLITE_CONNECT}.CONNECT_ARGS",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": f"{SQLITE_CONNECT}.CONNECT_ARGS_ASYNC",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    }


def airflow_bin() -> str:
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


def ensure_database(settings: Settings) -> None:
    """``airflow db migrate`` once (about 4 s on SQLite); later calls return at once."""
    home = settings.home / "airflow"
    if (home / "airflow.db").is_file() and (home / ".migrated").is_file():
        return
    home.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([airflow_bin(), "db", "migrate"], env=airflow_env(settings), capture_output=True, text=True)
    if result.returncode != 0:
        raise RunwayError(f"`airflow db migrate` failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    (home / ".migrated").write_text(datetime.now().isoformat())


@dataclass
class DagTestResult:
    returncode: int
    run_id: str | None
    log_path: Path
    skip_reasons: dict[str, str]


def default_parallelism() -> int:
    """Tasks one local run executes at once: twice the CPUs (at least 2).

    Node tasks beyond the warm runtime's limit (``RUNWAY_WARM_MAX_PARALLEL``, the CPU count) wait their turn
    inside it, so light tasks (parameter checks, the rollout's waits) are never stuck behind heavy ones.
    """
    return max(2, 2 * (os.cpu_count() or 1))


def dags_test(
    settings: Settings,
    dag_id: str,
    *,
    conf: dict[str, Any] | None,
    log_path: Path,
    progress: Callable[[str], None],
    parallelism: int = 1,
) -> DagTestResult:
    """One DAG run through Airflow (``airflow dags test``): full log to a file, each task's progress to ``progress``.

    ``parallelism`` 1 runs the tasks one after another inside the ``dags test`` process (Airflow's debugging mode).
    Above 1, ``dags test --use-executor`` hands ready tasks to the LocalExecutor, up to ``parallelism`` at once,
    so independent branches run side by side as under the scheduler; the executor's tasks report to Airflow's
    Execution API, which `execution_api` serves for the length of the run.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = airflow_env(settings)
    argv = [airflow_bin(), "dags", "test", dag_id]
    if conf:
        argv += ["--conf", json.dumps(conf)]
    run_id = None
    skip_reasons: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        if parallelism > 1:
            api_log = log_path.parent / "execution-api" / log_path.name
            url = stack.enter_context(execution_api(settings, log_path=api_log))
            env |= {"AIRFLOW__CORE__EXECUTION_API_SERVER_URL": url, "AIRFLOW__CORE__PARALLELISM": str(parallelism)}
            argv.append("--use-executor")
            progress(f"tasks run by the LocalExecutor, up to {parallelism} at once (Execution API: {url})")
        log = stack.enter_context(log_path.open("w"))
        # Its own process group, so that it can be stopped whole (the executor's workers with it); Ctrl-C here is
        # passed on to that group as the terminal would.
        process = stack.enter_context(
            subprocess.Popen(
                argv,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
        )
        watcher = TaskWatcher(database_path(settings), dag_id, progress, process=process)
        assert process.stdout is not None
        try:
            for line in process.stdout:
                log.write(line)
                if run_id is None and (match := _RUN_CREATED.search(line)):
                    run_id = match.group("run_id")
                    progress(f"run {run_id} started (full log: {log_path})")
                    watcher.start(run_id)
                elif match := _TASK_SKIPPED.search(line):
                    skip_reasons[match.group("task")] = match.group("reason")
            returncode = process.wait()
        except KeyboardInterrupt:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            stop_process_group(process, grace=30.0)
            raise
        finally:
            watcher.stop()
        if watcher.stopped_process:
            # Stopped by runway after Airflow had finished the run: the run's own state is the outcome.
            returncode = 0 if watcher.run_state == "success" else 1
    return DagTestResult(returncode=returncode, run_id=run_id, log_path=log_path, skip_reasons=skip_reasons)


@contextlib.contextmanager
def execution_api(settings: Settings, *, log_path: Path, timeout: float = 180.0) -> Iterator[str]:
    """Airflow's Execution API alone (``airflow api-server --apps execution``), on a free loopback port.

    Airflow 3 tasks run by an executor fetch their context from this API and report their state to it. One
    worker, loopback only, stopped (its whole process group) when the block ends. It is not the UI:
    ``runway airflow standalone`` serves that over the same database.
    """
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}/execution/"
    argv = [airflow_bin(), "api-server", "--apps", "execution", "--workers", "1", "--host", "127.0.0.1"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*argv, "--port", str(port)],
            env=airflow_env(settings),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(url + "health"):
            if process.poll() is not None:
                raise RunwayError(f"Airflow's Execution API exited ({process.returncode}) at start; see {log_path}")
            if time.monotonic() > deadline:
                raise RunwayError(f"Airflow's Execution API did not answer within {timeout:.0f} s; see {log_path}")
            time.sleep(0.25)
        yield url
    finally:
        stop_process_group(process)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


# --- task states, read from Airflow's database ------------------------------------------------------------------


def database_path(settings: Settings) -> Path:
    return settings.home / "airflow" / "airflow.db"


_FINISHED = {"success", "failed", "skipped", "upstream_failed", "removed"}


def read_run(db: Path, dag_id: str, run_id: str) -> tuple[str | None, list[dict[str, Any]]]:
    """The run's state (None before it exists) and each of its tasks (latest try): id, state, start, end and
    seconds, in the order they started.

    Read-only, one connection, straight from the embedded SQLite database: a cheap poll while Airflow writes to it
    (the rows ``airflow tasks states-for-dag-run`` prints, without starting Airflow).
    """
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as connection:
        run = connection.execute(
            "SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)
        ).fetchone()
        rows = connection.execute(
            "SELECT task_id, state, start_date, end_date, try_number FROM task_instance "
            "WHERE dag_id = ? AND run_id = ? AND map_index = -1",
            (dag_id, run_id),
        ).fetchall()
    tasks = []
    for task_id, state, start, end, tries in rows:
        begin = _parse_time(start)
        finish = _parse_time(end)
        tasks.append(
            {
                "task_id": task_id,
                "state": state,
                "start_date": begin.isoformat() if begin else None,
                "end_date": finish.isoformat() if finish else None,
                "try_number": tries,
                "seconds": round((finish - begin).total_seconds(), 1) if begin and finish else None,
            }
        )
    tasks.sort(key=lambda t: (t["start_date"] is None, t["start_date"] or "", t["task_id"]))
    return (str(run[0]) if run and run[0] else None), tasks


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class TaskWatcher:
    """Polls a run's task states (twice a second) and reports each task's start and end, as they happen.

    Given the ``dags test`` process, it also stops that process (its whole group) when Airflow has finished the
    run but the process has not exited ``exit_grace`` seconds later: Airflow 3.3's LocalExecutor can wait forever
    at shutdown for a worker that never receives its stop message, with every task already done.
    """

    def __init__(
        self,
        db: Path,
        dag_id: str,
        progress: Callable[[str], None],
        every: float = 0.5,
        *,
        process: subprocess.Popen[str] | None = None,
        exit_grace: float = 30.0,
    ) -> None:
        self.db, self.dag_id, self.progress, self.every = db, dag_id, progress, every
        self.process, self.exit_grace = process, exit_grace
        self.run_id: str | None = None
        self.run_state: str | None = None
        self.finished_at: float | None = None
        self.stopped_process = False
        self.seen: dict[str, tuple[str | None, int]] = {}
        self.first_start: datetime | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runway-task-watcher", daemon=True)

    def start(self, run_id: str) -> None:
        self.run_id = run_id
        self._thread.start()

    def stop(self) -> None:
        if self.run_id is None:
            return
        self._stopped.set()
        self._thread.join(timeout=10)
        self.poll()  # the final states, written just before `dags test` exited

    def _loop(self) -> None:
        while not self._stopped.wait(self.every):
            self.poll()
            self._stop_a_process_that_outlives_its_run()

    def _stop_a_process_that_outlives_its_run(self) -> None:
        if self.process is None or self.finished_at is None or self.stopped_process:
            return
        if self.process.poll() is None and time.monotonic() - self.finished_at > self.exit_grace:
            self.progress(
                f"  Airflow finished the run ({self.run_state}) but `airflow dags test` has not exited "
                f"{self.exit_grace:.0f} s later (its LocalExecutor is waiting for an idle worker): stopping it"
            )
            self.stopped_process = True
            stop_process_group(self.process, grace=10.0)

    def poll(self) -> None:
        assert self.run_id is not None
        try:
            run_state, tasks = read_run(self.db, self.dag_id, self.run_id)
        except sqlite3.Error:
            return  # busy or mid-migration: the next poll reads it
        if run_state in ("success", "failed") and self.finished_at is None:
            self.run_state, self.finished_at = run_state, time.monotonic()
        for task in tasks:
            state, tries = task["state"], task["try_number"]
            if self.seen.get(task["task_id"]) == (state, tries):
                continue
            self.seen[task["task_id"]] = (state, tries)
            started, ended = _parse_time(task["start_date"]), _parse_time(task["end_date"])
            if started and (self.first_start is None or started < self.first_start):
                self.first_start = started
            name = task["task_id"]
            if state == "running":
                at = self._offset(started)
                self.progress(f"  {at}  {name:<32} running" + (f" (try {tries})" if tries > 1 else ""))
            elif state in _FINISHED or state == "up_for_retry":
                seconds = f"{task['seconds']:.1f} s" if task["seconds"] is not None else ""
                self.progress(f"  {self._offset(ended or started)}  {name:<32} {state:<8} {seconds}")

    def _offset(self, moment: datetime | None) -> str:
        """When, counted from the run's first task start: ``+  12.3 s``."""
        if moment is None or self.first_start is None:
            return "+     - s"
        return f"+{(moment - self.first_start).total_seconds():6.1f} s"


def task_states(settings: Settings, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Each task's state, start and end, from Airflow's database."""
    try:
        return read_run(database_path(settings), dag_id, run_id)[1]
    except sqlite3.Error as err:
        raise RunwayError(
            f"cannot read task states of {dag_id} {run_id} from {database_path(settings)}: {err}"
        ) from err
