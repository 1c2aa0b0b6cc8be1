"""Compile a pipeline configuration to TFX IR (``pipeline_pb2.Pipeline``), written as JSON.

The IR is the contract between the two environments: the DAG file reads node ids and upstream nodes from it
as plain JSON; each Airflow task hands it back to ``runtime.node`` to run one node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from tfx.dsl.compiler import compiler
from tfx.orchestration.local import runner_utils
from tfx.proto.orchestration import pipeline_pb2

from pipeline_components.config import PipelineConfig
from pipeline_components.durable import atomic_write
from pipeline_components.errors import ConfigError
from pipeline_components.metadata.connection import connection_config, describe
from pipeline_components.pipeline import create_pipeline
from pipeline_components.settings import Settings

# Beam on one machine: the in-process FnApiRunner (DirectRunner would first try to download the Prism runner
# binary). Users point this at Flink, Spark or Dataflow with their own arguments.
DEFAULT_BEAM_ARGS = ["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]


def beam_args(config: PipelineConfig) -> list[str]:
    """The configuration's ``beam_pipeline_args``, or the in-process default (docs/data-validation.md)."""
    return list(config.beam_pipeline_args) if config.beam_pipeline_args is not None else list(DEFAULT_BEAM_ARGS)


def logical_pipeline(config: PipelineConfig, settings: Settings) -> Any:
    """The TFX pipeline (``tfx.dsl.Pipeline``) of ``config`` with this machine's paths, before compiling.

    Args:
        config: the validated pipeline configuration.
        settings: where data, artifacts, ML Metadata and the model store live.
    """
    return create_pipeline(
        config=config,
        data_root=settings.data_dir / config.data.folder,
        pipeline_root=settings.pipeline_root(config.name),
        # The store the settings name, without its password: the IR is a file anyone who reads the DAGs can read.
        metadata_connection_config=connection_config(settings, config.name, password=False),
        serving_model_dir=settings.model_store / config.serving.model_name,
        beam_pipeline_args=beam_args(config),
    )


def compile_pipeline(config: PipelineConfig, settings: Settings) -> pipeline_pb2.Pipeline:
    """The pipeline of ``config`` compiled to TFX IR (see ``logical_pipeline``).

    Raises:
        ConfigError: ML Metadata is on PostgreSQL and a node's parameter could not be recorded there.
    """
    ir = compiler.Compiler().compile(logical_pipeline(config, settings))
    if settings.metadata_postgres is not None and (unsafe := postgres_unsafe(ir)):
        raise ConfigError(
            f"pipeline {config.name}: ML Metadata 1.21 cannot record these node parameters on PostgreSQL, because "
            f"they contain a backslash (it quotes such a string as E'...' inside '...', a SQL syntax error, and the "
            f"node fails when it starts): {', '.join(unsafe)}. Remove the backslash from the setting (a JSON string "
            "inside a setting escapes its quotes with backslashes), or keep this pipeline on SQLite"
        )
    return ir


def postgres_unsafe(ir: pipeline_pb2.Pipeline) -> list[str]:
    """``node.parameter`` of every string parameter holding a backslash, which ML Metadata 1.21's PostgreSQL
    backend mis-quotes when it records the node's execution (``'E'{...``: a syntax error)."""
    unsafe = []
    for node in ir.nodes:
        pipeline_node = node.pipeline_node
        for name, value in pipeline_node.parameters.parameters.items():
            text = value.field_value.string_value if value.HasField("field_value") else ""
            if "\\" in text:
                unsafe.append(f"{pipeline_node.node_info.id}.{name}")
    return unsafe


def write_ir(
    ir: pipeline_pb2.Pipeline,
    path: Path,
    *,
    config_path: Path | None,
    overrides: dict[str, object] | None = None,
) -> None:
    """Write the IR as JSON, atomically and durably (a DAG parser never reads half a file, even after a crash)."""
    document = json.loads(json_format.MessageToJson(ir, preserving_proto_field_name=False))
    # Not part of TFX's IR: where it came from, for the DAG's description and for humans; the ML Metadata store it
    # was compiled for, so that `runway run` compiles again when RUNWAY_METADATA_URL changes.
    connection = runner_utils.extract_local_deployment_config(ir).metadata_connection_config
    origin = {
        "config": str(config_path) if config_path else None,
        "overrides": overrides or {},
        "metadata": describe(getattr(connection, connection.WhichOneof("connection_config"))),
    }
    document_with_origin = {"runway": origin, **document}
    atomic_write(path, json.dumps(document_with_origin, indent=1))


def read_ir(path: Path) -> pipeline_pb2.Pipeline:
    document = json.loads(path.read_text())
    document.pop("runway", None)
    return json_format.ParseDict(document, pipeline_pb2.Pipeline())
