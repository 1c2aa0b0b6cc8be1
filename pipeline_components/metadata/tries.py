"""Earlier tries of a node in ML Metadata: closed before a new try runs, and the host of each try recorded.

When Airflow retries a node whose first try was lost (its worker host cut off, its process killed), TFX's launcher
registers a new execution; the lost try's execution would stay RUNNING forever, with any output it had begun
registering PENDING: an orphan that lineage tools show as still running. Before the launch, every unfinished
execution of the same node in the same pipeline run is marked CANCELED with the reason, and its pending outputs
ABANDONED (ML Metadata's own states for this), so the run's lineage holds exactly one live try per node.
"""

from __future__ import annotations

from typing import Any

from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

UNFINISHED = (metadata_store_pb2.Execution.NEW, metadata_store_pb2.Execution.RUNNING)
HOST_PROPERTY = "runway_host"
ABANDONED_PROPERTY = "runway_abandoned"


def _node_executions(store: Any, pipeline_id: str, run_id: str, node_id: str) -> list[Any]:
    run = store.get_context_by_type_and_name("pipeline_run", run_id)
    node = store.get_context_by_type_and_name("node", f"{pipeline_id}.{node_id}")
    if run is None or node is None:
        return []
    in_run = {e.id for e in store.get_executions_by_context(run.id)}
    return [e for e in store.get_executions_by_context(node.id) if e.id in in_run]


def close_earlier_tries(connection_config: Any, *, pipeline_id: str, run_id: str, node_id: str, host: str) -> list[int]:
    """Mark every unfinished execution of ``node_id`` in ``run_id`` CANCELED (and its pending outputs ABANDONED).

    Returns:
        The ids of the executions closed (empty on a first try).
    """
    with metadata.Metadata(connection_config) as handle:
        store = handle.store
        lost = [e for e in _node_executions(store, pipeline_id, run_id, node_id) if e.last_known_state in UNFINISHED]
        if not lost:
            return []
        reason = f"an earlier try that did not finish (its worker lost or killed); replaced by a try on {host}"
        for execution in lost:
            execution.last_known_state = metadata_store_pb2.Execution.CANCELED
            execution.custom_properties[ABANDONED_PROPERTY].string_value = reason
        store.put_executions(lost)
        events = store.get_events_by_execution_ids([e.id for e in lost])
        outputs = {
            e.artifact_id
            for e in events
            if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.PENDING_OUTPUT)
        }
        pending = [
            a for a in store.get_artifacts_by_id(sorted(outputs)) if a.state == metadata_store_pb2.Artifact.PENDING
        ]
        for artifact in pending:
            artifact.state = metadata_store_pb2.Artifact.ABANDONED
        if pending:
            store.put_artifacts(pending)
    return [e.id for e in lost]


def record_host(connection_config: Any, execution_id: int, host: str) -> None:
    """Record on the execution which host ran it (``worker-1 (10.231.7.3)`` in a deployment)."""
    with metadata.Metadata(connection_config) as handle:
        store = handle.store
        [execution] = store.get_executions_by_id([execution_id])
        execution.custom_properties[HOST_PROPERTY].string_value = host
        store.put_executions([execution])
