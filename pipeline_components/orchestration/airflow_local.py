"""The embedded Airflow: SQLite metadata database, LocalExecutor, this checkout's ``dags/`` folder.

Everything that starts an ``airflow`` process for a person (``runway run``, ``runway airflow ...``) takes its
environment from ``airflow_env`` so that the CLI, the scheduler and the DAG files agree on one layout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline_components.errors import RunwayError
from pipeline_components.settings import CHECKOUT, Settings

_RUN_CREATED = re.compile(r"<DagRun (?P<dag>\S+) @ .*?: (?P<run_id>[a-z_]+__\S+?), state:")
_TASK_STARTED = re.compile(r"\[DAG TEST\] running task <TaskInstance: (?P<dag>[^.\s]+)\.(?P<task>\S+) ")
_TASK_ENDED = re.compile(r"Task instance state updated .*new_state=(?P<state>\w+)")
_TASK_SKIPPED = re.compile(r"Skipping task\..*reason='(?P<task>\w+) skipped: (?P<reason>.*?)'")


def airflow_env(settings: Settings) -> dict[str, str]:
    home = settings.home / "airflow"
    return {
        **os.environ,
        **settings.as_env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(CHECKOUT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
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


def dags_test(
    settings: Settings,
    dag_id: str,
    *,
    conf: dict[str, Any] | None,
    log_path: Path,
    progress: Callable[[str], None],
) -> DagTestResult:
    """Run a whole DAG through Airflow (``airflow dags test``), full log to a file, progress to ``progress``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [airflow_bin(), "dags", "test", dag_id]
    if conf:
        argv += ["--conf", json.dumps(conf)]
    run_id = None
    skip_reasons: dict[str, str] = {}
    current: str | None = None
    started_at = datetime.now()
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            argv,
            env=airflow_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            if run_id is None and (match := _RUN_CREATED.search(line)):
                run_id = match.group("run_id")
                progress(f"run {run_id} started (full log: {log_path})")
            elif match := _TASK_STARTED.search(line):
                current = match.group("task")
                started_at = datetime.now()
                progress(f"  {current:<32} running ...")
            elif match := _TASK_SKIPPED.search(line):
                skip_reasons[match.group("task")] = match.group("reason")
            elif current and (match := _TASK_ENDED.search(line)):
                seconds = (datetime.now() - started_at).total_seconds()
                progress(f"  {current:<32} {match.group('state'):<8} {seconds:6.1f} s")
                current = None
        returncode = process.wait()
    return DagTestResult(returncode=returncode, run_id=run_id, log_path=log_path, skip_reasons=skip_reasons)


def task_states(settings: Settings, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Each task's state, start and end, from Airflow's database."""
    result = subprocess.run(
        [airflow_bin(), "tasks", "states-for-dag-run", dag_id, run_id, "-o", "json"],
        env=airflow_env(settings),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RunwayError(f"cannot read task states of {dag_id} {run_id}:\n{result.stderr[-1500:]}")
    rows: list[dict[str, Any]] = json.loads(_json_part(result.stdout))
    for row in rows:
        start, end = row.get("start_date"), row.get("end_date")
        row["seconds"] = (
            round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 1)
            if start and end
            else None
        )
    return rows


def _json_part(text: str) -> str:
    """The JSON document in a CLI's stdout (Airflow may print warnings before it)."""
    if text.startswith("["):
        return text
    start = text.find("\n[")
    if start < 0:
        raise RunwayError(f"no JSON in Airflow's output: {text[-500:]}")
    return text[start + 1 :]
