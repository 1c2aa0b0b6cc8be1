"""Reading progress out of `airflow dags test` output (lines as Airflow 3.3 prints them)."""

from __future__ import annotations

from pipeline_components.orchestration import airflow_local
from pipeline_components.settings import Settings

CREATED = (
    "2026-11-21T21:17:13.959000Z [info     ] Created dag run.               [airflow.models.dagrun] "
    "dagrun=<DagRun flights_pipeline @ 2026-11-21 21:17:13.589952+00:00: manual__2026-11-21T21:17:13.898271+00:00,"
    " state:running, queued_at: None. run_type: manual> loc=dagrun.py:2464"
)
STARTED = (
    "2026-11-21T21:17:41.947341Z [info     ] [DAG TEST] running task <TaskInstance: flights_pipeline.latest_blessed"
    "_model_resolver manual__2026-11-21T21:17:13.898271+00:00 [TaskInstanceState.SCHEDULED] ti_id=01a1> [x]"
)
ENDED = (
    "2026-11-21T21:18:04.079241Z [info     ] Task instance state updated    [airflow.api_fastapi.execution_api."
    "routes.task_instances] correlation_id=01a1 loc=task_instances.py:485 new_state=success rows_affected=1"
)


SKIPPED = (
    "2026-11-21T22:19:46.187117Z [info     ] Skipping task.                 [task] loc=task_runner.py:1622 "
    "reason='Pusher skipped: span 12 is already served as version 1795299581 (run manual__1); nothing new'"
)


def test_run_id_task_and_state_are_read_from_the_log() -> None:
    created = airflow_local._RUN_CREATED.search(CREATED)
    assert created and created.group("run_id") == "manual__2026-11-21T21:17:13.898271+00:00"
    started = airflow_local._TASK_STARTED.search(STARTED)
    assert started and started.group("task") == "latest_blessed_model_resolver"
    ended = airflow_local._TASK_ENDED.search(ENDED)
    assert ended and ended.group("state") == "success"
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


def test_json_is_found_after_airflows_warnings() -> None:
    import pytest

    from pipeline_components.errors import RunwayError

    assert airflow_local._json_part('[{"a": 1}]') == '[{"a": 1}]'
    assert airflow_local._json_part('warning: graphviz\n[{"a": 1}]') == '[{"a": 1}]'
    with pytest.raises(RunwayError, match="no JSON"):
        airflow_local._json_part("only warnings")
