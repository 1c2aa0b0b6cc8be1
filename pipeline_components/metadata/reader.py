"""Reading one pipeline's ML Metadata store: runs, executions, their inputs and outputs, spans, pushes, lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline_components.errors import RunwayError

EXECUTION_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}
RECORDED_PROPERTIES = {
    "span",
    "range_config",
    "train_args",
    "eval_args",
    "custom_config",
    "eval_config",
    "push_destination",
}


def property_value(prop: metadata_store_pb2.Value) -> Any:
    kind = prop.WhichOneof("value")
    return getattr(prop, kind) if kind else None


def custom_property(item: Any, key: str) -> Any:
    return property_value(item.custom_properties[key]) if key in item.custom_properties else None


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
        pushed = [a for a in self.store.get_artifacts_by_type("PushedModel") if custom_property(a, "pushed")]
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
