"""Benchmark: from a drifted window of served traffic to the retraining run starting (issue 20, "Done when").

    nice -n 10 .venv/bin/python benchmarks/drift_to_retraining.py     # ~5 minutes (272 s); writes benchmarks/results/

The stack of ``tests/e2e/test_closed_loop.py``: a 10 % sample of January 2013 trained through the flights pipeline
and ``stable`` on 2 runway model servers behind nginx that log every request; then a real Airflow 3 (API server,
scheduler with the LocalExecutor, DAG processor: ``tests/airflow_stack.py``) over the same database. Each repetition:

1. replays ``--count`` real July flights through the load balancer (``runway traffic replay``: summer traffic to a
   winter model, which alerts on temp and dewp: ``benchmarks/results/monitoring_months.md``), and waits until the
   model servers have closed the request log files (only closed files are judged);
2. triggers ``flights_monitoring`` through the REST API, as a person or the schedule does;
3. lets the scheduler do the rest: ``watch_traffic`` judges the window, ``check_alert``, ``request_retraining``
   emits the Asset ``flights_spans``, and the scheduler creates the asset-triggered run of ``flights_pipeline``;
4. once that run's first task has started, marks the run failed (only its start is measured; stopping it keeps the
   January version serving, so every repetition alerts the same way).

Every time comes from Airflow's own records (the metadata database's ``dag_run``, ``task_instance``,
``asset_event`` and ``dagrun_asset_event`` rows), except the first: when the newest request log file the window
judged was closed (its modification time; the model server renames it from ``.partial`` when it closes it).
Writes ``benchmarks/results/drift_to_retraining.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import time
from contextlib import closing
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from pipeline_components.settings import CHECKOUT, Settings

RESULTS = CHECKOUT / "benchmarks" / "results"
MONITORING, PIPELINE = "flights_monitoring", "flights_pipeline"
# What tests/e2e/test_closed_loop.py trains: a small, fast model that the flights pipeline's gates still pass.
FAST = ["--set", "model.train_steps=150", "--set", "model.eval_steps=5", "--set", "evaluation.lower_bound=0.55",
        "--set", "validation.delivery.min_rows=500", "--param", "tflite_variants=int8"]  # fmt: skip
# (key, from event, to event, what happens in between)
STAGES = [
    ("trigger", "traffic_closed", "monitoring_queued", "newest judged log file closed -> monitoring run queued"),
    ("to_watch", "monitoring_queued", "watch_start", "monitoring run queued -> watch_traffic started"),
    ("watch", "watch_start", "watch_end", "watch_traffic: the window judged (runtime environment, TFDV)"),
    ("to_event", "watch_end", "asset_event", "watch_traffic end -> check_alert -> Asset event (request_retraining)"),
    ("to_run", "asset_event", "retraining_created", "Asset event -> retraining dag run created (scheduler)"),
    ("to_task", "retraining_created", "retraining_first_task", "retraining run created -> its first task started"),
]


# --- Airflow's records --------------------------------------------------------------------------------------------


def parse_time(value: str | None) -> datetime | None:
    """A time as Airflow 3.3 stores it in SQLite (UTC, ``2026-12-07 12:01:02.345678``)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def timeline(db: Path, monitoring_run: str) -> dict[str, Any]:
    """The moments of one monitoring run and the retraining it asked for, from Airflow's metadata database.

    Args:
        db: the SQLite metadata database (read-only).
        monitoring_run: the run id of ``flights_monitoring``.

    Returns:
        Event name -> time (UTC), None for what has not happened (yet): the monitoring run queued and started, each
        of its tasks scheduled / queued / started / ended, the Asset event it emitted, and the asset-triggered
        ``flights_pipeline`` run that event fed (created, queued, started) with its first task's start; and
        ``retraining_run``, that run's id (None before it exists).
    """
    run = _rows(db, "SELECT queued_at, start_date, end_date FROM dag_run WHERE dag_id = ? AND run_id = ?",
                MONITORING, monitoring_run) or [(None, None, None)]  # fmt: skip
    moments: dict[str, Any] = dict(
        zip(("monitoring_queued", "monitoring_start", "monitoring_end"), run[0], strict=True)
    )
    for task, *times in _rows(db, "SELECT task_id, scheduled_dttm, queued_dttm, start_date, end_date FROM "
                              "task_instance WHERE dag_id = ? AND run_id = ? AND map_index = -1", MONITORING,
                              monitoring_run):  # fmt: skip
        short = {"watch_traffic": "watch", "check_alert": "check", "request_retraining": "request"}.get(task, task)
        moments |= {
            f"{short}_{what}": at for what, at in zip(("scheduled", "queued", "start", "end"), times, strict=True)
        }
    event = _rows(db, "SELECT id, timestamp FROM asset_event WHERE source_dag_id = ? AND source_run_id = ? ORDER BY id",
                  MONITORING, monitoring_run)  # fmt: skip
    retraining = event and _rows(db, "SELECT r.run_id, r.created_at, r.queued_at, r.start_date FROM dag_run r JOIN "
                                 "dagrun_asset_event d ON d.dag_run_id = r.id WHERE d.event_id = ? AND r.dag_id = ?",
                                 event[0][0], PIPELINE)  # fmt: skip
    if event:
        moments["asset_event"] = event[0][1]
    if retraining:
        run_id, *times = retraining[0]
        moments |= dict(zip(("retraining_created", "retraining_queued", "retraining_start"), times, strict=True))
        moments["retraining_first_task"] = _rows(db, "SELECT MIN(start_date) FROM task_instance WHERE dag_id = ? "
                                                 "AND run_id = ?", PIPELINE, run_id)[0][0]  # fmt: skip
    return {**{key: parse_time(value) for key, value in moments.items()},
            "retraining_run": retraining[0][0] if retraining else None}  # fmt: skip


def _rows(db: Path, sql: str, *parameters: Any) -> list[Any]:
    """One read-only query of Airflow's SQLite database (Airflow keeps writing it)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as connection:
        return connection.execute(sql, parameters).fetchall()


def retraining_run(db: Path, monitoring_run: str) -> str | None:
    """The retraining run the monitoring run's Asset event started, once its first task has started."""
    moments = timeline(db, monitoring_run)
    return moments["retraining_run"] if moments.get("retraining_first_task") else None


def stage_seconds(moments: dict[str, Any]) -> dict[str, float | None]:
    """Each stage of ``STAGES`` in seconds (None where an end is missing), and the total."""
    seconds: dict[str, float | None] = {}
    for key, begin, end, _ in STAGES:
        start, stop = moments.get(begin), moments.get(end)
        seconds[key] = round((stop - start).total_seconds(), 2) if start and stop else None
    first, last = moments.get(STAGES[0][1]), moments.get(STAGES[-1][2])
    seconds["total"] = round((last - first).total_seconds(), 2) if first and last else None
    return seconds


def watch_log(log_dir: Path) -> dict[str, float | None]:
    """Where ``watch_traffic``'s time went, from its last attempt's task log (JSON lines, Airflow's timestamps):
    seconds from its first line to the DAG file parsed, to the runtime interpreter's first output (TensorFlow
    imported), to its result (the JSON line), and to the log's last line."""
    attempts = sorted(log_dir.glob("attempt=*.log"))
    lines = attempts[-1].read_text().splitlines() if attempts else []
    records = [json.loads(line) for line in lines if line.startswith("{")]
    if not records:
        return {}
    start = parse_time(records[0]["timestamp"])
    runtime = [r for r in records if r.get("logger") == "runway.tfx_node"]
    parsed = next((r for r in records if r.get("event") == "Worker startup parse complete"), None)
    result = next((r for r in reversed(runtime) if str(r.get("event")).startswith("{")), None)
    first = runtime[0] if runtime else None
    marks = {"dag_parsed": parsed, "runtime_first_output": first, "runtime_result": result, "log_end": records[-1]}
    return {
        key: round((parse_time(r["timestamp"]) - start).total_seconds(), 2) if r and start else None  # type: ignore[operator]
        for key, r in marks.items()
    }


def summarize(repetitions: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Median and max of every stage (and the total) over the repetitions."""
    summary: dict[str, dict[str, float | None]] = {}
    for key in [*(stage[0] for stage in STAGES), "total"]:
        values = [r["stages"][key] for r in repetitions if r["stages"].get(key) is not None]
        median, top = (round(statistics.median(values), 2), round(max(values), 2)) if values else (None, None)
        summary[key] = {"median": median, "max": top}
    return summary


# --- the stack ----------------------------------------------------------------------------------------------------


def build_stack(settings: Settings, *, month: int) -> None:
    """January sampled, trained, pushed and `stable` on a 2-instance fleet that logs every request (the e2e's)."""
    from pipeline_components.ports import free_ports
    from tests.helpers import check, latest_summary, runway

    check(runway(settings, "data", "prepare", "flights", "--spans", "1", "--sample-fraction", "0.1"))
    rest, grpc, base = free_ports(3)
    ports = ["--rest-port", str(rest), "--grpc-port", str(grpc), "--instance-base-port", str(base)]
    check(runway(settings, "fleet", "up", "--instances", "2", *ports))
    check(runway(settings, "run", "flights", *FAST))
    assert latest_summary(settings, "flights")["metadata"]["push"]["pushed"] is True, "January was not pushed"
    check(runway(settings, "data", "prepare", "flights", "--spans", str(month), "--sample-fraction", "0.1"))


def closed_log_files(prefix: Path) -> dict[Path, float]:
    """The request log files the model servers have closed, with their modification (closing) times."""
    return {path: path.stat().st_mtime for path in prefix.parent.glob(f"{prefix.name}-*.tfrecord")}


def still_running(db: Path, dag_id: str, run_id: str) -> bool:
    """Whether a task of the run is still scheduled, queued or running."""
    busy = ("scheduled", "queued", "running", "restarting", "up_for_retry")
    sql = f"SELECT COUNT(*) FROM task_instance WHERE dag_id = ? AND run_id = ? AND state IN ({','.join('?' * 5)})"
    return bool(_rows(db, sql, dag_id, run_id, *busy)[0][0])


def cron_examined(db: Path) -> bool:
    """Whether the scheduler has created the runs the cron schedules of the pipeline and monitoring DAGs owe
    (their next run is in the future): Airflow runs the latest missed interval of a new DAG (catchup=False)."""
    sql = "SELECT dag_id, next_dagrun_create_after FROM dag WHERE dag_id IN (?, ?)"
    rows = _rows(db, sql, MONITORING, PIPELINE)
    now = datetime.now(UTC)
    return len(rows) == 2 and all((parse_time(after) or now) > now for _, after in rows)


def call(api: Any, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One REST call that must succeed; retried while the API server answers 5xx (on SQLite, a write can time out
    on the database lock while the scheduler and the DAG processor write: ``tests/airflow_stack.py``)."""
    for _attempt in range(5):
        status, answer = api.call(method, path, body)
        if status < 500:
            break
        time.sleep(2)
    assert status == 200, f"{method} {path}: {status} {answer}"
    return answer


def finished(api: Any, dag_id: str, run_id: str) -> str | None:
    """The run's state once it has finished, else None (also while the API server is busy)."""
    status, run = api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
    return run["state"] if status == 200 and run["state"] in ("success", "failed") else None


def stop_other_runs(api: Any, db: Path) -> list[str]:
    """Mark failed every unfinished run of the pipeline and monitoring DAGs (the cron's catch-up runs at start):
    with ``max_active_runs`` 1, a run still going would hold back the one measured. Returns their ids."""
    from tests.airflow_stack import wait

    stopped = []
    for dag_id in (MONITORING, PIPELINE):
        runs = call(api, "GET", f"/api/v2/dags/{dag_id}/dagRuns?state=queued&state=running")["dag_runs"]
        for run_id in (run["dag_run_id"] for run in runs):
            call(api, "PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", {"state": "failed"})
            wait(f"{dag_id} {run_id} to stop", partial(lambda d, r: not still_running(db, d, r), dag_id, run_id), 180)
            stopped.append(f"{dag_id} {run_id}")
    return stopped


def repeat(settings: Settings, api: Any, *, month: int, count: int, rate: int) -> dict[str, Any]:
    """One repetition (module docstring): replay, monitoring run, retraining started and stopped."""
    from pipeline_components.config import load_pipeline_config
    from pipeline_components.fleet.request_logging import request_log_prefix
    from pipeline_components.orchestration.airflow_local import database_path
    from pipeline_components.orchestration.monitoring_windows import PARTIAL_GLOB, last_window
    from tests.airflow_stack import wait
    from tests.helpers import check, runway

    serving = load_pipeline_config(CHECKOUT / "configs" / "flights.yaml").serving
    directory = serving.request_logging.directory if serving.request_logging else None
    prefix = request_log_prefix(home=settings.home, model=serving.model_name, directory=directory)
    db = database_path(settings)
    stopped = stop_other_runs(api, db)
    before = closed_log_files(prefix)
    check(runway(settings, "traffic", "replay", "flights", "--month", str(month), "--count", str(count),
                 "--rate", str(rate)))  # fmt: skip
    # The model servers close a file 10 s after opening it (fleet/spec.py); only closed files are judged.
    wait("the request log files to close", lambda: not list(prefix.parent.glob(PARTIAL_GLOB)), timeout=90, every=0.5)
    new = {path: mtime for path, mtime in closed_log_files(prefix).items() if path not in before}
    assert new, "the replay left no request log file"

    run_id = api.trigger(MONITORING, {})
    state = wait("the monitoring run", lambda: finished(api, MONITORING, run_id), timeout=600, every=1)
    assert state == "success", f"{MONITORING} {run_id}: {state}"
    window = last_window(settings.home, "flights")
    result = json.loads((window / "result.json").read_text()) if window else {}
    assert result.get("alert"), f"the window {window} did not alert: {result.get('evidence')}"

    retraining = wait("the retraining run's first task", lambda: retraining_run(db, run_id), timeout=300, every=1)
    moments = timeline(db, run_id)
    call(api, "PATCH", f"/api/v2/dags/{PIPELINE}/dagRuns/{retraining}", {"state": "failed"})
    # The next repetition's retraining must not queue behind this one (max_active_runs).
    wait("the stopped retraining run's tasks", lambda: not still_running(db, PIPELINE, retraining), 180, every=1)
    moments["traffic_closed"] = datetime.fromtimestamp(max(new.values()), UTC)
    logs = settings.home / "airflow" / "logs" / f"dag_id={MONITORING}" / f"run_id={run_id}" / "task_id=watch_traffic"
    return {
        "monitoring_run": run_id,
        "stopped_before": stopped,
        "retraining_run": moments.pop("retraining_run"),
        "window": result["window"],
        "rows": result["rows"],
        "evidence": result["evidence"],
        "moments": {key: value.isoformat() if value else None for key, value in sorted(moments.items())},
        "stages": stage_seconds(moments),
        "watch_log": watch_log(logs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, default=Path("/tmp/runway-drift-to-retraining"),
                        help="RUNWAY_HOME of the stack (emptied first)")  # fmt: skip
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--month", type=int, default=7, help="the drifted month replayed (default: July)")
    parser.add_argument("--count", type=int, default=600, help="requests replayed per repetition")
    parser.add_argument("--rate", type=int, default=100, help="requests per second")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from pipeline_components.orchestration.airflow_local import database_path
    from tests.airflow_stack import airflow_stack, wait
    from tests.helpers import runway

    shutil.rmtree(args.home, ignore_errors=True)
    args.home.mkdir(parents=True)
    settings = Settings.from_env({"RUNWAY_HOME": str(args.home)})
    db = database_path(settings)
    started, load_before = time.monotonic(), [round(x, 2) for x in os.getloadavg()]
    repetitions: list[dict[str, Any]] = []
    setup_s, failure = None, None
    try:
        build_stack(settings, month=args.month)
        setup_s = round(time.monotonic() - started, 1)
        print(f"stack built in {setup_s} s", flush=True)
        with airflow_stack(settings, users={"operator": "admin"}, dag_id=MONITORING) as airflow:
            api = airflow.api("operator")
            for dag_id in (MONITORING, PIPELINE):
                call(api, "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
            wait("the scheduler's first look at the cron schedules", lambda: cron_examined(db), timeout=180)
            for number in range(1, args.repetitions + 1):
                repetitions.append(repeat(settings, api, month=args.month, count=args.count, rate=args.rate))
                print(f"repetition {number}: {json.dumps(repetitions[-1]['stages'])}", flush=True)
    except (AssertionError, KeyError, OSError, sqlite3.Error) as err:  # the repetitions done so far are still a result
        failure = f"{type(err).__name__}: {err}"
        print(f"stopped: {failure}", flush=True)
    finally:
        runway(settings, "fleet", "down")
    result = {
        "command": "nice -n 10 .venv/bin/python benchmarks/drift_to_retraining.py "
        f"--repetitions {args.repetitions} --month {args.month} --count {args.count} --rate {args.rate}",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs, shared with other work",
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "setup_s": setup_s,
        "failure": failure,
        "wall_s": round(time.monotonic() - started, 1),
        "stages": [{"key": key, "from": begin, "to": end, "what": what} for key, begin, end, what in STAGES],
        "repetitions": repetitions,
        "summary": summarize(repetitions),
    }
    from drift_to_retraining_report import markdown, plot  # beside this file

    if not repetitions:
        raise SystemExit(f"no repetition finished ({failure})")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "drift_to_retraining.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "drift_to_retraining.md").write_text(markdown(result))
    plot(result, args.out / "drift_to_retraining.png")
    print(f"wrote {args.out}/drift_to_retraining.{{json,md,png}} in {result['wall_s']} s")


if __name__ == "__main__":
    main()
