"""The runs section: each gate's verdict of each run, read from Airflow's tables as its tasks leave them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pipeline_components.console.runs import GATES, read_runs
from tests.unit.console.airflow_db import airflow_engine, count_statements, succeeded_run, write_run

DAG = "penguins_pipeline"


@pytest.fixture(scope="module")
def engine() -> Engine:
    return airflow_engine()


def _runs(engine: Engine, limit: int = 50) -> dict[str, Any]:
    with Session(engine) as session:
        return {run.run_id: run for run in read_runs(session, DAG, limit=limit)}


def _verdicts(run: Any) -> dict[str, tuple[str, str]]:
    return {g.gate: (g.verdict, g.reason) for g in run.verdicts()}


def test_fifty_runs_are_read_in_three_queries_newest_first(engine: Engine) -> None:
    for index in range(55):
        write_run(
            engine, DAG, f"scheduled__{index:03d}", succeeded_run(100 + index, accuracy=0.9, rows=100 + index),
            state="success", minutes=index,
        )  # fmt: skip
    sent = count_statements(engine)
    with Session(engine) as session:
        runs = read_runs(session, DAG, limit=50)
    assert [run.run_id for run in runs[:2]] == ["scheduled__054", "scheduled__053"] and len(runs) == 50
    assert len([statement for statement in sent if statement.lstrip().upper().startswith("SELECT")]) == 3
    newest = runs[0]
    assert newest.pushed_version == 154 and newest.rows == 154
    assert newest.metric("sparse_categorical_accuracy") == 0.9
    assert {g.gate: g.verdict for g in newest.verdicts()} == dict.fromkeys(GATES, "passed")
    assert _verdicts(newest)["push"] == ("passed", "version 154")
    assert next(g for g in newest.verdicts() if g.gate == "evaluation").report.endswith("/Evaluator.html")


def test_a_refusing_gate_fails_with_its_reason_and_later_gates_are_not_reached(engine: Engine) -> None:
    tasks = succeeded_run(0, accuracy=0.9, rows=117)
    reason = "DriftSkewValidator: drift above threshold on 1 of 6 features"
    tasks["DriftSkewValidator"] = (
        "failed",
        {"runway_failure": {"reason": reason, "report": "reports/penguins/r/DriftSkewValidator.drift.html"}},
    )
    for task in ("ExampleValidator", "Transform", "Trainer", "Evaluator", "InfraValidator", "ModelInspector", "Pusher"):
        tasks[task] = ("upstream_failed", {})
    for task in [t for t in tasks if t.startswith("rollout.")]:
        tasks[task] = ("upstream_failed", {})
    write_run(engine, DAG, "manual__drift", tasks, state="failed", minutes=1000)
    verdicts = _verdicts(_runs(engine)["manual__drift"])
    assert verdicts["data"] == ("failed", reason)
    assert verdicts["evaluation"][0] == verdicts["push"][0] == verdicts["rollout"][0] == "skipped"
    assert "not reached" in verdicts["evaluation"][1]
    drift = next(g for g in _runs(engine)["manual__drift"].verdicts() if g.gate == "data")
    assert drift.report == "/runway/reports/penguins/r/DriftSkewValidator.drift.html"  # the page it recorded


def test_a_model_not_blessed_is_the_evaluation_refusing_and_nothing_pushed(engine: Engine) -> None:
    tasks = succeeded_run(0, accuracy=0.71, rows=117)
    failure = "sparse_categorical_accuracy: 0.71 is below the lower bound 0.8"
    tasks["Evaluator"] = ("success", {"blessed": False, "failures": [failure], "metrics": {}})
    tasks["Pusher"] = ("skipped", {})
    for task in [t for t in tasks if t.startswith("rollout.")]:
        tasks[task] = ("skipped", {})
    write_run(engine, DAG, "manual__unblessed", tasks, state="success", minutes=1001)
    run = _runs(engine)["manual__unblessed"]
    verdicts = _verdicts(run)
    assert verdicts["evaluation"] == ("failed", f"not blessed: {failure}")
    assert verdicts["push"][0] == verdicts["rollout"][0] == "skipped"
    assert run.pushed_version is None


def test_a_running_run_has_pending_gates(engine: Engine) -> None:
    tasks = succeeded_run(0, accuracy=0.9, rows=117)
    for task in ("Evaluator", "InfraValidator", "ModelInspector", "TFLiteVariants", "Pusher", "TFLitePublisher"):
        tasks[task] = ("running" if task == "Evaluator" else None, {})
    for task in [t for t in tasks if t.startswith("rollout.")]:
        tasks[task] = (None, {})
    write_run(engine, DAG, "manual__running", tasks, state="running", minutes=1002)
    verdicts = _verdicts(_runs(engine)["manual__running"])
    assert verdicts["data"][0] == "passed"
    assert {verdicts[gate][0] for gate in ("evaluation", "contract", "infra", "push", "rollout")} == {"pending"}
