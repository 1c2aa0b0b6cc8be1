"""Build an Airflow DAG from a compiled TFX pipeline: one task per TFX node, the IR's edges as dependencies.

Parse-time cost is reading one JSON file; nothing here imports TensorFlow or TFX.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG

from pipeline_components.orchestration.ir import PipelineGraph, read_pipeline_graph
from pipeline_components.orchestration.operators import TfxNodeOperator


def dag_id_for(pipeline_name: str) -> str:
    return f"{pipeline_name}_pipeline"


def task_id_for(node_id: str) -> str:
    return node_id


def build_pipeline_dag(*, ir_path: Path, description: str = "") -> DAG:
    """The DAG that runs every node of the compiled pipeline at ``ir_path``."""
    graph = read_pipeline_graph(ir_path)
    return dag_from_graph(graph, description=description)


def dag_from_graph(graph: PipelineGraph, *, description: str = "") -> DAG:
    doc = (
        f"### TFX pipeline `{graph.name}`\n\n{description}\n\n"
        f"Compiled IR: `{graph.ir_path}`"
        + (f" from `{graph.config_path}`" if graph.config_path else "")
        + "\n\nEach task runs one TFX node in the pipeline runtime environment with TFX's portable launcher; "
        "the Airflow run id is the TFX pipeline run id in ML Metadata."
    )
    with DAG(
        dag_id=dag_id_for(graph.name),
        description=description or f"TFX pipeline {graph.name}",
        doc_md=doc,
        schedule=None,
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["tfx", graph.name],
        default_args={"retries": 0, "execution_timeout": timedelta(hours=2)},
    ) as dag:
        tasks = {
            node.id: TfxNodeOperator(
                task_id=task_id_for(node.id),
                ir_path=str(graph.ir_path),
                node_id=node.id,
                component_type=node.component_type,
            )
            for node in graph.nodes
        }
        for node in graph.nodes:
            for upstream in node.upstream:
                tasks[upstream] >> tasks[node.id]
    return dag
