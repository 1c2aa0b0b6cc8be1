"""An execution's output artifacts in ML Metadata: read them as published, correct them after TFX's launcher.

Executors report some properties (``pushed``, ``blessed``) through their output proto, so the launcher's in-memory
artifacts may not carry them: what a node's summary and gates read is what ML Metadata recorded. Two corrections
are written back after a launch: ExampleGen's span and version (``promote_span_and_version``) and the Pusher's
published destination (``components/pusher/staging.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata


def published_outputs(connection_config: Any, execution_id: int) -> dict[str, list[Any]]:
    """The execution's output artifacts as ML Metadata recorded them (TFX artifacts), keyed by output name."""
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


def update_outputs(
    connection_config: Any, execution_id: int, change: Callable[[metadata_store_pb2.Artifact], bool]
) -> int:
    """Apply ``change`` to each output artifact of the execution; store those it changed (it returns True).

    Returns:
        How many artifacts were changed.
    """
    with metadata.Metadata(connection_config) as handle:
        store = handle.store
        events = store.get_events_by_execution_ids([execution_id])
        ids = sorted({e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT})
        changed = [artifact for artifact in store.get_artifacts_by_id(ids) if change(artifact)]
        if changed:
            store.put_artifacts(changed)
    return len(changed)


def promote_span_and_version(connection_config: Any, execution_id: int) -> None:
    """Copy ExampleGen's span/version from custom properties into the artifact type's properties.

    TFX 1.21's ExampleGen driver records them as custom properties, but the span-based resolver ops
    (``rolling_range``, ``LatestSpan``) read the typed properties: without this every ingested span reads as
    span 0 and a rolling window collapses to the newest artifact.
    """

    def promote(artifact: metadata_store_pb2.Artifact) -> bool:
        keys = [k for k in ("span", "version") if k in artifact.custom_properties and k not in artifact.properties]
        for key in keys:
            artifact.properties[key].int_value = artifact.custom_properties[key].int_value
        return bool(keys)

    update_outputs(connection_config, execution_id, promote)
