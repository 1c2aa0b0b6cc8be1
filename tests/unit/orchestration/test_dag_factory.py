from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_components import boundary as run_params
from pipeline_components.config import load_pipeline_config
from pipeline_components.orchestration.backends import ContainerSettings
from pipeline_components.orchestration.dag_factory import (
    CHECK_PARAMS_TASK,
    build_data_dag,
    build_pipeline_dag,
    spans_asset,
)
from pipeline_components.orchestration.operators import (
    CheckRunParametersOperator,
    RuntimeCommandOperator,
    TfxNodeOperator,
)
from pipeline_components.settings import Settings
from tests.conftest import CONFIGS
from tests.unit.orchestration.test_ir import DEMO, write_ir

LOCAL = ContainerSettings.from_env({})


@pytest.fixture
def flights():  # type: ignore[no-untyped-def]
    return load_pipeline_config(CONFIGS / "flights.yaml")


def test_one_task_per_node_with_the_irs_edges(tmp_path: Path, flights, isolated_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    ir = write_ir(tmp_path / "demo.json", DEMO)
    dag = build_pipeline_dag(ir_path=ir, config=flights, settings=isolated_settings, container=LOCAL)
    assert dag.dag_id == "demo_pipeline"
    rollout = {task for task in dag.task_dict if task.startswith("rollout.")}  # tests/unit/fleet/test_tasks.py
    assert set(dag.task_dict) - rollout == {CHECK_PARAMS_TASK, "CsvExampleGen", "StatisticsGen", "Trainer", "Pusher"}
    assert dag.task_dict["Pusher"].upstream_task_ids == {"StatisticsGen", "Trainer"}
    assert dag.task_dict["CsvExampleGen"].downstream_task_ids == {"StatisticsGen", "Trainer"}
    # The parameters are checked before any node runs.
    assert dag.task_dict["CsvExampleGen"].upstream_task_ids == {CHECK_PARAMS_TASK}
    assert isinstance(dag.task_dict[CHECK_PARAMS_TASK], CheckRunParametersOperator)
    assert dag.task_dict[CHECK_PARAMS_TASK].retries == 0
    trainer = dag.task_dict["Trainer"]
    assert isinstance(trainer, TfxNodeOperator)
    assert trainer.tfx_node_id == "Trainer"
    assert trainer.retries == 2 and trainer.retry_exponential_backoff
    assert dag.max_active_runs == flights.max_active_runs == 1


def test_trigger_form_has_every_parameter_typed_and_described(tmp_path: Path, flights, isolated_settings) -> None:  # type: ignore[no-untyped-def]
    dag = build_pipeline_dag(
        ir_path=write_ir(tmp_path / "demo.json", DEMO), config=flights, settings=isolated_settings, container=LOCAL
    )
    form = dag.params
    assert set(form.keys()) == {p.name for p in run_params.PARAMETERS}
    train_steps = form.get_param("train_steps")
    assert train_steps.value == flights.model.train_steps
    assert train_steps.schema["type"] == "integer" and train_steps.schema["minimum"] == 1
    assert train_steps.description
    assert form.get_param("dry_run").schema["type"] == "boolean"


def test_schedule_is_monthly_or_a_new_span(tmp_path: Path, flights, isolated_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    dag = build_pipeline_dag(
        ir_path=write_ir(tmp_path / "demo.json", DEMO), config=flights, settings=isolated_settings, container=LOCAL
    )
    schedule = dag.timetable
    assert "expression='0 6 1 * *'" in repr(schedule.timetable)
    asset = spans_asset(flights, isolated_settings)
    assert asset.uri.startswith("file://") and asset.uri.endswith("/data/flights")
    assert schedule.asset_condition == asset


def test_data_dag_prepares_the_next_span_and_emits_the_asset(flights, isolated_settings: Settings) -> None:  # type: ignore[no-untyped-def]
    dag = build_data_dag(config=flights, settings=isolated_settings)
    task = dag.task_dict["prepare_next_span"]
    assert isinstance(task, RuntimeCommandOperator)
    assert task.runtime_args[0] == "prepare-data" and task.runtime_args[-1] == "--next"
    assert [outlet.name for outlet in task.outlets] == ["flights_spans"]


@pytest.mark.parametrize("backend", ["docker", "kubernetes"])
def test_container_backends_run_the_same_command(tmp_path: Path, flights, isolated_settings, backend: str) -> None:  # type: ignore[no-untyped-def]
    container = ContainerSettings.from_env(
        {"RUNWAY_NODE_BACKEND": backend, "RUNWAY_PIPELINE_IMAGE": "registry.example/runway:1.2.3"}
    )
    dag = build_pipeline_dag(
        ir_path=write_ir(tmp_path / "demo.json", DEMO), config=flights, settings=isolated_settings, container=container
    )
    trainer = dag.task_dict["Trainer"]
    expected_tail = [
        "-m", "pipeline_components.runtime", "run-node", "--ir", "/var/lib/runway/ir/demo.json",
        "--node", "Trainer", "--run-id", "{{ run_id }}", "--params", "{{ params | tojson }}",
    ]  # fmt: skip
    if backend == "docker":
        assert type(trainer).__name__ == "DockerOperator"
        assert trainer.image == "registry.example/runway:1.2.3"
        assert trainer.command[1:] == expected_tail
        env = trainer.environment
        assert [(m["Source"], m["Target"]) for m in trainer.mounts] == [("runway-data", "/var/lib/runway")]
        assert 99 in trainer.skip_on_exit_code
    else:
        assert type(trainer).__name__ == "KubernetesPodOperator"
        assert trainer.image == "registry.example/runway:1.2.3"
        assert trainer.cmds == ["/opt/runway/.venv-runtime/bin/python"]
        assert trainer.arguments == expected_tail
        env = trainer.env_vars if isinstance(trainer.env_vars, dict) else {e.name: e.value for e in trainer.env_vars}
        assert trainer.volumes[0].persistent_volume_claim.claim_name == "runway-data"
        assert trainer.volume_mounts[0].mount_path == "/var/lib/runway"
        assert 99 in trainer.skip_on_exit_code
    assert env["RUNWAY_HOME"] == "/var/lib/runway"
    assert env["RUNWAY_METADATA_DIR"] == "/var/lib/runway/metadata"
    assert env["TF_USE_LEGACY_KERAS"] == "1"
    # No local data check when the data lives in the container's storage.
    assert dag.task_dict[CHECK_PARAMS_TASK].check_data is False


def test_unknown_backend_is_refused() -> None:
    from pipeline_components.errors import ConfigError

    with pytest.raises(ConfigError, match="RUNWAY_NODE_BACKEND='podman'"):
        ContainerSettings.from_env({"RUNWAY_NODE_BACKEND": "podman"})
