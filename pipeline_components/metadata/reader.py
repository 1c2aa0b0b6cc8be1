"""Reading one pipeline's ML Metadata: runs, executions, their inputs and outputs, spans, pushes, lineage.

The store may be the pipeline's own SQLite file or a PostgreSQL database that other pipelines share
(``connection.py``), so every query that is not reached through this pipeline's own contexts is filtered by them: a
run id (Airflow's ``scheduled__<date>``) can name a run of two pipelines at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml_metadata.proto import metadata_store_pb2

from pipeline_components.errors import RunwayError
from pipeline_components.metadata.connection import connection_config, describe, open_store, pipeline_has_history
from pipeline_components.settings import Settings

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
    """Queries over one pipeline's ML Metadata.

    Args:
        config: the store's connection (``connection.connection_config``; a SQLite file is opened as it is given).
        pipeline_name: the pipeline whose records are read.

    Raises:
        RunwayError: the SQLite file does not exist (the pipeline has not run yet), or the store cannot be opened.
    """

    def __init__(self, config: metadata_store_pb2.ConnectionConfig, pipeline_name: str) -> None:
        self.pipeline_name = pipeline_name
        self.location = describe(config)
        if config.HasField("sqlite") and not Path(config.sqlite.filename_uri).is_file():
            raise RunwayError(f"no ML Metadata store at {self.location}: the pipeline has not run yet")
        if config.HasField("postgresql"):
            config = metadata_store_pb2.ConnectionConfig.FromString(config.SerializeToString())
            config.postgresql.skip_db_creation = True  # a reader never creates the database
        try:
            self.store = open_store(config)
        except RuntimeError as error:  # ML Metadata's message names the cause (at times nothing), never the password
            hint = (
                "; check that the database exists and accepts this host, and the password in "
                "RUNWAY_METADATA_PASSWORD_FILE"
                if config.HasField("postgresql")
                else ""
            )
            raise RunwayError(f"cannot open ML Metadata at {self.location}: {error}{hint}") from None

    @classmethod
    def for_pipeline(cls, settings: Settings, pipeline_name: str) -> RunReader:
        """The reader of ``pipeline_name``'s ML Metadata where the settings say it is."""
        return cls(connection_config(settings, pipeline_name, readonly=True), pipeline_name)

    def has_history(self) -> bool:
        """Whether the store has recorded any run of this pipeline."""
        return pipeline_has_history(self.store, self.pipeline_name)

    def run_context(self, run_id: str) -> metadata_store_pb2.Context:
        context = self.store.get_context_by_type_and_name("pipeline_run", run_id)
        if context is None or not self.run_executions(run_id):
            raise RunwayError(
                f"run '{run_id}' of pipeline '{self.pipeline_name}' is not in ML Metadata at {self.location}"
            )
        return context

    def run_executions(self, run_id: str) -> list[metadata_store_pb2.Execution]:
        """The executions of this pipeline in run ``run_id`` (not another pipeline's run of the same id), by id."""
        run = self.store.get_context_by_type_and_name("pipeline_run", run_id)
        pipeline = self.store.get_context_by_type_and_name("pipeline", self.pipeline_name)
        if run is None or pipeline is None:
            return []
        ours = {e.id for e in self.store.get_executions_by_context(pipeline.id)}
        return sorted((e for e in self.store.get_executions_by_context(run.id) if e.id in ours), key=lambda e: e.id)

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
        for execution in self.run_executions(run_id):
            if not self.node_of(execution.id).endswith("ExampleGen"):
                continue
            for artifacts in self.events(execution.id, metadata_store_pb2.Event.OUTPUT).values():
                for artifact in artifacts:
                    if "span" in artifact.custom_properties:
                        return int(artifact.custom_properties["span"].int_value)
        return None

    def pushed_models(self) -> list[metadata_store_pb2.Artifact]:
        """Every PushedModel of this pipeline that was really pushed, newest first."""
        pipeline = self.store.get_context_by_type_and_name("pipeline", self.pipeline_name)
        if pipeline is None:
            return []
        type_ids = {t.id for t in self.store.get_artifact_types() if t.name == "PushedModel"}
        pushed = [
            a
            for a in self.store.get_artifacts_by_context(pipeline.id)
            if a.type_id in type_ids and custom_property(a, "pushed")
        ]
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
