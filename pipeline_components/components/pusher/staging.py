"""Atomic pushes: one push at a time per model, into a staging folder, published with one no-replace rename.

TFX's Pusher copies the SavedModel file by file straight into ``<base>/<version>``: a server polling the base path
could find ``saved_model.pb`` before the variables are complete, and two runs pushing in the same second would
write one folder (TFX names the version after the current second). ``launch_pusher`` runs the Pusher's launch
under a lock on the model base path, after letting the clock pass the newest existing version, with the push
destination pointed at a staging folder beside the base paths (same filesystem). Still under the lock,
``publish_staged`` adds the verification samples the fleet rollout replays (``verification.py``), publishes the
version with ``durable.publish_dir`` (its files and folders flushed to disk, then one rename that never replaces
an existing version), and corrects the destination recorded in ML Metadata.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration.portable import data_types
from tfx.proto.orchestration import pipeline_pb2

from pipeline_components.components.pusher.verification import compute_samples, rows_from_csv, write_samples
from pipeline_components.config import fill_span
from pipeline_components.durable import fsync_dir, publish_dir
from pipeline_components.metadata.outputs import update_outputs

log = logging.getLogger("runway.push")
VERIFY_EXAMPLES = 8


def staging_for(base: Path, token: str) -> Path:
    """The staging folder of one push into ``base`` (hidden, in the store, outside every base path)."""
    return base.parent / ".staging" / f"{base.name}-{token}"


@contextlib.contextmanager
def exclusive_push(node: pipeline_pb2.PipelineNode) -> Iterator[tuple[Path, Path] | None]:
    """Hold the model's push lock, with the Pusher's destination rewritten to a fresh staging folder.

    Yields:
        (staging folder, model base path), or None when the Pusher has no filesystem destination. The staging
        folder is removed on the way out: a failed push leaves nothing behind.
    """
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
        while existing and int(time.time()) <= max(existing):  # each push gets a version number of its own
            time.sleep(0.2)
        staging = staging_for(base, str(os.getpid()))
        shutil.rmtree(staging, ignore_errors=True)
        destination["filesystem"]["base_directory"] = str(staging)
        parameter.string_value = json.dumps(destination)
        try:
            yield staging, base
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def launch_pusher(
    launch: Callable[[], data_types.ExecutionInfo | None],
    *,
    node: pipeline_pb2.PipelineNode,
    ir: pipeline_pb2.Pipeline,
    run_id: str,
    connection_config: Any,
) -> data_types.ExecutionInfo | None:
    """Run the Pusher's ``launch`` (TFX's launcher) as one atomic push, and publish what it wrote.

    Args:
        launch: starts the Pusher; returns TFX's execution info, or None when TFX ran nothing (cached, skipped).
        node: the Pusher's node in ``ir``; its push destination is pointed at the staging folder.
        ir: the compiled pipeline (where the run's rows for the verification samples come from).
        run_id: this run's id (which span it ingested).
        connection_config: the pipeline's ML Metadata connection.

    Returns:
        What ``launch`` returned.
    """
    with exclusive_push(node) as push:
        execution_info = launch()
        execution_id = execution_info.execution_id if execution_info is not None else None
        if push is not None and execution_id is not None:
            staging, base = push
            publish_staged(
                staging=staging,
                base=base,
                ir=ir,
                span=_ingested_span(connection_config, ir.pipeline_info.id, run_id),
                connection_config=connection_config,
                execution_id=execution_id,
            )
    return execution_info


def _ingested_span(connection_config: Any, pipeline_name: str, run_id: str) -> int | None:
    from pipeline_components.metadata.reader import RunReader

    # The connection the node runs with (password included): the store is there, the run has just written to it.
    return RunReader(connection_config, pipeline_name).ingested_span(run_id)


def _run_rows(ir: pipeline_pb2.Pipeline, span: int | None, count: int) -> list[dict[str, Any]]:
    """``count`` real rows of the CSV files the run's ExampleGen ingested."""
    for node in ir.nodes:
        parameters = node.pipeline_node.parameters.parameters
        if "input_base" in parameters and "input_config" in parameters:
            base = Path(parameters["input_base"].field_value.string_value)
            config = json.loads(parameters["input_config"].field_value.string_value)
            for split in config.get("splits", []):
                rows = rows_from_csv(base, fill_span(split["pattern"], span), count)
                if rows:
                    return rows
    return []


def publish_staged(
    *,
    staging: Path,
    base: Path,
    ir: pipeline_pb2.Pipeline,
    span: int | None,
    connection_config: Any,
    execution_id: int,
) -> list[Path]:
    """Publish every version the Pusher wrote into ``staging``; returns the published version folders.

    Raises:
        FileExistsError: a version folder of that number exists already (versions are never overwritten).
    """
    published = []
    for staged in sorted(p for p in staging.iterdir() if p.name.isdigit()) if staging.is_dir() else []:
        rows = _run_rows(ir, span, VERIFY_EXAMPLES)
        if rows:
            write_samples(staged, compute_samples(staged, rows))
            log.info("verification samples: %d real rows of span %s with the exported model's answers", len(rows), span)
        else:
            log.warning("no complete CSV rows found for span %s: version pushed without verification samples", span)
        if not base.is_dir():  # the model's first version: its base path must survive a crash too
            base.mkdir(parents=True)
            fsync_dir(base.parent)
        published.append(publish_dir(staged, base / staged.name))  # the one step that makes the version visible
    _fix_destination(connection_config, execution_id, staging, base)
    shutil.rmtree(staging, ignore_errors=True)
    return published


def _fix_destination(connection_config: Any, execution_id: int, staging: Path, base: Path) -> None:
    """The PushedModel's ``pushed_destination`` names the published folder, not the staging one."""

    def fix(artifact: metadata_store_pb2.Artifact) -> bool:
        destination = artifact.custom_properties.get("pushed_destination")
        if destination is None or not destination.string_value.startswith(str(staging)):
            return False
        suffix = destination.string_value[len(str(staging)) :]
        artifact.custom_properties["pushed_destination"].string_value = str(base) + suffix
        return True

    update_outputs(connection_config, execution_id, fix)
