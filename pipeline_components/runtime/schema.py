"""Regenerate a pipeline's committed TFDV schema from its prepared spans, on purpose.

The pipeline never re-infers its schema: ImportSchemaGen imports the reviewed ``schema.pbtxt``. This module is
what ``runway schema NAME`` runs when a person decides the schema should change; review the diff before
committing it.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow_data_validation as tfdv

from pipeline_components.config import PipelineConfig, fill_span
from pipeline_components.durable import atomic_write
from pipeline_components.errors import DataError


def all_spans_glob(config: PipelineConfig, data_dir: Path) -> str:
    """A glob matching every span's files, checked to match at least one."""
    pattern = fill_span(config.data.span_pattern)
    if not list((data_dir / config.data.folder).glob(pattern)):
        raise DataError(
            f"no span files match {data_dir / config.data.folder / pattern}; "
            f"run `runway data prepare {config.name}` first"
        )
    return str(data_dir / config.data.folder / pattern)


def infer_schema(config: PipelineConfig, data_dir: Path) -> tfdv.types.Schema:
    stats = tfdv.generate_statistics_from_csv(data_location=all_spans_glob(config, data_dir))
    schema = tfdv.infer_schema(stats, infer_feature_shape=True)
    missing = [
        name
        for name in (*config.features.all, config.label.column)
        if name not in {feature.name for feature in schema.feature}
    ]
    if missing:
        raise DataError(f"the spans have no column(s) {missing} that the configuration names")
    return schema


def write_schema(schema: tfdv.types.Schema, path: Path) -> Path:
    """Write ``schema`` in text format to ``path``, atomically (a reader sees the old file or the new one)."""
    from google.protobuf import text_format

    return atomic_write(path, text_format.MessageToString(schema))


def regenerate(config: PipelineConfig, data_dir: Path) -> Path:
    return write_schema(infer_schema(config, data_dir), config.schema_path)
