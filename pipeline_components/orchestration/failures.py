"""Why a run's tasks failed, read back for its summary: one line per failed task and where the details are.

Each runway operator records, before it fails its task, the first line of the reason and the page that has the
rest (``operators.record_failure``: an XCom). ``runway run`` reads those rows from the embedded Airflow database,
as it reads the task states, and points at the task's own log when no page was written.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from pipeline_components.orchestration.airflow_local import database_path
from pipeline_components.orchestration.links import FAILURE_XCOM_KEY
from pipeline_components.settings import Settings


def task_log_path(settings: Settings, dag_id: str, run_id: str, task_id: str, attempt: int) -> Path:
    """Where Airflow writes a task's log (its default ``log_filename_template``, under the embedded home)."""
    return (
        settings.home / "airflow" / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        / f"attempt={max(1, attempt)}.log"
    )  # fmt: skip


def _decoded(value: Any) -> Any:
    """An XCom value as stored: JSON, possibly JSON text inside JSON, possibly Airflow's ``__var`` wrapper."""
    for _ in range(3):
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return value
            continue
        if isinstance(value, dict) and "__var" in value:
            value = value["__var"]
            continue
        return value
    return value


def recorded_failures(db: Path, dag_id: str, run_id: str) -> dict[str, dict[str, str]]:
    """Task id -> ``{"reason", "report"}`` as the operators recorded them (empty when none did)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as connection:
        rows = connection.execute(
            "SELECT task_id, value FROM xcom WHERE dag_id = ? AND run_id = ? AND key = ? AND map_index = -1",
            (dag_id, run_id, FAILURE_XCOM_KEY),
        ).fetchall()
    found = {}
    for task_id, value in rows:
        decoded = _decoded(value)
        if isinstance(decoded, dict) and decoded.get("reason"):
            found[task_id] = {"reason": str(decoded["reason"]), "report": str(decoded.get("report") or "")}
    return found


def failure_lines(settings: Settings, dag_id: str, run_id: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """For each failed task: why (one line) and where the full report is (its page, else its log).

    Args:
        settings: where the embedded Airflow and the report pages live.
        dag_id: the DAG.
        run_id: the run.
        tasks: the run's task states (``airflow_local.task_states``).
    """
    try:
        recorded = recorded_failures(database_path(settings), dag_id, run_id)
    except sqlite3.Error:
        recorded = {}
    found: dict[str, Any] = {}
    for task in tasks:
        if task["state"] != "failed":
            continue
        name = task["task_id"]
        entry = recorded.get(name, {})
        log = task_log_path(settings, dag_id, run_id, name, task.get("try_number") or 1)
        report = settings.home / entry["report"] if entry.get("report") else log
        found[name] = {
            "reason": entry.get("reason") or "failed without a recorded reason (an error outside the node)",
            "report": str(report),
            "tries": task.get("try_number") or 1,
        }
    return found
