"""What one pipeline run did, read back from ML Metadata: nodes, spans, evaluation, baseline, push, lineage.

``runway run`` prints this after the Airflow run; tests assert on it. Everything comes from ML Metadata and the
artifacts it points to, never from logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline_components.config import PipelineConfig
from pipeline_components.errors import RunwayError
from pipeline_components.settings import Settings

_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}
_RECORDED_PROPERTIES = {
    "span",
    "range_config",
    "train_args",
    "eval_args",
    "custom_config",
    "eval_config",
    "push_destination",
}


def _value(prop: metadata_store_pb2.Value) -> Any:
    kind = prop.WhichOneof("value")
    return getattr(prop, kind) if kind else None


def _custom(item: Any, key: str) -> Any:
    return _value(item.custom_properties[key]) if key in item.custom_properties else None


class RunReader:
    """Queries over one pipeline's ML Metadata store."""

    def __init__(self, metadata_path: Path) -> None:
        if not metadata_path.is_file():
            raise RunwayError(f"no ML Metadata store at {metadata_path}: the pipeline has not run yet")
        config = metadata_store_pb2.ConnectionConfig()
        config.sqlite.filename_uri = str(metadata_path)
        config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
        self.store = metadata_store.MetadataStore(config)

    def run_context(self, run_id: str) -> metadata_store_pb2.Context:
        context = self.store.get_context_by_type_and_name("pipeline_run", run_id)
        if context is None:
            raise RunwayError(f"run '{run_id}' is not in ML Metadata")
        return context

    def node_of(self, execution_id: int) -> str:
        for context in self.store.get_contexts_by_execution(execution_id):
            if context.type == "node":
                return context.name.split(".", 1)[-1]
        return "?"

    def run_of(self, execution_id: int) -> str | None:
        for context in self.store.get_contexts_by_execution(execution_id):
            if context.type == "pipeline_run":
                return context.name
        return None

    def events(self, execution_id: int, kind: int) -> dict[str, list[metadata_store_pb2.Artifact]]:
        result: dict[str, list[metadata_store_pb2.Artifact]] = {}
        events = [e for e in self.store.get_events_by_execution_ids([execution_id]) if e.type == kind]
        artifacts = {a.id: a for a in self.store.get_artifacts_by_id([e.artifact_id for e in events])}
        for event in events:
            key = event.path.steps[0].key if event.path.steps else ""
            result.setdefault(key, []).append(artifacts[event.artifact_id])
        return result

    def producer(self, artifact_id: int) -> int | None:
        for event in self.store.get_events_by_artifact_ids([artifact_id]):
            if event.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT):
                return event.execution_id
        return None

    def ingested_span(self, run_id: str) -> int | None:
        """The span the run's ExampleGen ingested."""
        context = self.store.get_context_by_type_and_name("pipeline_run", run_id)
        if context is None:
            return None
        for execution in self.store.get_executions_by_context(context.id):
            if not self.node_of(execution.id).endswith("ExampleGen"):
                continue
            for artifacts in self.events(execution.id, metadata_store_pb2.Event.OUTPUT).values():
                for artifact in artifacts:
                    if "span" in artifact.custom_properties:
                        return int(artifact.custom_properties["span"].int_value)
        return None

    def pushed_models(self) -> list[metadata_store_pb2.Artifact]:
        """Every PushedModel that was really pushed, newest first."""
        pushed = [a for a in self.store.get_artifacts_by_type("PushedModel") if _custom(a, "pushed")]
        return sorted(pushed, key=lambda a: a.id, reverse=True)

    def lineage(self, artifact_id: int) -> list[dict[str, Any]]:
        """Every artifact upstream of ``artifact_id`` (breadth first), with the node and run that produced it."""
        seen: set[int] = set()
        frontier = [artifact_id]
        chain: list[dict[str, Any]] = []
        while frontier:
            current = frontier.pop(0)
            if current in seen:
                continue
            seen.add(current)
            artifact = self.store.get_artifacts_by_id([current])[0]
            execution_id = self.producer(current)
            chain.append(
                {
                    "artifact_id": current,
                    "type": self.store.get_artifact_types_by_id([artifact.type_id])[0].name,
                    "uri": artifact.uri,
                    "node": self.node_of(execution_id) if execution_id else None,
                    "run_id": self.run_of(execution_id) if execution_id else None,
                }
            )
            if execution_id:
                for artifacts in self.events(execution_id, metadata_store_pb2.Event.INPUT).values():
                    frontier.extend(a.id for a in artifacts)
        return chain


def evaluation_summary(uri: str) -> dict[str, Any]:
    """An Evaluator's output (TFMA's evaluation and validation results) in a few figures.

    Args:
        uri: the ``evaluation`` artifact's folder.

    Returns:
        ``metrics`` (name -> value, ``<name>_diff`` against the baseline when there is one), ``validation_ok`` and
        ``failures`` (one line per threshold not met).
    """
    import tensorflow_model_analysis as tfma

    metrics: dict[str, float] = {}
    for _, by_output in tfma.load_eval_result(uri).slicing_metrics:
        for by_class in by_output.values():
            for values in by_class.values():
                for name, value in values.items():
                    if "doubleValue" in value:
                        metrics[name] = float(value["doubleValue"])
    validation = tfma.load_validation_result(uri)
    failures = [
        str(failure.message or failure.metric_threshold).strip()
        for slice_failure in validation.metric_validations_per_slice
        for failure in slice_failure.failures
    ]
    return {"metrics": metrics, "validation_ok": bool(validation.validation_ok), "failures": failures}


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
    reader = RunReader(settings.metadata_path(config.name))
    context = reader.run_context(run_id)
    report: dict[str, Any] = {"pipeline": config.name, "run_id": run_id, "nodes": {}}
    executions = sorted(reader.store.get_executions_by_context(context.id), key=lambda e: e.id)
    outputs_by_node: dict[str, dict[str, list[metadata_store_pb2.Artifact]]] = {}
    inputs_by_node: dict[str, dict[str, list[metadata_store_pb2.Artifact]]] = {}
    for execution in executions:
        node = reader.node_of(execution.id)
        outputs_by_node[node] = reader.events(execution.id, metadata_store_pb2.Event.OUTPUT)
        inputs_by_node[node] = reader.events(execution.id, metadata_store_pb2.Event.INPUT)
        report["nodes"][node] = {
            "execution_id": execution.id,
            "state": _STATES.get(execution.last_known_state, "UNKNOWN"),
            # The execution parameters ML Metadata recorded: the run parameters as the node saw them.
            "properties": {
                key: _value(value) for key, value in execution.custom_properties.items() if key in _RECORDED_PROPERTIES
            },
        }

    examples = outputs_by_node.get("CsvExampleGen", {}).get("examples", [])
    window = inputs_by_node.get("Transform", {}).get("examples", [])
    report["spans"] = {
        "ingested": [_custom(a, "span") for a in examples],
        "training_window": sorted(_custom(a, "span") for a in window),
    }

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
        evaluation["blessed"] = bool(_custom(evaluator_outputs["blessing"][0], "blessed"))
    report["evaluation"] = evaluation

    pushed = outputs_by_node.get("Pusher", {}).get("pushed_model", [])
    if pushed:
        artifact = pushed[0]
        report["push"] = {
            "pushed": bool(_custom(artifact, "pushed")),
            "version": _custom(artifact, "pushed_version"),
            "destination": _custom(artifact, "pushed_destination"),
            "artifact_id": artifact.id,
        }
        report["lineage"] = reader.lineage(artifact.id)
    else:
        report["push"] = {"pushed": False, "version": None, "destination": None}
    return report
