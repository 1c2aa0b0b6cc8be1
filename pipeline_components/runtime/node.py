"""Run one node of a compiled pipeline with TFX's portable launcher, against the pipeline's ML Metadata.

This is what an Airflow task executes in the runtime environment:

    python -m pipeline_components.runtime run-node --ir var/ir/flights.json --node Trainer --run-id <run id>

The Airflow run id becomes the TFX pipeline run id, so every node of one DAG run shares one pipeline-run
context in ML Metadata: inputs resolve from upstream tasks' outputs, and lineage and caching work across
tasks and runs. The last line on stdout is a JSON summary of the execution (prefixed ``RUNWAY_RESULT``) that
the orchestrator side reads. Exit codes: 0 done, 3 a gate refused the run (``GateFailed``: not retried), 99
nothing to do (``NodeSkipped``: the task is skipped), anything else a failure that may be transient (retried).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ml_metadata.proto import metadata_store_pb2
from tfx.dsl.compiler import constants
from tfx.orchestration import metadata
from tfx.orchestration.local import runner_utils
from tfx.orchestration.portable import launcher, runtime_parameter_utils
from tfx.proto.orchestration import pipeline_pb2

from pipeline_components.boundary import RESULT_PREFIX
from pipeline_components.config import fill_span, span_folder_regex
from pipeline_components.errors import ConfigError, DataError, RunwayError
from pipeline_components.runtime.compile import read_ir
from pipeline_components.runtime.csv_check import check_csv_files
from pipeline_components.runtime.figures import node_figures
from pipeline_components.runtime.overrides import apply_run_parameters

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


def _check_example_gen_input(node: pipeline_pb2.PipelineNode) -> None:
    """Refuse a missing input before TFX does, with a message that says what to do (not retried)."""
    parameters = node.parameters.parameters
    if "input_base" not in parameters or "input_config" not in parameters:
        return
    base = Path(parameters["input_base"].field_value.string_value)
    config = json.loads(parameters["input_config"].field_value.string_value)
    range_config = (
        json.loads(parameters["range_config"].field_value.string_value) if "range_config" in parameters else {}
    )
    span = range_config.get("static_range", {}).get("start_span_number")
    for split in config.get("splits", []):
        pattern = fill_span(split["pattern"], span)
        files = list(base.glob(pattern))
        if not files:
            raise GateFailed(
                f"no input files match {base / pattern}: the span is missing or has no CSV file; "
                f"prepare it (`runway data prepare`) or pick another span"
            )
        try:  # the files TFX will read (the newest span's when none is pinned) must be CSV it can decode
            check_csv_files(_span_files(base, split["pattern"], files) if span is None else files)
        except DataError as err:
            raise GateFailed(f"span input refused before ingestion: {err}") from None


def _span_files(base: Path, pattern: str, files: list[Path]) -> list[Path]:
    """Of every span's files, those of the newest span (what ExampleGen ingests when no span is pinned)."""
    regex = span_folder_regex(pattern)
    by_span: dict[int, list[Path]] = {}
    for path in files:
        match = regex.match(path.relative_to(base).parts[0])
        if match:
            by_span.setdefault(int(match.group("span")), []).append(path)
    return by_span[max(by_span)] if by_span else files


def _published_outputs(connection_config: Any, execution_id: int) -> dict[str, list[Any]]:
    """The execution's output artifacts as ML Metadata recorded them, keyed by output name."""
    from tfx.types import artifact_utils

    outputs: dict[str, list[Any]] = {}
    with metadata.Metadata(connection_config) as handle:
        store = handle.store
        events = [
            e for e in store.get_events_by_execution_ids([execution_id]) if e.type == metadata_store_pb2.Event.OUTPUT
        ]
        artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in events])}
        types = {t.id: t for t in store.get_artifact_types_by_id(list({a.type_id for a in artifacts.values()}))}
        for event in events:
            key = event.path.steps[0].key if event.path.steps else ""
            mlmd_artifact = artifacts[event.artifact_id]
            outputs.setdefault(key, []).append(
                artifact_utils.deserialize_artifact(types[mlmd_artifact.type_id], mlmd_artifact)
            )
    return outputs


def _promote_span_and_version(connection_config: Any, execution_id: int) -> None:
    """Copy ExampleGen's span/version from custom properties into the artifact type's properties.

    TFX 1.21's ExampleGen driver records them as custom properties, but the span-based resolver ops
    (``rolling_range``, ``LatestSpan``) read the typed properties: without this every ingested span reads as
    span 0 and a rolling window collapses to the newest artifact.
    """
    with metadata.Metadata(connection_config) as handle:
        store = handle.store
        events = store.get_events_by_execution_ids([execution_id])
        outputs = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
        changed = []
        for artifact in store.get_artifacts_by_id(outputs):
            for key in ("span", "version"):
                if key in artifact.custom_properties and key not in artifact.properties:
                    artifact.properties[key].int_value = artifact.custom_properties[key].int_value
                    changed.append(artifact)
        if changed:
            store.put_artifacts(list({a.id: a for a in changed}.values()))


@contextlib.contextmanager
def _exclusive_push(node: pipeline_pb2.PipelineNode) -> Iterator[tuple[Path, Path] | None]:
    """One push at a time per model, each with a new version number, published atomically.

    TFX's Pusher names the version after the current second; two runs pushing the same model in the same second
    would write one folder. A lock on the model base path serializes pushes, and the clock is let past the newest
    existing version first. The Pusher writes into a staging folder (``runtime/staged_push.py``); the caller
    publishes it with one rename while the lock is held. Yields (staging folder, base path).
    """
    from pipeline_components.runtime.staged_push import staging_for

    parameter = node.parameters.parameters["push_destination"].field_value
    destination = json.loads(parameter.string_value or "{}")
    base = Path(destination.get("filesystem", {}).get("base_directory", ""))
    if not base.name:
        yield None
        return
    base.parent.mkdir(parents=True, exist_ok=True)
    with open(base.parent / f".{base.name}.push.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        existing = [int(p.name) for p in base.iterdir() if p.name.isdigit()] if base.is_dir() else []
        while existing and int(time.time()) <= max(existing):
            time.sleep(0.2)
        staging = staging_for(base, str(os.getpid()))
        shutil.rmtree(staging, ignore_errors=True)
        destination["filesystem"]["base_directory"] = str(staging)
        parameter.string_value = json.dumps(destination)
        try:
            yield staging, base
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # a failed push leaves nothing behind


def _maybe_inject_failure(node_id: str, run_id: str) -> None:
    """Chaos hook for testing retries and alerting: ``RUNWAY_FAIL_ONCE=NodeA,NodeB`` makes the first attempt of
    those nodes in each run fail as a transient error would (a marker under ``$RUNWAY_HOME/faults`` remembers it).
    """
    targets = {name.strip() for name in os.environ.get("RUNWAY_FAIL_ONCE", "").split(",") if name.strip()}
    if node_id not in targets:
        return
    marker = (
        Path(os.environ.get("RUNWAY_HOME", ".")) / "faults" / re.sub(r"[^A-Za-z0-9_.-]", "_", f"{run_id}.{node_id}")
    )
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("failed once\n")
    raise RuntimeError(f"injected transient failure of {node_id} (RUNWAY_FAIL_ONCE); the retry will pass")


def _already_pushed_for_this_span(ir: pipeline_pb2.Pipeline, run_id: str) -> dict[str, Any] | None:
    """The version pushed by an earlier run that ingested the same span as this run, if any (idempotent re-runs)."""
    from pipeline_components.runtime.report import RunReader

    connection = runner_utils.extract_local_deployment_config(ir).metadata_connection_config
    inner = getattr(connection, connection.WhichOneof("connection_config"))
    if not inner.HasField("sqlite") or not Path(inner.sqlite.filename_uri).is_file():
        return None
    reader = RunReader(Path(inner.sqlite.filename_uri))
    span = reader.ingested_span(run_id)
    if span is None:
        return None
    for pushed in reader.pushed_models():
        producer = reader.producer(pushed.id)
        other_run = reader.run_of(producer) if producer else None
        if other_run and other_run != run_id and reader.ingested_span(other_run) == span:
            return {
                "span": span,
                "version": pushed.custom_properties["pushed_version"].string_value,
                "run_id": other_run,
            }
    return None


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
    if component == "Pusher" and params.get("dry_run"):
        raise NodeSkipped("dry run: the model is not pushed (run parameter dry_run=true)", result)
    if component == "Pusher" and not params.get("repush"):
        served = _already_pushed_for_this_span(ir, run_id)
        if served:
            raise NodeSkipped(
                f"span {served['span']} is already served as version {served['version']} (run {served['run_id']}); "
                "nothing new to push (run parameter repush=true pushes a retrained model for the same span)",
                result,
            )
    if component.endswith("ExampleGen"):
        try:
            _check_example_gen_input(node)
        except GateFailed as gate:
            raise GateFailed(str(gate), result) from None
    _maybe_inject_failure(node_id, run_id)

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
        executor_spec=_local_beam_without_packaging(runner_utils.extract_executor_spec(deployment_config, node_id)),
        custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment_config, node_id),
    )
    started = time.monotonic()
    log.info("running node %s of pipeline %s, run id %s", node_id, ir.pipeline_info.id, run_id)
    with _exclusive_push(node) if component == "Pusher" else contextlib.nullcontext() as push:
        execution_info = component_launcher.launch()
        if push is not None and execution_info is not None:
            from pipeline_components.runtime.report import RunReader
            from pipeline_components.runtime.staged_push import publish_staged

            staging, base = push
            span = None
            if connection_config.HasField("sqlite"):
                span = RunReader(Path(connection_config.sqlite.filename_uri)).ingested_span(run_id)
            publish_staged(
                staging=staging,
                base=base,
                ir=ir,
                span=span,
                connection_config=connection_config,
                execution_id=execution_info.execution_id,
            )
    result["seconds"] = round(time.monotonic() - started, 2)
    result["executed"] = execution_info is not None
    if execution_info is None:
        return result
    result["execution_id"] = execution_info.execution_id
    if component.endswith("ExampleGen"):
        _promote_span_and_version(connection_config, execution_info.execution_id)
    # As published: executors report properties such as `pushed` or `blessed` through their output proto, so
    # the launcher's in-memory artifacts may not carry them.
    outputs = _published_outputs(connection_config, execution_info.execution_id) or execution_info.output_dict or {}
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
    if figures.get("gate_passed") is False:  # a custom component's verdict (figures.write_gate)
        listing = "\n".join(f"  - {failure}" for failure in figures.get("gate_failures", []))
        report = f"\nreport: {figures['report']}" if figures.get("report") else ""
        raise GateFailed(f"{node_id}: {figures.get('gate_summary', 'gate failed')}\n{listing}{report}", result)
    if component == "Pusher" and not figures.get("pushed"):
        raise NodeSkipped("the model was not blessed by the Evaluator: nothing pushed", result)
    return result


def print_result(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result, sort_keys=True, default=str), flush=True)
