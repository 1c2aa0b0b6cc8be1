"""The push stage around TFX's Pusher: one push at a time, published atomically, never twice for one span.

``launch_pusher`` is given, in place of TFX's launcher, a function that does what TFX's Pusher executor does to
the filesystem and to ML Metadata (copy a model into ``<destination>/<int(time.time())>`` and record a
PushedModel whose ``pushed_destination`` names it): a real Pusher needs a trained, blessed and infra-validated
model (the e2e runs push real ones). The ML Metadata store, the lock, the staging folder and the publication are
the real ones.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata
from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import local_deployment_config_pb2, pipeline_pb2

from pipeline_components.components.pusher.rules import skip_reason
from pipeline_components.components.pusher.staging import launch_pusher

pytestmark = pytest.mark.runtime


class Store:
    """A real ML Metadata store (SQLite) with the contexts and events TFX's launcher records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.config = metadata.sqlite_metadata_connection_config(str(path))
        self.store = metadata_store.MetadataStore(self.config)

    def _type_id(self, kind: str, name: str) -> int:
        if kind == "artifact":
            return self.store.put_artifact_type(metadata_store_pb2.ArtifactType(name=name))
        if kind == "execution":
            return self.store.put_execution_type(metadata_store_pb2.ExecutionType(name=name))
        return self.store.put_context_type(metadata_store_pb2.ContextType(name=name))

    def execution(self, run_id: str, node: str, outputs: dict[str, dict[str, Any]]) -> int:
        """Record a finished execution of ``node`` in run ``run_id`` with one output artifact per entry."""
        execution = metadata_store_pb2.Execution(type_id=self._type_id("execution", node))
        [execution_id] = self.store.put_executions([execution])
        contexts = []
        for kind, name in (("pipeline", "flights"), ("pipeline_run", run_id), ("node", f"flights.{node}")):
            found = self.store.get_context_by_type_and_name(kind, name)
            if found is None:
                [context_id] = self.store.put_contexts(
                    [metadata_store_pb2.Context(type_id=self._type_id("context", kind), name=name)]
                )
            else:
                context_id = found.id
            contexts.append(context_id)
        for context_id in contexts:
            self.store.put_attributions_and_associations(
                [],
                [metadata_store_pb2.Association(context_id=context_id, execution_id=execution_id)],
            )
        for key, spec in outputs.items():
            artifact = metadata_store_pb2.Artifact(type_id=self._type_id("artifact", spec["type"]), uri=f"/{key}")
            for name, value in spec.items():
                if name == "type":
                    continue
                if isinstance(value, int):
                    artifact.custom_properties[name].int_value = value
                else:
                    artifact.custom_properties[name].string_value = value
            [artifact_id] = self.store.put_artifacts([artifact])
            self.store.put_attributions_and_associations(  # as TFX's launcher: outputs belong to the run's contexts
                [metadata_store_pb2.Attribution(context_id=c, artifact_id=artifact_id) for c in contexts], []
            )
            event = metadata_store_pb2.Event(
                artifact_id=artifact_id, execution_id=execution_id, type=metadata_store_pb2.Event.OUTPUT
            )
            event.path.steps.add().key = key
            self.store.put_events([event])
        return execution_id

    def destination(self, execution_id: int) -> str:
        events = self.store.get_events_by_execution_ids([execution_id])
        [artifact] = self.store.get_artifacts_by_id([e.artifact_id for e in events])
        return artifact.custom_properties["pushed_destination"].string_value


def _pipeline(store: Store) -> pipeline_pb2.Pipeline:
    config = local_deployment_config_pb2.LocalDeploymentConfig()
    config.metadata_connection_config.database_connection_config.CopyFrom(store.config)
    ir = pipeline_pb2.Pipeline()
    ir.pipeline_info.id = "flights"
    ir.deployment_config.Pack(config)
    return ir


def _pusher_node(base: Path) -> pipeline_pb2.PipelineNode:
    node = pipeline_pb2.PipelineNode()
    destination = {"filesystem": {"base_directory": str(base)}}
    node.parameters.parameters["push_destination"].field_value.string_value = json.dumps(destination)
    return node


def _pusher_executor(store: Store, node: pipeline_pb2.PipelineNode, run_id: str, seen: list[Path]) -> Any:
    """What TFX's Pusher does: copy the model into ``<destination>/<current second>``, record a PushedModel."""

    def launch() -> data_types.ExecutionInfo:
        destination = json.loads(node.parameters.parameters["push_destination"].field_value.string_value)
        version = str(int(time.time()))
        folder = Path(destination["filesystem"]["base_directory"]) / version
        seen.append(folder)
        (folder / "variables").mkdir(parents=True)
        (folder / "saved_model.pb").write_bytes(b"graph of " + run_id.encode())
        (folder / "variables" / "variables.index").write_bytes(b"index")
        outputs = {
            "pushed_model": {
                "type": "PushedModel",
                "pushed": 1,
                "pushed_version": version,
                "pushed_destination": str(folder),
            }
        }
        return data_types.ExecutionInfo(execution_id=store.execution(run_id, "Pusher", outputs))

    return launch


def test_a_push_is_staged_then_published_whole_and_recorded_where_it_is(tmp_path: Path) -> None:
    store = Store(tmp_path / "metadata.sqlite")
    base = tmp_path / "models" / "flights_delay"
    node = _pusher_node(base)
    written: list[Path] = []
    launch = _pusher_executor(store, node, "run-1", written)

    info = launch_pusher(launch, node=node, ir=_pipeline(store), run_id="run-1", connection_config=store.config)

    assert info is not None and info.execution_id is not None
    [staged] = written
    assert base not in staged.parents, "the Pusher wrote straight into the model base path"
    [version] = list(base.iterdir())
    assert version.name == staged.name
    assert (version / "saved_model.pb").read_bytes() == b"graph of run-1"
    assert (version / "variables" / "variables.index").is_file()
    assert store.destination(info.execution_id) == str(version)  # ML Metadata names the published folder
    assert not staged.exists() and not staged.parent.exists()  # the staging folder is gone


def test_two_pushes_at_once_get_two_versions(tmp_path: Path) -> None:
    store = Store(tmp_path / "metadata.sqlite")
    base = tmp_path / "models" / "flights_delay"
    errors: list[BaseException] = []

    def push(run_id: str) -> None:
        node = _pusher_node(base)
        try:
            launch = _pusher_executor(Store(store.path), node, run_id, [])
            launch_pusher(launch, node=node, ir=_pipeline(store), run_id=run_id, connection_config=store.config)
        except BaseException as error:  # reported below, with the thread's name
            errors.append(error)

    threads = [threading.Thread(target=push, args=(f"run-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    versions = sorted(p.name for p in base.iterdir())
    assert len(versions) == 2, f"two pushes in the same second wrote one version folder: {versions}"
    contents = {(base / v / "saved_model.pb").read_bytes() for v in versions}
    assert contents == {b"graph of run-0", b"graph of run-1"}


def test_a_version_is_never_overwritten_and_a_failed_push_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "metadata.sqlite")
    base = tmp_path / "models" / "flights_delay"
    node = _pusher_node(base)
    written: list[Path] = []

    def collide() -> data_types.ExecutionInfo:
        launched = _pusher_executor(store, node, "run-2", written)()
        (base / written[0].name).mkdir(parents=True)  # another writer took the number meanwhile
        (base / written[0].name / "saved_model.pb").write_bytes(b"served")
        return launched

    with pytest.raises(FileExistsError):
        launch_pusher(collide, node=node, ir=_pipeline(store), run_id="run-2", connection_config=store.config)
    assert (base / written[0].name / "saved_model.pb").read_bytes() == b"served"
    assert not written[0].parent.exists()  # the staging folder is removed with what was staged

    def fail() -> data_types.ExecutionInfo:
        _pusher_executor(store, node, "run-3", [])()
        raise OSError("disk full")

    node = _pusher_node(base)
    with pytest.raises(OSError, match="disk full"):
        launch_pusher(fail, node=node, ir=_pipeline(store), run_id="run-3", connection_config=store.config)
    assert sorted(p.name for p in base.iterdir()) == [written[0].name]
    assert [p.name for p in base.parent.iterdir() if p.name == ".staging" and any(p.iterdir())] == []


def _ingest(store: Store, run_id: str, span: int) -> None:
    store.execution(run_id, "CsvExampleGen", {"examples": {"type": "Examples", "span": span}})


def test_a_span_already_served_is_not_pushed_again_unless_asked(tmp_path: Path) -> None:
    store = Store(tmp_path / "metadata.sqlite")
    ir = _pipeline(store)
    _ingest(store, "run-march", 3)
    pushed = {"type": "PushedModel", "pushed": 1, "pushed_version": "1700000000", "pushed_destination": "/m/1"}
    store.execution("run-march", "Pusher", {"pushed_model": pushed})
    _ingest(store, "run-march-again", 3)
    _ingest(store, "run-april", 4)

    reason = skip_reason(ir, "run-march-again", {})
    assert reason is not None
    assert "span 3 is already served as version 1700000000 (run run-march)" in reason
    assert skip_reason(ir, "run-march-again", {"repush": True}) is None
    assert skip_reason(ir, "run-april", {}) is None
    assert skip_reason(ir, "run-march", {}) is None  # its own push is not "another run's"
    assert "dry run" in (skip_reason(ir, "run-april", {"dry_run": True}) or "")
