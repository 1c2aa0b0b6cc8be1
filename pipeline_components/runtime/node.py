"""Run one node of a compiled pipeline with TFX's portable launcher, against the pipeline's ML Metadata.

This is what an Airflow task executes in the runtime environment:

    python -m pipeline_components.runtime run-node --ir var/ir/flights.json --node Trainer --run-id <run id>

The Airflow run id becomes the TFX pipeline run id, so every node of one DAG run shares one pipeline-run
context in ML Metadata: inputs resolve from upstream tasks' outputs, and lineage and caching work across
tasks and runs. The last line on stdout is a JSON summary of the execution (prefixed ``RUNWAY_RESULT``) that
the orchestrator side reads.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from tfx.dsl.compiler import constants
from tfx.orchestration import metadata
from tfx.orchestration.local import runner_utils
from tfx.orchestration.portable import launcher, runtime_parameter_utils
from tfx.proto.orchestration import pipeline_pb2

from pipeline_components.errors import ConfigError
from pipeline_components.runtime.compile import read_ir

RESULT_PREFIX = "RUNWAY_RESULT "
log = logging.getLogger("runway.node")


def find_node(ir: pipeline_pb2.Pipeline, node_id: str) -> pipeline_pb2.PipelineNode:
    for node in ir.nodes:
        if node.pipeline_node.node_info.id == node_id:
            return node.pipeline_node
    known = ", ".join(n.pipeline_node.node_info.id for n in ir.nodes)
    raise ConfigError(f"node '{node_id}' is not in pipeline '{ir.pipeline_info.id}'; its nodes are: {known}")


def _artifact_summary(artifacts: dict[str, list[Any]]) -> dict[str, list[dict[str, Any]]]:
    summary: dict[str, list[dict[str, Any]]] = {}
    for key, items in artifacts.items():
        summary[key] = [
            {
                "id": artifact.id,
                "type": artifact.type_name,
                "uri": artifact.uri,
                **({"span": artifact.span} if artifact.has_property("span") else {}),
            }
            for artifact in items
        ]
    return summary


def run_node(ir_path: Path, node_id: str, run_id: str) -> dict[str, Any]:
    """Launch one node; return a summary of the execution (inputs, outputs, whether it ran)."""
    ir = read_ir(ir_path)
    runtime_parameter_utils.substitute_runtime_parameter(ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
    node = find_node(ir, node_id)
    deployment_config = runner_utils.extract_local_deployment_config(ir)
    connection = deployment_config.metadata_connection_config
    connection_config = getattr(connection, connection.WhichOneof("connection_config"))
    if connection_config.HasField("sqlite"):
        # ML Metadata's SQLite backend does not create a missing parent folder.
        Path(connection_config.sqlite.filename_uri).parent.mkdir(parents=True, exist_ok=True)

    component_launcher = launcher.Launcher(
        pipeline_node=node,
        mlmd_connection=metadata.Metadata(connection_config),
        pipeline_info=ir.pipeline_info,
        pipeline_runtime_spec=ir.runtime_spec,
        executor_spec=runner_utils.extract_executor_spec(deployment_config, node_id),
        custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment_config, node_id),
    )
    started = time.monotonic()
    log.info("running node %s of pipeline %s, run id %s", node_id, ir.pipeline_info.id, run_id)
    execution_info = component_launcher.launch()
    result: dict[str, Any] = {
        "pipeline": ir.pipeline_info.id,
        "node": node_id,
        "run_id": run_id,
        "seconds": round(time.monotonic() - started, 2),
        "executed": execution_info is not None,
    }
    if execution_info is not None:
        result["execution_id"] = execution_info.execution_id
        result["inputs"] = _artifact_summary(execution_info.input_dict or {})
        result["outputs"] = _artifact_summary(execution_info.output_dict or {})
    return result


def print_result(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result, sort_keys=True), flush=True)
