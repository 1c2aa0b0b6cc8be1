"""Atomic pushes: TFX's Pusher writes into a staging folder, then one rename publishes the version.

TFX's Pusher copies the SavedModel file by file straight into ``<base>/<version>``: a server polling the base path
could find ``saved_model.pb`` before the variables are complete. ``node.py`` points the Pusher at a staging folder
beside the model store's base paths (same filesystem), and, still under its push lock, ``publish_staged`` adds the
verification samples the fleet rollout replays (real rows of the run's span and the exported model's answers,
``runtime/verification.py``), renames the version into the base path, and corrects the recorded destination in ML
Metadata.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata
from tfx.proto.orchestration import pipeline_pb2

from pipeline_components.config import fill_span
from pipeline_components.runtime.verification import compute_samples, rows_from_csv, write_samples

log = logging.getLogger("runway.push")
VERIFY_EXAMPLES = 8


def staging_for(base: Path, token: str) -> Path:
    """The staging folder of one push into ``base`` (hidden, in the store, outside every base path)."""
    return base.parent / ".staging" / f"{base.name}-{token}"


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
    """Publish every version the Pusher wrote into ``staging``; returns the published version folders."""
    published = []
    for staged in sorted(p for p in staging.iterdir() if p.name.isdigit()) if staging.is_dir() else []:
        rows = _run_rows(ir, span, VERIFY_EXAMPLES)
        if rows:
            samples = compute_samples(staged, rows)
            write_samples(staged, samples)
            log.info("verification samples: %d real rows of span %s with the exported model's answers", len(rows), span)
        else:
            log.warning("no complete CSV rows found for span %s: version pushed without verification samples", span)
        target = base / staged.name
        if target.exists():
            raise RuntimeError(f"version folder {target} exists already; versions are never overwritten")
        base.mkdir(parents=True, exist_ok=True)
        staged.rename(target)  # the one step that makes the version visible to servers
        published.append(target)
    _fix_destination(connection_config, execution_id, staging, base)
    shutil.rmtree(staging, ignore_errors=True)
    return published


def _fix_destination(connection_config: Any, execution_id: int, staging: Path, base: Path) -> None:
    """The PushedModel's ``pushed_destination`` names the published folder, not the staging one."""
    with metadata.Metadata(connection_config) as handle:
        store = handle.store
        events = store.get_events_by_execution_ids([execution_id])
        ids = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
        changed = []
        for artifact in store.get_artifacts_by_id(ids):
            destination = artifact.custom_properties.get("pushed_destination")
            if destination is not None and destination.string_value.startswith(str(staging)):
                suffix = destination.string_value[len(str(staging)) :]
                artifact.custom_properties["pushed_destination"].string_value = str(base) + suffix
                changed.append(artifact)
        if changed:
            store.put_artifacts(changed)
