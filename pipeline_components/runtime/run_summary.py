"""What one pipeline run did, read back from ML Metadata: nodes, spans, evaluation, baseline, push, lineage.

``runway run`` prints this after the Airflow run; tests assert on it. Everything comes from ML Metadata and the
artifacts it points to, never from logs.
"""

from __future__ import annotations

from typing import Any

from ml_metadata.proto import metadata_store_pb2

from pipeline_components.components.evaluator.results import evaluation_summary, read_verdict
from pipeline_components.config import PipelineConfig
from pipeline_components.errors import RunwayError
from pipeline_components.metadata.connection import empty_store_notice
from pipeline_components.metadata.reader import (
    EXECUTION_STATES,
    RECORDED_PROPERTIES,
    RunReader,
    custom_property,
    property_value,
)
from pipeline_components.settings import Settings


def ingested_spans(config: PipelineConfig, settings: Settings) -> list[int]:
    """Every span the pipeline's ExampleGen has ingested so far, in any run (none before the first run)."""
    if settings.metadata_postgres is None and not settings.metadata_path(config.name).is_file():
        return []
    reader = RunReader.for_pipeline(settings, config.name)
    context = reader.store.get_context_by_type_and_name("node", f"{config.name}.CsvExampleGen")
    if context is None:
        return []
    done = {metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED}
    spans = set()
    for execution in reader.store.get_executions_by_context(context.id):
        if execution.last_known_state in done:
            for artifact in reader.events(execution.id, metadata_store_pb2.Event.OUTPUT).get("examples", []):
                if (span := custom_property(artifact, "span")) is not None:
                    spans.add(int(span))
    return sorted(spans)


def run_report(config: PipelineConfig, settings: Settings, run_id: str) -> dict[str, Any]:
    """What run ``run_id`` of ``config``'s pipeline did, from its ML Metadata store (``runway report``).

    Args:
        config: the pipeline's configuration.
        settings: where the metadata store is.
        run_id: the Airflow run id (the TFX pipeline run id).

    Returns:
        ``nodes`` (state and recorded parameters), ``spans``, ``evaluation``, ``push`` and, when a model was pushed,
        its ``lineage``.

    Raises:
        RunwayError: no store yet, or no such run in it.
    """
    reader = RunReader.for_pipeline(settings, config.name)
    try:
        reader.run_context(run_id)
    except RunwayError as missing:
        notice = (
            None
            if reader.has_history()
            else empty_store_notice(
                settings, config.name, model_bases=[settings.model_store / config.serving.model_name]
            )
        )
        raise RunwayError(f"{missing}\n{notice}" if notice else str(missing)) from None
    report: dict[str, Any] = {"pipeline": config.name, "run_id": run_id, "nodes": {}}
    executions = reader.run_executions(run_id)
    outputs_by_node: dict[str, dict[str, list[metadata_store_pb2.Artifact]]] = {}
    inputs_by_node: dict[str, dict[str, list[metadata_store_pb2.Artifact]]] = {}
    for execution in executions:
        node = reader.node_of(execution.id)
        outputs_by_node[node] = reader.events(execution.id, metadata_store_pb2.Event.OUTPUT)
        inputs_by_node[node] = reader.events(execution.id, metadata_store_pb2.Event.INPUT)
        report["nodes"][node] = {
            "execution_id": execution.id,
            "state": EXECUTION_STATES.get(execution.last_known_state, "UNKNOWN"),
            # The execution parameters ML Metadata recorded: the run parameters as the node saw them.
            "properties": {
                key: property_value(value)
                for key, value in execution.custom_properties.items()
                if key in RECORDED_PROPERTIES
            },
        }

    examples = outputs_by_node.get("CsvExampleGen", {}).get("examples", [])
    window = inputs_by_node.get("Transform", {}).get("examples", [])
    report["spans"] = {
        "ingested": [custom_property(a, "span") for a in examples],
        "training_window": sorted(custom_property(a, "span") for a in window),
    }
    # What every run has ingested so far: with the spans on disk, what this run left out (output.print_summary).
    report["ingested_so_far"] = ingested_spans(config, settings)

    evaluator_inputs = inputs_by_node.get("Evaluator", {})
    baseline = evaluator_inputs.get("baseline_model", [])
    baseline_run = None
    if baseline:
        producer = reader.producer(baseline[0].id)
        baseline_run = reader.run_of(producer) if producer else None
    evaluation: dict[str, Any] = {
        "candidate_model": evaluator_inputs.get("model", [None])[0].uri if evaluator_inputs.get("model") else None,
        "baseline_model": baseline[0].uri if baseline else None,
        "baseline_run_id": baseline_run,
    }
    evaluator_outputs = outputs_by_node.get("Evaluator", {})
    if evaluator_outputs.get("evaluation"):
        evaluation.update(evaluation_summary(evaluator_outputs["evaluation"][0].uri))
    if evaluator_outputs.get("blessing"):
        blessing = evaluator_outputs["blessing"][0]
        evaluation["blessed"] = bool(custom_property(blessing, "blessed"))
        # The evaluation stage's verdict (components/evaluator): the trusted set, and which evaluation refused.
        if verdict := read_verdict(blessing.uri):
            evaluation["trusted"] = verdict.get("trusted") or {}
            evaluation["trusted_spans"] = verdict.get("trusted_spans", [])
            evaluation["refused_by"] = verdict.get("refused_by", [])
            evaluation["failures"] = verdict.get("failures", [])
            evaluation["notes"] = verdict.get("notes", [])
    report["evaluation"] = evaluation

    pushed = outputs_by_node.get("Pusher", {}).get("pushed_model", [])
    if pushed:
        artifact = pushed[0]
        report["push"] = {
            "pushed": bool(custom_property(artifact, "pushed")),
            "version": custom_property(artifact, "pushed_version"),
            "destination": custom_property(artifact, "pushed_destination"),
            "artifact_id": artifact.id,
        }
        report["lineage"] = reader.lineage(artifact.id)
    else:
        report["push"] = {"pushed": False, "version": None, "destination": None}
    return report
