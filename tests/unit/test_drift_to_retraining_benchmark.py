"""benchmarks/drift_to_retraining.py reads each stage from Airflow's own records: the right rows, the right order.

The database holds the columns the benchmark reads, with values as Airflow 3.3 stores them in SQLite (as
``tests/unit/orchestration/test_airflow_local.py`` does); the benchmark itself runs on a real Airflow.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from pipeline_components.settings import CHECKOUT

MONITORING_RUN = "manual__2026-12-07T12:00:00+00:00"
RETRAINING_RUN = "asset_triggered__2026-12-07T12:00:31+00:00"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, CHECKOUT / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load("drift_to_retraining")


def _database(path: Path, *, retraining_started: bool = True) -> Path:
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE dag_run (id INTEGER PRIMARY KEY, dag_id TEXT, run_id TEXT, queued_at TIMESTAMP, "
            "start_date TIMESTAMP, end_date TIMESTAMP, created_at TIMESTAMP)"
        )
        db.execute(
            "CREATE TABLE task_instance (dag_id TEXT, run_id TEXT, task_id TEXT, map_index INTEGER, state TEXT, "
            "scheduled_dttm TIMESTAMP, queued_dttm TIMESTAMP, start_date TIMESTAMP, end_date TIMESTAMP)"
        )
        db.execute(
            "CREATE TABLE asset_event (id INTEGER PRIMARY KEY, asset_id INTEGER, source_dag_id TEXT, "
            "source_run_id TEXT, timestamp TIMESTAMP)"
        )
        db.execute("CREATE TABLE dagrun_asset_event (dag_run_id INTEGER, event_id INTEGER)")
        runs = [
            (1, "flights_monitoring", MONITORING_RUN, "2026-12-07 12:00:00.000000", "2026-12-07 12:00:01.000000"),
            (2, "flights_pipeline", "asset_triggered__an_older_one", "2026-12-07 11:00:00.000000", None),
            (3, "flights_pipeline", RETRAINING_RUN, "2026-12-07 12:00:31.000000", "2026-12-07 12:00:32.000000"),
        ]
        db.executemany(
            "INSERT INTO dag_run (id, dag_id, run_id, queued_at, start_date, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(*run, run[3]) for run in runs],
        )
        monitoring, retraining = ("flights_monitoring", MONITORING_RUN), ("flights_pipeline", RETRAINING_RUN)
        tasks: list[tuple[str | None, ...]] = [
            (*monitoring, "watch_traffic", "12:00:02", "12:00:03", "12:00:05", "12:00:25"),
            (*monitoring, "check_alert", "12:00:25", "12:00:26", "12:00:27", "12:00:28"),
            (*monitoring, "request_retraining", "12:00:28", "12:00:28", "12:00:29", "12:00:30"),
            (*retraining, "check_params", "12:00:32", "12:00:33", "12:00:35", None),
            ("flights_pipeline", "asset_triggered__an_older_one", "check_params", "11:00", "11:00", "11:00:01", None),
        ]  # fmt: skip
        if not retraining_started:
            tasks = [(*task[:5], None, None) if task[1] == RETRAINING_RUN else task for task in tasks]
        db.executemany(
            "INSERT INTO task_instance VALUES (?, ?, ?, -1, 'running', ?, ?, ?, ?)",
            [(*task[:3], *(f"2026-12-07 {t}" if t else None for t in task[3:])) for task in tasks],
        )
        db.execute("INSERT INTO asset_event VALUES (7, 1, 'flights_data', 'another run', '2026-12-07 10:59:59')")
        db.execute(f"INSERT INTO asset_event VALUES (8, 1, 'flights_monitoring', '{MONITORING_RUN}', "
                   "'2026-12-07 12:00:29.500000')")  # fmt: skip
        db.executemany("INSERT INTO dagrun_asset_event VALUES (?, ?)", [(2, 7), (3, 8)])
    return path


def test_each_stage_is_read_from_the_rows_of_this_monitoring_run_and_the_retraining_it_started(
    bench: ModuleType, tmp_path: Path
) -> None:
    db = _database(tmp_path / "airflow.db")

    moments = bench.timeline(db, MONITORING_RUN)
    moments["traffic_closed"] = datetime(2026, 12, 7, 11, 59, 58, tzinfo=UTC)

    assert moments["retraining_run"] == RETRAINING_RUN  # not the older asset-triggered run of another event
    assert bench.retraining_run(db, MONITORING_RUN) == RETRAINING_RUN
    assert bench.stage_seconds(moments) == {
        "trigger": 2.0,  # the file closed at 11:59:58, the run queued at 12:00:00
        "to_watch": 5.0,
        "watch": 20.0,
        "to_event": 4.5,  # watch_traffic's end -> the Asset event
        "to_run": 1.5,  # the event -> the retraining run created
        "to_task": 4.0,  # created -> check_params started
        "total": 37.0,
    }


def test_a_retraining_run_whose_first_task_has_not_started_is_not_yet_a_result(
    bench: ModuleType, tmp_path: Path
) -> None:
    db = _database(tmp_path / "airflow.db", retraining_started=False)

    assert bench.retraining_run(db, MONITORING_RUN) is None
    assert bench.stage_seconds(bench.timeline(db, MONITORING_RUN))["to_task"] is None
    assert bench.retraining_run(db, "manual__a_run_that_emitted_nothing") is None


def test_the_report_gives_median_and_max_per_stage_and_names_the_largest(bench: ModuleType) -> None:
    keys = [stage[0] for stage in bench.STAGES]
    repetitions = [
        {"stages": {**dict.fromkeys(keys, 1.0), "watch": watch, "total": 5.0 + watch}, "rows": 600, "evidence": [],
         "window": {"since_utc": "a", "until_utc": "b"}, "watch_log": {"runtime_first_output": watch / 2}}
        for watch in (20.0, 30.0, 22.0)
    ]  # fmt: skip
    summary = bench.summarize(repetitions)

    assert summary["watch"] == {"median": 22.0, "max": 30.0}
    assert summary["total"] == {"median": 27.0, "max": 35.0}
    result = {"command": "c", "date": "d", "machine": "m", "load_before": [1], "load_after": [1], "wall_s": 1,
              "setup_s": 1, "stages": [{"key": k, "what": w} for k, _, _, w in bench.STAGES],
              "repetitions": repetitions, "summary": summary}  # fmt: skip
    page = _load("drift_to_retraining_report").markdown(result)
    assert "Largest stage by median: **watch_traffic: the window judged" in page
    assert "the runtime interpreter's first output (TensorFlow imported) 11.0" in page


def test_the_time_inside_watch_traffic_comes_from_its_task_log(bench: ModuleType, tmp_path: Path) -> None:
    """Airflow 3.3's task log: JSON lines; the runtime's output under the logger ``runway.tfx_node``."""
    lines = [
        ("12:00:05.100", "task", "::group::Pre Execute"),
        ("12:00:05.900", "task", "Worker startup parse complete"),
        ("12:00:14.100", "runway.tfx_node", "oneDNN custom operations are on."),
        ("12:00:24.600", "runway.tfx_node", '{"alert": true, "rows": 600}'),
        ("12:00:25.100", "task", "::endgroup::"),
    ]
    (tmp_path / "attempt=1.log").write_text("not this attempt\n")
    (tmp_path / "attempt=2.log").write_text(
        "".join(
            json.dumps({"timestamp": f"2026-12-07T{at}Z", "logger": who, "event": what}) + "\n"
            for at, who, what in lines
        )
    )

    assert bench.watch_log(tmp_path) == {
        "dag_parsed": 0.8, "runtime_first_output": 9.0, "runtime_result": 19.5, "log_end": 20.0,
    }  # fmt: skip
    assert bench.watch_log(tmp_path / "no such task") == {}
