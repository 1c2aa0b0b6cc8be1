"""Airflow's own tables (its ORM metadata) in an in-memory SQLite database, and runs written into them as Airflow's
tasks leave them: task states, the figures each TFX node task publishes and the failures runway's operators record
(the values below are the ones a real penguins run wrote; see tests/e2e for a database a real scheduler filled)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert

PIPELINE_TASKS = (
    "check_params", "CsvExampleGen", "GreatExpectationsValidator", "StatisticsGen", "DriftSkewValidator",
    "ExampleValidator", "Transform", "Trainer", "Evaluator", "InfraValidator", "ModelInspector", "TFLiteVariants",
    "Pusher", "TFLitePublisher", "rollout.load", "rollout.wait_available", "rollout.label_canary", "rollout.verify",
    "rollout.promote", "rollout.retire", "rollout.rollback_on_failure",
)  # fmt: skip


def airflow_engine() -> Engine:
    """An empty database with Airflow's schema, as its ORM declares it."""
    from airflow.models import import_all_models
    from airflow.models.base import Base

    import_all_models()
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    return engine


def count_statements(engine: Engine) -> list[str]:
    """Every SQL statement sent from now on (appended as it is sent)."""
    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    return sent


def succeeded_run(
    version: int, *, accuracy: float, rows: int, diff: float | None = None, served: float | None = None
) -> dict[str, Any]:
    """Everything succeeded and ``version`` was pushed and rolled out (task id -> (state, {xcom key: value}));
    ``served``: the served model's accuracy on the new span (the Evaluator's baseline)."""
    metrics = {"sparse_categorical_accuracy": accuracy, "example_count": 32.0}
    if diff is not None:
        metrics["sparse_categorical_accuracy_diff"] = diff
    figures: dict[str, dict[str, Any]] = {
        "StatisticsGen": {"rows_total": rows},
        "GreatExpectationsValidator": {"gate_summary": "Great Expectations suite 'penguins': 24 expectations passed"},
        "Evaluator": {
            "blessed": True,
            "failures": [],
            "metrics": metrics,
            "baseline_metrics": {} if served is None else {"sparse_categorical_accuracy": served},
        },
        "ModelInspector": {"gate_summary": "the candidate keeps the serving contract"},
        "InfraValidator": {"gate_summary": "loaded by runway-model-server in 4.1 s with 16 warmup records"},
        "TFLiteVariants": {"tflite_rejected": []},
        "Pusher": {"pushed": True, "version": str(version)},
    }
    tasks = {task: ("success", figures.get(task, {})) for task in PIPELINE_TASKS}
    tasks["rollout.rollback_on_failure"] = ("skipped", {})
    for task, (_, xcoms) in tasks.items():
        if not task.startswith("rollout."):
            xcoms["report_url"] = f"/runway/reports/penguins/run/{task}.html"
    return tasks


def write_run(engine: Engine, dag_id: str, run_id: str, tasks: dict[str, Any], *, state: str, minutes: int) -> None:
    """One run of ``dag_id`` with its task instances and XComs, ``minutes`` after a fixed start."""
    started = datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    with engine.begin() as connection:
        from airflow.models.dagrun import DagRun
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.xcom import XComModel

        run_pk = connection.execute(
            insert(DagRun.__table__).values(
                dag_id=dag_id, run_id=run_id, run_type="manual", state=state, run_after=started, start_date=started,
                logical_date=started, triggering_user_name="admin", clear_number=0, span_status="not_started",
            )
        ).inserted_primary_key[0]  # fmt: skip
        for task, (task_state, xcoms) in tasks.items():
            connection.execute(
                insert(TaskInstance.__table__).values(
                    id=uuid.uuid4(), task_id=task, dag_id=dag_id, run_id=run_id, map_index=-1,
                    state=task_state, pool="default_pool", end_date=started + timedelta(minutes=5),
                )
            )  # fmt: skip
            for key, value in xcoms.items():
                connection.execute(
                    insert(XComModel.__table__).values(
                        dag_run_id=run_pk, task_id=task, map_index=-1, key=key, dag_id=dag_id, run_id=run_id,
                        value=value, timestamp=started,
                    )
                )  # fmt: skip
