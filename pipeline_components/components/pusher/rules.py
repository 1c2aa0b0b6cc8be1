"""When a run pushes nothing: a dry run, or a span that an earlier run already pushed (idempotent re-runs).

A re-run of a month that is already served would push a second version of the same data; the Pusher is skipped
instead, naming the version that serves the span, unless the run sets ``repush``. Checked before TFX's launcher
runs the Pusher, so a skipped push records nothing in ML Metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfx.orchestration.local import runner_utils
from tfx.proto.orchestration import pipeline_pb2


def skip_reason(ir: pipeline_pb2.Pipeline, run_id: str, params: dict[str, Any]) -> str | None:
    """Why this run's Pusher has nothing to do, or None when it pushes.

    Args:
        ir: the compiled pipeline (its ML Metadata connection says where earlier pushes are recorded).
        run_id: this run's id (the TFX pipeline run id).
        params: the run parameters (``dry_run``, ``repush``).

    Returns:
        A sentence for the task log, or None.
    """
    if params.get("dry_run"):
        return "dry run: the model is not pushed (run parameter dry_run=true)"
    if params.get("repush"):
        return None
    served = already_pushed_for_this_span(ir, run_id)
    if served is None:
        return None
    return (
        f"span {served['span']} is already served as version {served['version']} (run {served['run_id']}); "
        "nothing new to push (run parameter repush=true pushes a retrained model for the same span)"
    )


def _reader(ir: pipeline_pb2.Pipeline) -> Any | None:
    """A ``RunReader`` of the pipeline's ML Metadata (as the node runs with it), or None before its first record."""
    from pipeline_components.metadata.connection import for_node
    from pipeline_components.metadata.reader import RunReader
    from pipeline_components.settings import Settings

    connection = runner_utils.extract_local_deployment_config(ir).metadata_connection_config
    config = for_node(getattr(connection, connection.WhichOneof("connection_config")), Settings.from_env())
    if config.HasField("sqlite") and not Path(config.sqlite.filename_uri).is_file():
        return None
    return RunReader(config, ir.pipeline_info.id)


def already_pushed_for_this_span(ir: pipeline_pb2.Pipeline, run_id: str) -> dict[str, Any] | None:
    """The version pushed by an earlier run that ingested the same span as this run, if any.

    Returns:
        ``{"span", "version", "run_id"}`` of that push, or None.
    """
    reader = _reader(ir)
    if reader is None:
        return None
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
