"""Build the Airflow DAGs of a compiled TFX pipeline. Parse-time cost: one JSON and one YAML file.

For each pipeline ``<name>``:

- ``<name>_pipeline``: ``check_params`` then one task per TFX node, with the IR's edges. Typed run parameters
  (``pipeline_components/boundary.py``) appear in the trigger form. Scheduled by the configuration: a cron schedule,
  an Asset (a new span landed), or both.
- ``<name>_data``: prepares the next span of the dataset and emits the pipeline's Asset, so that retraining
  starts when new data arrives. Outside producers emit the same Asset through Airflow's REST API.

Nothing here imports TensorFlow or TFX.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, Param

from pipeline_components import boundary as run_params
from pipeline_components.config import PipelineConfig
from pipeline_components.errors import ConfigError
from pipeline_components.orchestration import dag_id_for, data_dag_id_for, serving_dag_id_for
from pipeline_components.orchestration.backends import ContainerSettings, NodeBackend, container_node_task
from pipeline_components.orchestration.ir import PipelineGraph, read_pipeline_graph
from pipeline_components.orchestration.operators import (
    CheckRunParametersOperator,
    RuntimeCommandOperator,
    TfxNodeOperator,
)
from pipeline_components.orchestration.training_workers import DEPLOY_QUEUES_ENV, trainer_tasks, training_placements
from pipeline_components.settings import Settings

CHECK_PARAMS_TASK = "check_params"
START_DATE = pendulum.datetime(2024, 1, 1, tz="UTC")
# Transient failures (a lost worker, a locked metadata database) are retried with backoff; gates are not.
DEFAULT_ARGS: dict[str, Any] = {
    "retries": 2,
    "retry_delay": timedelta(seconds=20),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=5),
    "execution_timeout": timedelta(hours=2),
}


def spans_asset(config: PipelineConfig, settings: Settings) -> Asset:
    """The Asset that stands for "a new span of this pipeline's data landed"."""
    return Asset(name=f"{config.name}_spans", uri=(settings.data_dir / config.data.folder).as_uri())


def airflow_params(config: PipelineConfig) -> dict[str, Param]:
    """The trigger form: every run parameter with its JSON-schema type, default and description."""
    form: dict[str, Param] = {}
    for parameter in run_params.PARAMETERS:
        form[parameter.name] = Param(
            parameter.default(config), description=parameter.description, section=parameter.section, **parameter.schema
        )
    return form


def schedule_for(config: PipelineConfig, settings: Settings) -> Any:
    cron, on_new_span = config.schedule.cron, config.schedule.on_new_span
    if cron and on_new_span:
        return AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(cron, timezone="UTC"), assets=spans_asset(config, settings)
        )
    if cron:
        return CronTriggerTimetable(cron, timezone="UTC")
    if on_new_span:
        return [spans_asset(config, settings)]
    return None


def build_pipeline_dag(
    *, ir_path: Path, config: PipelineConfig, settings: Settings, container: ContainerSettings | None = None
) -> DAG:
    """The DAG that runs every node of the compiled pipeline at ``ir_path``."""
    return dag_from_graph(read_pipeline_graph(ir_path), config=config, settings=settings, container=container)


def dag_from_graph(
    graph: PipelineGraph,
    *,
    config: PipelineConfig,
    settings: Settings,
    container: ContainerSettings | None = None,
) -> DAG:
    container = container or ContainerSettings.from_env()
    doc = (
        f"### TFX pipeline `{graph.name}`\n\n{config.description}\n\n"
        f"Compiled IR: `{graph.ir_path}`"
        + (f" from `{graph.config_path}`" if graph.config_path else "")
        + f"\n\nNodes run on the **{container.backend.value}** backend, each with TFX's portable launcher; the "
        "Airflow run id is the TFX pipeline run id in ML Metadata. `check_params` validates the run parameters "
        "first. A data-validation failure fails its task without retries; a model that is not blessed skips "
        "the Pusher with the reason in its log; `dry_run` skips the push."
    )
    with DAG(
        dag_id=dag_id_for(graph.name),
        description=config.description or f"TFX pipeline {graph.name}",
        doc_md=doc,
        schedule=schedule_for(config, settings),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=config.max_active_runs,
        tags=["tfx", graph.name],
        params=airflow_params(config),
        default_args=DEFAULT_ARGS,
    ) as dag:
        check = CheckRunParametersOperator(
            task_id=CHECK_PARAMS_TASK,
            config_path=str(config.source),
            check_data=container.backend is NodeBackend.LOCAL,
            retries=0,
        )
        tasks: dict[str, Any] = {}
        companions: dict[str, list[Any]] = {}  # a Trainer's training worker tasks on other hosts
        placements = training_placements(graph)
        if placements and container.backend is not NodeBackend.LOCAL:
            raise ConfigError(
                f"{DEPLOY_QUEUES_ENV} places training workers on worker hosts, which needs the local node backend "
                f"(RUNWAY_NODE_BACKEND={container.backend.value}): unset one of them"
            )
        for node in graph.nodes:
            if node.id in placements:
                tasks[node.id], companions[node.id] = trainer_tasks(graph, node, placements[node.id])
            elif container.backend is NodeBackend.LOCAL:
                tasks[node.id] = TfxNodeOperator(
                    task_id=node.id, ir_path=str(graph.ir_path), node_id=node.id, component_type=node.component_type
                )
            else:
                tasks[node.id] = container_node_task(
                    container=container, task_id=node.id, pipeline_name=graph.name, node_id=node.id
                )
        for node in graph.nodes:
            for task in (tasks[node.id], *companions.get(node.id, ())):  # a node's companions start with it
                if not node.upstream:
                    check >> task
                for upstream in node.upstream:
                    tasks[upstream] >> task
        if config.serving.rollout and "Pusher" in tasks:
            from pipeline_components.fleet.tasks import rollout_task_group

            _, first_step = rollout_task_group(config=config)
            tasks["Pusher"] >> first_step
    return dag


def _operator_dag(**kwargs: Any) -> DAG:
    """A DAG that people or events trigger (no schedule), one run at a time."""
    return DAG(schedule=None, start_date=START_DATE, catchup=False, max_active_runs=1, **kwargs)


def build_serving_dag(*, config: PipelineConfig) -> DAG:
    """Manual DAG for operators: promote a version, or roll back, through the rollout's steps (docs/fleet.md)."""
    from pipeline_components.fleet.tasks import rollout_task_group, serving_params

    with _operator_dag(
        dag_id=serving_dag_id_for(config.name),
        description=f"Promote or roll back {config.serving.model_name} on the serving fleet",
        doc_md=(
            f"Trigger with `action` (promote | rollback) and `version`: the fleet's `stable` label moves to that "
            f"version of `{config.serving.model_name}` through the same verified steps as the pipeline's rollout "
            "(load everywhere, AVAILABLE everywhere, canary, verify over REST and gRPC, promote, retire); any "
            "failure puts the previous stable back. CLI: `runway fleet promote|rollback`."
        ),
        tags=["serving", config.name],
        params=serving_params(),
    ) as dag:
        rollout_task_group(config=config, candidate_from="params")
    return dag


def build_data_dag(*, config: PipelineConfig, settings: Settings) -> DAG:
    """Prepare the next span of the dataset ("a new month arrives") and emit the pipeline's Asset."""
    with _operator_dag(
        dag_id=data_dag_id_for(config.name),
        description=f"Prepare the next span of {config.name}'s data; retraining follows (Asset)",
        doc_md=(
            f"Writes the next span of `{config.data.preparer}` into `{settings.data_dir / config.data.folder}` "
            f"and updates the Asset `{config.name}_spans`, which triggers `{dag_id_for(config.name)}` when its "
            "configuration has `schedule.on_new_span`. An outside producer emits the same Asset event through "
            "Airflow's REST API (`POST /api/v2/assets/events`)."
        ),
        tags=["data", config.name],
    ) as dag:
        RuntimeCommandOperator(
            task_id="prepare_next_span",
            runtime_args=["prepare-data", str(config.source), "--next"],
            outlets=[spans_asset(config, settings)],
        )
    return dag
