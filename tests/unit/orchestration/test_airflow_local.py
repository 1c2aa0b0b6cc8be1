"""`runway run`'s view of a DAG run: the run id and skip reasons from `airflow dags test` output (lines as
Airflow 3.3 prints them), and each task's progress from Airflow's database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline_components.orchestration import airflow_local
from pipeline_components.settings import Settings

CREATED = (
    "2026-11-21T21:17:13.959000Z [info     ] Created dag run.               [airflow.models.dagrun] "
    "dagrun=<DagRun flights_pipeline @ 2026-11-21 21:17:13.589952+00:00: manual__2026-11-21T21:17:13.898271+00:00,"
    " state:running, queued_at: None. run_type: manual> loc=dagrun.py:2464"
)
SKIPPED = (
    "2026-11-21T22:19:46.187117Z [info     ] Skipping task.                 [task] loc=task_runner.py:1622 "
    "reason='Pusher skipped: span 12 is already served as version 1795299581 (run manual__1); nothing new'"
)


def test_run_id_and_skip_reasons_are_read_from_the_log() -> None:
    created = airflow_local._RUN_CREATED.search(CREATED)
    assert created and created.group("run_id") == "manual__2026-11-21T21:17:13.898271+00:00"
    skipped = airflow_local._TASK_SKIPPED.search(SKIPPED)
    assert skipped and skipped.group("task") == "Pusher"
    assert skipped.group("reason").startswith("span 12 is already served as version 1795299581")


def test_airflow_env_points_at_this_checkouts_dags_and_an_embedded_database(
    isolated_settings: Settings,
) -> None:
    env = airflow_local.airflow_env(isolated_settings)
    assert env["AIRFLOW_HOME"] == str(isolated_settings.home / "airflow")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"].endswith("/dags")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite:///")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["RUNWAY_HOME"] == str(isolated_settings.home)


RUN = "manual__2026-11-22T04:06:00.130429+00:00"


def _database(
    path: Path, rows: list[tuple[str, str | None, str | None, str | None, int]], run_state: str = "running"
) -> Path:
    """task_instance and dag_run with the columns runway reads, values as Airflow 3.3 stores them in SQLite."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS task_instance (dag_id TEXT, run_id TEXT, task_id TEXT, map_index INTEGER, "
            "state TEXT, start_date TIMESTAMP, end_date TIMESTAMP, try_number INTEGER)"
        )
        db.execute("CREATE TABLE IF NOT EXISTS dag_run (dag_id TEXT, run_id TEXT, state TEXT)")
        db.execute("DELETE FROM task_instance")
        db.execute("DELETE FROM dag_run")
        db.executemany("INSERT INTO task_instance VALUES ('p', ?, ?, -1, ?, ?, ?, ?)", [(RUN, *row) for row in rows])
        db.execute("INSERT INTO dag_run VALUES ('p', ?, ?)", (RUN, run_state))
    return path


def test_task_instances_come_in_start_order_with_durations(tmp_path: Path) -> None:
    db = _database(
        tmp_path / "airflow.db",
        [
            ("Trainer", None, None, None, 0),
            ("StatisticsGen", "running", "2026-11-22 04:06:04.100000", None, 1),
            ("CsvExampleGen", "success", "2026-11-22 04:06:01.200000", "2026-11-22 04:06:03.700000", 1),
        ],
    )
    state, tasks = airflow_local.read_run(db, "p", RUN)
    assert state == "running"
    assert [t["task_id"] for t in tasks] == ["CsvExampleGen", "StatisticsGen", "Trainer"]
    assert tasks[0]["seconds"] == 2.5 and tasks[0]["start_date"] == "2026-11-22T04:06:01.200000+00:00"
    assert tasks[1]["seconds"] is None and tasks[2]["state"] is None
    assert airflow_local.read_run(db, "p", "another-run") == (None, [])


def test_watcher_reports_each_start_and_end_once_including_parallel_tasks_and_retries(tmp_path: Path) -> None:
    lines: list[str] = []
    db = tmp_path / "airflow.db"
    watcher = airflow_local.TaskWatcher(db, "p", lines.append)
    watcher.run_id = RUN
    steps: list[list[tuple[str, str | None, str | None, str | None, int]]] = [
        [("Trainer", "running", "2026-11-22 04:06:10.000000", None, 1)],
        [("Trainer", "running", "2026-11-22 04:06:10.000000", None, 1)],  # unchanged: nothing new
        [
            ("Trainer", "success", "2026-11-22 04:06:10.000000", "2026-11-22 04:06:14.000000", 1),
            ("Evaluator", "running", "2026-11-22 04:06:15.000000", None, 1),
            ("TFLiteVariants", "running", "2026-11-22 04:06:15.100000", None, 1),
        ],
        [
            ("Trainer", "success", "2026-11-22 04:06:10.000000", "2026-11-22 04:06:14.000000", 1),
            ("Evaluator", "up_for_retry", "2026-11-22 04:06:15.000000", "2026-11-22 04:06:16.000000", 1),
            ("TFLiteVariants", "running", "2026-11-22 04:06:15.100000", None, 1),
        ],
        [
            ("Trainer", "success", "2026-11-22 04:06:10.000000", "2026-11-22 04:06:14.000000", 1),
            ("Evaluator", "running", "2026-11-22 04:06:18.000000", None, 2),
            ("TFLiteVariants", "success", "2026-11-22 04:06:15.100000", "2026-11-22 04:06:30.100000", 1),
        ],
    ]
    for rows in steps:
        _database(db, rows)
        watcher.poll()
    compact = [" ".join(line.split()) for line in lines]
    assert compact == [
        "+ 0.0 s Trainer running",
        "+ 4.0 s Trainer success 4.0 s",
        "+ 5.0 s Evaluator running",
        "+ 5.1 s TFLiteVariants running",
        "+ 6.0 s Evaluator up_for_retry 1.0 s",
        "+ 20.1 s TFLiteVariants success 15.0 s",
        "+ 8.0 s Evaluator running (try 2)",
    ]


def test_a_missing_database_is_a_clear_error(isolated_settings: Settings) -> None:
    from pipeline_components.errors import RunwayError

    with pytest.raises(RunwayError, match=r"cannot read task states of p run-1 from .*airflow\.db"):
        airflow_local.task_states(isolated_settings, "p", "run-1")


def test_parallelism_defaults_to_twice_the_cpus_and_never_below_two(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert airflow_local.default_parallelism() == 2
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert airflow_local.default_parallelism() == 16


def test_a_dags_test_process_that_outlives_its_finished_run_is_stopped(tmp_path: Path) -> None:
    """Airflow 3.3's LocalExecutor can hang at shutdown after the last task: runway stops the process group."""
    db = _database(
        tmp_path / "airflow.db",
        [("Pusher", "success", "2026-11-22 04:06:10.000000", "2026-11-22 04:06:11.000000", 1)],
        run_state="success",
    )
    # Stands in for `airflow dags test` stuck in LocalExecutor.end(), with a worker in its process group.
    stuck = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300"], start_new_session=True, text=True)
    lines: list[str] = []
    watcher = airflow_local.TaskWatcher(db, "p", lines.append, every=0.1, process=stuck, exit_grace=0.5)
    watcher.start(RUN)
    try:
        assert stuck.wait(timeout=20) != 0
    finally:
        watcher.stop()
        if stuck.poll() is None:
            stuck.kill()
    assert watcher.stopped_process and watcher.run_state == "success"
    assert any("has not exited" in line and "stopping it" in line for line in lines)
    time.sleep(0.2)
    members = subprocess.run(["ps", "-o", "stat=", "-g", str(stuck.pid)], capture_output=True, text=True).stdout
    assert [state for state in members.split() if not state.startswith("Z")] == []  # the background "worker" too


def test_a_process_still_finishing_a_running_dag_is_left_alone(tmp_path: Path) -> None:
    db = _database(tmp_path / "airflow.db", [("Trainer", "running", "2026-11-22 04:06:10.000000", None, 1)])
    busy = subprocess.Popen(["sleep", "300"], start_new_session=True)
    watcher = airflow_local.TaskWatcher(db, "p", [].append, every=0.1, process=busy, exit_grace=0.2)
    watcher.start(RUN)
    try:
        time.sleep(1.0)
        assert busy.poll() is None and not watcher.stopped_process
    finally:
        watcher.stop()
        busy.kill()
        busy.wait()


def test_airflow_binds_loopback_unless_told_otherwise(isolated_settings: Settings, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW__API__HOST", raising=False)
    assert airflow_local.airflow_env(isolated_settings)["AIRFLOW__API__HOST"] == "127.0.0.1"
    monkeypatch.setenv("AIRFLOW__API__HOST", "0.0.0.0")  # an operator who publishes the UI says so
    assert airflow_local.airflow_env(isolated_settings)["AIRFLOW__API__HOST"] == "0.0.0.0"


def test_airflow_components_find_airflow_on_path(isolated_settings: Settings) -> None:
    """`airflow standalone` starts its components as `airflow` from PATH: this environment's must come first."""
    import shutil
    import sys

    path = airflow_local.airflow_env(isolated_settings)["PATH"]
    assert path.split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert shutil.which("airflow", path=path) == str(Path(sys.executable).parent / "airflow")


def test_a_terminated_runway_run_leaves_no_airflow_process_behind(tmp_path: Path) -> None:
    """`runway run` stopped by SIGTERM (a timeout, a supervisor) stops the DAG run's whole process group with it."""
    fake = tmp_path / "airflow"  # stands in for `airflow dags test`: a worker in its group, and a long wait
    fake.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'group'}\nsleep 300 &\nsleep 300\n")
    fake.chmod(0o755)
    script = f"""
import argparse
import sys
from pathlib import Path
from pipeline_components.cli import entry as cli_main
from pipeline_components.orchestration import airflow_local
from pipeline_components.settings import Settings

airflow_local.airflow_bin = lambda: {str(fake)!r}

def run(args, settings):
    airflow_local.dags_test(settings, "p", conf=None, log_path=Path({str(tmp_path / "log")!r}), progress=print)

class Parser:
    def parse_args(self, argv):
        return argparse.Namespace(func=run)

cli_main.build_parser = Parser
sys.exit(cli_main.main([]))
"""
    env = {**os.environ, "RUNWAY_HOME": str(tmp_path / "home")}
    runway = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.monotonic() + 60
    while not (tmp_path / "group").is_file() or not (tmp_path / "group").read_text().strip():
        assert runway.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    group = int((tmp_path / "group").read_text())
    runway.terminate()
    assert runway.wait(timeout=60) == 143
    deadline = time.monotonic() + 30
    while alive := subprocess.run(["pgrep", "-g", str(group)], capture_output=True, text=True).stdout.split():
        assert time.monotonic() < deadline, f"left behind: {alive}"
        time.sleep(0.2)


def test_airflow_waits_30_s_for_the_embedded_databases_lock(isolated_settings: Settings) -> None:
    # CI saw the API server answer a trigger with HTTP 500 "Database error" after SQLite's default 5 s: every
    # component of the embedded stack opens the database with a 30 s busy timeout (sqlite_connect.py).
    env = airflow_local.airflow_env(isolated_settings)
    (isolated_settings.home / "airflow").mkdir(parents=True, exist_ok=True)
    code = (
        "from airflow import settings; settings.configure_orm(); "
        "print(settings.engine.raw_connection().driver_connection.execute('pragma busy_timeout').fetchone()[0])"
    )
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert shown.stdout.strip() == "30000", shown.stderr[-2000:]
