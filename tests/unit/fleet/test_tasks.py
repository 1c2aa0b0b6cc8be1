"""The rollout as Airflow tasks: where the group sits in the pipeline DAG, the manual serving DAG, and what a step
does without a fleet (skips, saying what to do)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from pipeline_components.config import PipelineConfig, load_pipeline_config
from pipeline_components.fleet.tasks import ROLLBACK_TASK, STEP_TASKS, RolloutStepOperator
from pipeline_components.orchestration.backends import ContainerSettings
from pipeline_components.orchestration.dag_factory import build_pipeline_dag, build_serving_dag
from pipeline_components.settings import Settings
from tests.conftest import CONFIGS
from tests.helpers import ROLLOUT_TASKS
from tests.unit.orchestration.test_ir import DEMO, write_ir

LOCAL = ContainerSettings.from_env({})


@pytest.fixture
def flights() -> PipelineConfig:
    return load_pipeline_config(CONFIGS / "flights.yaml")


def test_the_rollout_group_follows_the_pusher_one_task_per_step(
    tmp_path: Path, flights: PipelineConfig, isolated_settings: Settings
) -> None:
    dag = build_pipeline_dag(
        ir_path=write_ir(tmp_path / "demo.json", DEMO), config=flights, settings=isolated_settings, container=LOCAL
    )
    for task_id, upstream in ROLLOUT_TASKS.items():
        assert sorted(dag.task_dict[task_id].upstream_task_ids) == upstream
    load = dag.task_dict["rollout.load"]
    assert isinstance(load, RolloutStepOperator) and load.retries == 0
    assert dag.task_dict[f"rollout.{ROLLBACK_TASK}"].trigger_rule == "one_failed"
    assert [t.uri for t in dag.task_dict["rollout.promote"].outlets] == ["runway://serving/flights_delay/stable"]


def test_serving_rollout_false_leaves_the_pipeline_without_a_rollout(
    tmp_path: Path, flights: PipelineConfig, isolated_settings: Settings
) -> None:
    config = flights.with_overrides({"serving.rollout": False})
    dag = build_pipeline_dag(
        ir_path=write_ir(tmp_path / "demo.json", DEMO), config=config, settings=isolated_settings, container=LOCAL
    )
    assert not [task for task in dag.task_dict if task.startswith("rollout.")]


def test_the_serving_dag_promotes_or_rolls_back_a_version(flights: PipelineConfig) -> None:
    dag = build_serving_dag(config=flights)
    assert dag.dag_id == "flights_serving" and dag.schedule is None
    assert {f"rollout.{step}" for step in STEP_TASKS} <= set(dag.task_dict)
    assert dag.task_dict["rollout.load"].candidate_from == "params"
    assert dag.params["action"] == "promote" and dag.params["version"] is None
    assert dag.params.get_param("action").schema["enum"] == ["promote", "rollback"]


def test_without_a_fleet_the_rollout_skips_and_says_how_to_start_one(
    flights: PipelineConfig, isolated_settings: Settings
) -> None:
    step = RolloutStepOperator(task_id="load", step="load", config_path=str(flights.source))
    context: dict[str, Any] = {"params": {}}
    with pytest.raises(AirflowSkipException, match=r"runway fleet up.*runway fleet rollout flights"):
        step.execute(context)
