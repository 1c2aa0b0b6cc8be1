"""A retried node closes the executions its lost tries left RUNNING (``metadata/tries.py``), in a real ML Metadata
store: the lost try becomes CANCELED with the reason, its pending output ABANDONED; finished executions and other
runs' executions are left as they were; the host of a try is recorded on its execution."""

from __future__ import annotations

from pathlib import Path

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

from pipeline_components.metadata.tries import ABANDONED_PROPERTY, HOST_PROPERTY, close_earlier_tries, record_host


def _store(path: Path) -> tuple[pb.ConnectionConfig, metadata_store.MetadataStore]:
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return config, metadata_store.MetadataStore(config)


def _execution(store: metadata_store.MetadataStore, type_id: int, state: int, contexts: list[int]) -> int:
    [execution_id] = store.put_executions([pb.Execution(type_id=type_id, last_known_state=state)])
    store.put_attributions_and_associations(
        [], [pb.Association(execution_id=execution_id, context_id=c) for c in contexts]
    )
    return execution_id


def test_lost_tries_are_closed_and_nothing_else_changes(tmp_path: Path) -> None:
    config, store = _store(tmp_path / "mlmd.sqlite")
    run_type = store.put_context_type(pb.ContextType(name="pipeline_run"))
    node_type = store.put_context_type(pb.ContextType(name="node"))
    run_a, run_b, trainer = store.put_contexts(
        [
            pb.Context(type_id=run_type, name="run-a"),
            pb.Context(type_id=run_type, name="run-b"),
            pb.Context(type_id=node_type, name="penguins.Trainer"),
        ]
    )
    exec_type = store.put_execution_type(pb.ExecutionType(name="Trainer"))
    lost = _execution(store, exec_type, pb.Execution.RUNNING, [run_a, trainer])
    done = _execution(store, exec_type, pb.Execution.COMPLETE, [run_a, trainer])
    other_run = _execution(store, exec_type, pb.Execution.RUNNING, [run_b, trainer])
    model_type = store.put_artifact_type(pb.ArtifactType(name="Model"))
    [pending] = store.put_artifacts([pb.Artifact(type_id=model_type, uri="/m/1", state=pb.Artifact.PENDING)])
    store.put_events([pb.Event(artifact_id=pending, execution_id=lost, type=pb.Event.PENDING_OUTPUT)])

    closed = close_earlier_tries(config, pipeline_id="penguins", run_id="run-a", node_id="Trainer", host="worker-2")

    assert closed == [lost]
    states = {e.id: e for e in store.get_executions_by_id([lost, done, other_run])}
    assert states[lost].last_known_state == pb.Execution.CANCELED
    assert "worker-2" in states[lost].custom_properties[ABANDONED_PROPERTY].string_value
    assert states[done].last_known_state == pb.Execution.COMPLETE
    assert states[other_run].last_known_state == pb.Execution.RUNNING
    assert store.get_artifacts_by_id([pending])[0].state == pb.Artifact.ABANDONED
    # A first try (nothing unfinished) and an unknown run change nothing.
    assert close_earlier_tries(config, pipeline_id="penguins", run_id="run-a", node_id="Trainer", host="w") == []
    assert close_earlier_tries(config, pipeline_id="penguins", run_id="nope", node_id="Trainer", host="w") == []

    record_host(config, done, "worker-1 (10.231.7.3)")
    assert (
        store.get_executions_by_id([done])[0].custom_properties[HOST_PROPERTY].string_value == "worker-1 (10.231.7.3)"
    )
