"""`runway run`'s view of a DAG run: the run id and skip reasons from `airflow dags test` output (lines as
Airflow 3.3 prints them), and each task's progress from Airflow's database."""

from __future__ import annotations

import sqlite3
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


def _database(path: Path, rows: list[tuple[str, str | None, str | None, str | None, int]]) -> Path:
    """A task_instance table with the columns runway reads, values as Airflow 3.3 stores them in SQLite."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS task_instance (dag_id TEXT, run_id TEXT, task_id TEXT, map_index INTEGER, "
            "state TEXT, start_date TIMESTAMP, end_date TIMESTAMP, try_number INTEGER)"
        )
        db.execute("DELETE FROM task_instance")
        db.executemany("INSERT INTO task_instance VALUES ('p', ?, ?, -1, ?, ?, ?, ?)", [(RUN, *row) for row in rows])
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
    tasks = airflow_local.read_task_instances(db, "p", RUN)
    assert [t["task_id"] for t in tasks] == ["CsvExampleGen", "StatisticsGen", "Trainer"]
    assert tasks[0]["seconds"] == 2.5 and tasks[0]["start_date"] == "2026-11-22T04:06:01.200000+00:00"
    assert tasks[1]["seconds"] is None and tasks[2]["state"] is None
    assert airflow_local.read_task_instances(db, "p", "another-run") == []


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
