"""The rollout as Airflow tasks: where the group sits in the pipeline DAG, the manual serving DAG, and what a step
does without a fleet (skips, saying what to do)."""

from __future__ import annotations

import importlib.util
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from pipeline_components.config import PipelineConfig, load_pipeline_config
from pipeline_components.fleet.tasks import ROLLBACK_TASK, STEP_TASKS, RolloutStepOperator
from pipeline_components.orchestration.backends import ContainerSettings
from pipeline_components.orchestration.dag_factory import build_pipeline_dag, build_serving_dag
from pipeline_components.settings import CHECKOUT, Settings
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


def test_rollout_canary_judges_the_candidate_between_verify_and_promote(
    tmp_path: Path, flights: PipelineConfig, isolated_settings: Settings
) -> None:
    canary = {"iterations": 4, "interval_s": 60}
    config = flights.with_overrides({"serving.rollout": "canary", "serving.canary": canary})
    dag = build_pipeline_dag(
        ir_path=write_ir(tmp_path / "demo.json", DEMO), config=config, settings=isolated_settings, container=LOCAL
    )
    analyse = dag.task_dict["rollout.analyse_canary"]
    assert sorted(analyse.upstream_task_ids) == ["rollout.verify"]
    assert sorted(dag.task_dict["rollout.promote"].upstream_task_ids) == ["rollout.analyse_canary"]
    assert analyse.execution_timeout >= timedelta(seconds=4 * 60)  # the analysis's own length, not only a step's
    assert f"rollout.{ROLLBACK_TASK}" in analyse.downstream_task_ids  # a failed or killed analysis rolls back
    # The canary's options reach the rollout, and the all-at-once rollout has none.
    from pipeline_components.fleet.operations import options_for

    assert options_for(config).canary is not None and options_for(config).canary.iterations == 4
    assert options_for(flights).canary is None


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


# -- the approval gate (serving.approval: required; docs/fleet.md) ---------------------------------------------------


def _assert_approval_between_verify_and_promote(dag: Any) -> None:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    approve = dag.task_dict["rollout.approve"]
    assert isinstance(approve, ApprovalOperator)  # Airflow's own HITL: listed under "Required actions"
    assert approve.options == ["Approve", "Reject"]
    assert approve.upstream_task_ids == {"rollout.verify"}
    assert dag.task_dict["rollout.promote"].upstream_task_ids == {"rollout.approve"}
    assert "rollout.approve" in dag.task_dict[f"rollout.{ROLLBACK_TASK}"].upstream_task_ids
    assert approve.response_timeout == timedelta(hours=24)
    assert approve.retries == 0  # Airflow's race on a fast answer fails it safely (see RolloutApprovalOperator)


def test_approval_required_puts_an_approval_between_verify_and_promote(
    tmp_path: Path, flights: PipelineConfig, isolated_settings: Settings
) -> None:
    config = flights.with_overrides({"serving.approval": "required"})
    pipeline = build_pipeline_dag(
        ir_path=write_ir(tmp_path / "demo.json", DEMO), config=config, settings=isolated_settings, container=LOCAL
    )
    _assert_approval_between_verify_and_promote(pipeline)
    _assert_approval_between_verify_and_promote(build_serving_dag(config=config))


def test_approval_timeout_comes_from_the_configuration(flights: PipelineConfig) -> None:
    config = flights.with_overrides({"serving.approval": "required", "serving.approval_timeout_h": 0.5})
    assert build_serving_dag(config=config).task_dict["rollout.approve"].response_timeout == timedelta(minutes=30)


def test_approval_none_promotes_a_verified_canary_without_waiting(
    tmp_path: Path, flights: PipelineConfig, isolated_settings: Settings
) -> None:
    assert flights.serving.approval == "none"  # make run finishes unattended
    pipeline = build_pipeline_dag(
        ir_path=write_ir(tmp_path / "demo.json", DEMO), config=flights, settings=isolated_settings, container=LOCAL
    )
    for dag in (pipeline, build_serving_dag(config=flights)):
        assert "rollout.approve" not in dag.task_dict
        assert dag.task_dict["rollout.promote"].upstream_task_ids == {"rollout.verify"}


def test_a_compile_override_of_the_approval_reaches_the_dags(isolated_settings: Settings) -> None:
    """`runway compile penguins --set serving.approval=required` records the override in the IR; the DAG file
    builds both DAGs of that pipeline with it."""
    isolated_settings.ir_dir.mkdir(parents=True)
    ir = write_ir(isolated_settings.ir_path("penguins"), DEMO, name="penguins")
    document = json.loads(ir.read_text())
    document["runway"] = {"config": str(CONFIGS / "penguins.yaml"), "overrides": {"serving.approval": "required"}}
    ir.write_text(json.dumps(document))
    spec = importlib.util.spec_from_file_location("dag_file_under_test", CHECKOUT / "dags" / "tfx_pipelines.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for dag_id in ("penguins_pipeline", "penguins_serving"):
        _assert_approval_between_verify_and_promote(getattr(module, dag_id))


def test_a_rollback_asks_nobody(flights: PipelineConfig) -> None:
    """The serving DAG's rollback is the way out of trouble: its approve step lets it through at once."""
    config = flights.with_overrides({"serving.approval": "required"})
    approve = build_serving_dag(config=config).task_dict["rollout.approve"]
    pushed: dict[str, Any] = {}
    ti = type("TaskInstance", (), {"xcom_push": lambda self, key, value: pushed.update({key: value})})()

    assert approve.execute({"params": {"action": "rollback", "version": None}, "ti": ti}) == {"decision": "not_needed"}
    assert pushed == {"decision": "not_needed"}
