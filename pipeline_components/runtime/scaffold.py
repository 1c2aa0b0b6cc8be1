"""``runway init``'s work in the runtime environment: from your CSV to a pipeline that runs as it is.

``scaffold(...)`` reads the CSV (or folders of CSV files), decides each column's role and the label
(``data/profile.py``), writes the spans (the ``csv`` preparer), infers the TFDV schema from them, drafts the Great
Expectations suite, and writes the configuration last (``data/scaffold.py``), with the serving contract typed from
the schema. Nothing is written before every decision is made and the configuration validates; a pipeline of that
name is never overwritten unless asked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipeline_components.config import PipelineConfig, find_pipeline_configs, load_pipeline_config
from pipeline_components.config.sections import NAME_PATTERN
from pipeline_components.data import csv_source, profile
from pipeline_components.data.scaffold import SCHEMA_DTYPES, Source, render_config
from pipeline_components.durable import atomic_write
from pipeline_components.errors import ConfigError
from pipeline_components.settings import Settings


def _validated(text: str, path: Path) -> PipelineConfig:
    try:
        return PipelineConfig.model_validate({**yaml.safe_load(text), "source": path})
    except ValidationError as err:  # a bug of the scaffold, not of the user's data: say so plainly
        raise ConfigError(f"runway init wrote a configuration that does not validate:\n{err}") from None


def _refuse_existing(settings: Settings, name: str, path: Path, *, force: bool) -> None:
    if not re.match(NAME_PATTERN, name):
        raise ConfigError(f"pipeline name '{name}': use lower-case letters, digits and '_', starting with a letter")
    existing = find_pipeline_configs(settings.config_dir).get(name)
    if (existing or path.exists()) and not force:
        raise ConfigError(
            f"a pipeline named '{name}' exists ({existing or path}); pick another name, or --force to write it again"
        )


def scaffold(
    settings: Settings,
    *,
    name: str,
    source: Path,
    label: str,
    span_column: str | None = None,
    exclude: tuple[str, ...] = (),
    positive: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write spans, schema, suite and configuration for pipeline ``name`` from ``source``.

    Args:
        settings: where configurations (``config_dir``) and spans (``data_dir``) go.
        name: the pipeline's name.
        source: a CSV file, or a folder of span folders of CSV files.
        label: the column to predict.
        span_column: the CSV file's column that numbers the spans (None: one span, or the folders' numbers).
        exclude: columns to leave out.
        positive: a binary label's positive class.
        force: write over an existing pipeline of that name.

    Returns:
        What was decided and written: files, spans, each column's role and reason, the label, the next command.

    Raises:
        ConfigError: the name is taken or invalid. DataError: the data cannot make a pipeline (said why).
    """
    config_path = settings.config_dir / f"{name}.yaml"
    _refuse_existing(settings, name, config_path, force=force)
    source = source.resolve()
    if source.is_dir() and span_column:
        raise ConfigError("--span-column splits one CSV file; span folders are numbered by their names")
    spans = csv_source.read_source(source, span_column=span_column)
    import pandas as pd

    frame = pd.concat(spans.values(), ignore_index=True)
    label_choice = profile.choose_label(frame, label, positive=positive)
    columns = profile.choose_columns(frame, label=label, span_column=span_column, exclude=exclude)
    kept = [*(c.name for c in columns if c.role != "left_out"), label]
    counts = {span: len(csv_source.span_rows(rows, kept)[0]) for span, rows in spans.items()}
    # Beside the configurations (a file of the repository): written relative, so that the configuration travels.
    shown = (
        source.relative_to(settings.config_dir.parent) if source.is_relative_to(settings.config_dir.parent) else None
    )
    written_as = f"../{shown}" if shown is not None else str(source)
    where = Source(path=source, span_column=span_column, spans=counts, rows=len(frame), written_as=written_as)
    draft = _validated(render_config(name=name, source=where, columns=columns, label=label_choice), config_path)

    reports = csv_source.prepare(settings.data_dir / draft.data.folder, config=draft)
    from pipeline_components.components.great_expectations_validator.suite import draft_suite
    from pipeline_components.runtime.schema import infer_schema, write_schema

    schema = infer_schema(draft, settings.data_dir)
    types = {feature.name: SCHEMA_DTYPES.get(_type_name(feature.type), "string") for feature in schema.feature}
    text = render_config(
        name=name,
        source=where,
        columns=columns,
        label=label_choice,
        dtypes={feature: types[feature] for feature in draft.features.all},
    )
    config = _validated(text, config_path)
    write_schema(schema, config.schema_path)
    suite = draft_suite(config, settings.data_dir)
    suite["meta"] = {"notes": f"drafted by `runway init` from {len(reports)} span(s) of {source.name}; review it"}
    atomic_write(config.expectations_path, json.dumps(suite, indent=2) + "\n")
    atomic_write(config_path, text)  # last: a configuration on disk always has its schema and suite
    load_pipeline_config(config_path)  # as every command will read it
    return {
        "pipeline": name,
        "config": str(config_path),
        "schema": str(config.schema_path),
        "suite": str(config.expectations_path),
        "expectations": len(suite["expectations"]),
        "spans": [report.as_dict() for report in reports],
        "columns": [{"name": c.name, "role": c.role, "reason": c.reason} for c in columns],
        "label": {
            "column": label_choice.column,
            "kind": label_choice.kind,
            "values": label_choice.values,
            "classes": label_choice.classes,
            "counts": label_choice.counts,
            "reason": label_choice.reason,
        },
        "contract": config.serving.contract.signatures["serving_default"].inputs,
        "window_spans": config.data.window_spans,
        "train_steps": config.model.train_steps,
        "next": f"runway run {name} --history" if len(reports) > 1 else f"runway run {name}",
    }


def _type_name(value: int) -> str:
    from tensorflow_metadata.proto.v0 import schema_pb2

    return str(schema_pb2.FeatureType.Name(value))
