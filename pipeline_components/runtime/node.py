"""Run one node of a compiled pipeline with TFX's portable launcher, against the pipeline's ML Metadata.

This is what an Airflow task executes in the runtime environment:

    python -m pipeline_components.runtime run-node --ir var/ir/flights.json --node Trainer --run-id <run id>

The Airflow run id becomes the TFX pipeline run id, so every node of one DAG run shares one pipeline-run
context in ML Metadata: inputs resolve from upstream tasks' outputs, and lineage and caching work across
tasks and runs. The last line on stdout is a JSON summary of the execution (prefixed ``RUNWAY_RESULT``) that
the orchestrator side reads. Exit codes: 0 done, 3 a gate refused the run (``GateFailed``: not retried), 99
nothing to do (``NodeSkipped``: the task is skipped), anything else a failure that may be transient (retried).

Before the launch: the run parameters are applied to the node (``overrides.py``), an ExampleGen's input files are
checked (``csv_check.py``), and the push stage says whether this run pushes at all
(``components/pusher/rules.py``). The push stage also wraps the Pusher's launch (``components/pusher/staging.py``).
After it: the summary reads the outputs as ML Metadata recorded them (``outputs.py``) and fails the task on a
gate's verdict.
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

from pipeline_components.boundary import RESULT_PREFIX
from pipeline_components.deploy import identity
from pipeline_components.errors import ConfigError, DataError, RunwayError
from pipeline_components.metadata.connection import for_node, warn_on_new_history
from pipeline_components.metadata.outputs import promote_span_and_version, published_outputs
from pipeline_components.metadata.tries import close_earlier_tries, record_host
from pipeline_components.runtime.compile import read_ir
from pipeline_components.runtime.csv_check import check_example_gen_input
from pipeline_components.runtime.node_figures import node_figures
from pipeline_components.runtime.overrides import apply_run_parameters
from pipeline_components.settings import Settings

# Beam runners that execute in this process or in local worker processes of this same environment.
_LOCAL_BEAM_RUNNERS = frozenset({"FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner"})
log = logging.getLogger("runway.node")


def _local_beam_without_packaging(executor_spec: Any) -> Any:
    """Stop TFX from repackaging itself before every Beam component when the runner is local.

    TFX's Beam executors build an sdist of the installed TFX (``dependency_utils.make_beam_dependency_flags``) so
    that a remote runner (Dataflow, Flink, Spark) can install it on its workers: 5 to 20 seconds of every Beam
    node here. A local runner runs in this environment and never installs that package, so for local runners the
    step is skipped; remote runners keep TFX's behaviour (or get ``--extra_package``/``--setup_file`` from the
    configuration's ``beam_pipeline_args``).
    """
    args = list(getattr(executor_spec, "beam_pipeline_args", []) or [])
    runner = "DirectRunner"
    for index, arg in enumerate(args):
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
        elif arg == "--runner" and index + 1 < len(args):
            runner = args[index + 1]
    if args and runner.rsplit(".", 1)[-1] in _LOCAL_BEAM_RUNNERS:
        from tfx.utils import dependency_utils

        dependency_utils.make_beam_dependency_flags = lambda beam_pipeline_args: list(beam_pipeline_args)
    return executor_spec


def find_node(ir: pipeline_pb2.Pipeline, node_id: str) -> pipeline_pb2.PipelineNode:
    for node in ir.nodes:
        if node.pipeline_node.node_info.id == node_id:
            return node.pipeline_node
    known = ", ".join(n.pipeline_node.node_info.id for n in ir.nodes)
    raise ConfigError(f"node '{node_id}' is not in pipeline '{ir.pipeline_info.id}'; its nodes are: {known}")


class GateFailed(RunwayError):
    """A data or model gate refused the run: not transient, not retried (exit code 3)."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result or {}


class NodeSkipped(RunwayError):
    """Nothing for this node to do in this run (dry run, model not blessed): exit code 99."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result or {}


def _artifact_summary(artifacts: dict[str, list[Any]]) -> dict[str, list[dict[str, Any]]]:
    summary: dict[str, list[dict[str, Any]]] = {}
    for key, items in artifacts.items():
        summary[key] = [{"type": artifact.type_name, "uri": artifact.uri} for artifact in items]
    return summary


def _component(node: pipeline_pb2.PipelineNode) -> str:
    return node.node_info.type.name.rsplit(".", 1)[-1]


def run_node(ir_path: Path, node_id: str, run_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Launch one node with the run's parameters applied; return a summary with its key figures.

    Raises:
        GateFailed: a gate refused the run (missing input, anomalies in the data).
        NodeSkipped: nothing to do (dry run, or the model was not blessed).
    """
    ir = read_ir(ir_path)
    runtime_parameter_utils.substitute_runtime_parameter(ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
    node = find_node(ir, node_id)
    component = _component(node)
    result: dict[str, Any] = {"pipeline": ir.pipeline_info.id, "node": node_id, "run_id": run_id}
    params = params or {}
    result["parameters_applied"] = apply_run_parameters(node, params)
    for change in result["parameters_applied"]:
        log.info("run parameter applied to %s: %s", node_id, change)
    if component == "Transform" and params.get("ingest_only"):  # `runway run --history` takes older spans in
        raise NodeSkipped("ingest-only run (run parameter ingest_only): the span is ingested and validated", result)
    if component == "Pusher":
        from pipeline_components.components.pusher.rules import skip_reason

        reason = skip_reason(ir, run_id, params)
        if reason:
            raise NodeSkipped(reason, result)
    if component.endswith("ExampleGen"):
        try:
            check_example_gen_input(node.parameters.parameters)
        except DataError as refused:
            raise GateFailed(str(refused), result) from None

    deployment_config = runner_utils.extract_local_deployment_config(ir)
    connection = deployment_config.metadata_connection_config
    # The IR's store, checked against the settings, with the password the IR never holds (metadata/connection.py).
    settings = Settings.from_env()
    connection_config = for_node(getattr(connection, connection.WhichOneof("connection_config")), settings)
    warn_on_new_history(connection_config, ir, settings)

    component_launcher = launcher.Launcher(
        pipeline_node=node,
        mlmd_connection=metadata.Metadata(connection_config),
        pipeline_info=ir.pipeline_info,
        pipeline_runtime_spec=ir.runtime_spec,
        executor_spec=_local_beam_without_packaging(runner_utils.extract_executor_spec(deployment_config, node_id)),
        custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment_config, node_id),
    )
    started = time.monotonic()
    host = identity.describe()
    log.info("running node %s of pipeline %s, run id %s, on %s", node_id, ir.pipeline_info.id, run_id, host)
    for closed in close_earlier_tries(
        connection_config, pipeline_id=ir.pipeline_info.id, run_id=run_id, node_id=node_id, host=host
    ):
        log.warning("an earlier try of %s did not finish: its execution %d is now CANCELED", node_id, closed)
    if component == "Pusher":  # the push stage wraps the launch: one push at a time, published atomically
        from pipeline_components.components.pusher.staging import launch_pusher

        execution_info = launch_pusher(
            component_launcher.launch, node=node, ir=ir, run_id=run_id, connection_config=connection_config
        )
    else:
        execution_info = component_launcher.launch()
    result["seconds"] = round(time.monotonic() - started, 2)
    result["executed"] = execution_info is not None
    if execution_info is None:
        return result
    result["execution_id"] = execution_info.execution_id
    record_host(connection_config, execution_info.execution_id, host)
    if component.endswith("ExampleGen"):
        promote_span_and_version(connection_config, execution_info.execution_id)
    # As published: executors report properties such as `pushed` or `blessed` through their output proto, so
    # the launcher's in-memory artifacts may not carry them.
    outputs = published_outputs(connection_config, execution_info.execution_id) or execution_info.output_dict or {}
    result["inputs"] = _artifact_summary(execution_info.input_dict or {})
    result["outputs"] = _artifact_summary(outputs)
    figures = node_figures(component, outputs)
    result["figures"] = figures

    if component == "ExampleValidator" and figures.get("anomaly_count"):
        listing = "\n".join(
            f"  - [{a['split']}] {a['feature']}: {a['short']} ({a['description']})" for a in figures["anomalies"]
        )
        raise GateFailed(
            f"data validation failed: {figures['anomaly_count']} anomalies against the committed schema\n"
            f"{listing}\nreport: {figures['report']}",
            result,
        )
    if figures.get("gate_passed") is False:  # a custom component's verdict (components/gate.py)
        listing = "\n".join(f"  - {failure}" for failure in figures.get("gate_failures", []))
        report = f"\nreport: {figures['report']}" if figures.get("report") else ""
        raise GateFailed(f"{node_id}: {figures.get('gate_summary', 'gate failed')}\n{listing}{report}", result)
    if component == "Pusher" and not figures.get("pushed"):
        raise NodeSkipped("the model was not blessed by the Evaluator: nothing pushed", result)
    return result


def print_result(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result, sort_keys=True, default=str), flush=True)
