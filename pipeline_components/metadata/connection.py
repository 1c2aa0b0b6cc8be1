"""The one place that decides how a pipeline's ML Metadata store is opened.

``Settings`` says where ML Metadata lives: a SQLite file per pipeline (the default) or, with ``RUNWAY_METADATA_URL``,
one PostgreSQL database shared by every pipeline. ``connection_config`` turns that into ML Metadata's
``ConnectionConfig``; compiling (the IR), running a node, the run summary behind ``runway run`` and ``runway report``,
the push stage and ``RunReader`` all open the store through it.

The password never enters the compiled IR: the IR is compiled from ``connection_config(..., password=False)`` and a
node run adds it from ``RUNWAY_METADATA_PASSWORD_FILE`` (``for_node``), after checking that the IR was compiled for
the store the settings name.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from ml_metadata.proto import metadata_store_pb2
from tfx.proto.orchestration import pipeline_pb2

from pipeline_components.errors import ConfigError
from pipeline_components.settings import Settings

log = logging.getLogger("runway.metadata")
# What a process meets when another one is creating ML Metadata's tables (or the database) in PostgreSQL at the same
# moment: a unique violation in PostgreSQL's catalog, a table that is not there yet, or ML Metadata's own check
# finding some of its tables made and not the others ("There are a subset of tables in MLMD instance. This may be due
# to concurrent connection to the empty database. Please retry the connection.").
_CREATION_RACE = re.compile(r"already exists|duplicate key|does not exist|subset of tables|concurrent connection")
_PASSWORD_FIELD = re.compile(r'password: "(?:[^"\\]|\\.)*"')


class _RedactPassword(logging.Filter):
    """ML Metadata logs the whole ``ConnectionConfig`` of every store it opens (``ml_metadata/metadata_store.py``,
    absl DEBUG): keep the record, drop the password."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "password" in message:
            record.msg, record.args = _PASSWORD_FIELD.sub('password: "<redacted>"', message), ()
        return True


def _redact_ml_metadata_logs() -> None:
    absl = logging.getLogger("absl")
    if not any(isinstance(existing, _RedactPassword) for existing in absl.filters):
        absl.addFilter(_RedactPassword())


def connection_config(
    settings: Settings, pipeline_name: str, *, password: bool = True, readonly: bool = False
) -> metadata_store_pb2.ConnectionConfig:
    """ML Metadata's connection to ``pipeline_name``'s store, as the settings say.

    Args:
        settings: the machine's settings (``RUNWAY_METADATA_URL`` or the SQLite folder).
        pipeline_name: the pipeline (names the SQLite file; PostgreSQL holds every pipeline in one database).
        password: read the password file into the config (False for what is written into the IR).
        readonly: open a SQLite file read-only (readers); PostgreSQL has no such mode in ML Metadata.

    Raises:
        ConfigError: the password file cannot be read.
    """
    config = metadata_store_pb2.ConnectionConfig()
    postgres = settings.metadata_postgres
    if postgres is None:
        config.sqlite.filename_uri = str(settings.metadata_path(pipeline_name))
        config.sqlite.connection_mode = (
            metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
            if readonly
            else metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        )
        return config
    config.postgresql.host = postgres.host
    config.postgresql.port = str(postgres.port)
    config.postgresql.user = postgres.user
    config.postgresql.dbname = postgres.dbname
    if postgres.sslmode:
        config.postgresql.ssloption.sslmode = postgres.sslmode
    if password and (secret := postgres.password()) is not None:
        _redact_ml_metadata_logs()
        config.postgresql.password = secret
    return config


def describe(config: metadata_store_pb2.ConnectionConfig) -> str:
    """Where a connection points, for messages (never the password)."""
    if config.HasField("postgresql"):
        pg = config.postgresql
        return f"postgresql://{pg.user}@{pg.host}:{pg.port}/{pg.dbname}"
    if config.HasField("sqlite"):
        return config.sqlite.filename_uri
    return config.WhichOneof("config") or "an unknown store"


def for_node(compiled: metadata_store_pb2.ConnectionConfig, settings: Settings) -> metadata_store_pb2.ConnectionConfig:
    """The connection a node runs with: the IR's, checked against the settings, with the password added.

    Args:
        compiled: the connection config compiled into the IR (no password).
        settings: this machine's settings.

    Raises:
        ConfigError: the IR was compiled for another store than the settings name (recompile), or the password
            file cannot be read.
    """
    config = metadata_store_pb2.ConnectionConfig()
    config.CopyFrom(compiled)
    postgres = settings.metadata_postgres
    if config.HasField("sqlite"):
        if postgres is not None:
            raise ConfigError(
                f"the IR was compiled with ML Metadata in the SQLite file {config.sqlite.filename_uri}, but "
                f"RUNWAY_METADATA_URL points at {postgres.url()}: compile again (`runway compile`) so that "
                "every node records in the same store"
            )
        # ML Metadata's SQLite backend does not create a missing parent folder.
        Path(config.sqlite.filename_uri).parent.mkdir(parents=True, exist_ok=True)
        return config
    if config.HasField("postgresql"):
        if postgres is None or describe(connection_config(settings, "", password=False)) != describe(config):
            raise ConfigError(
                f"the IR was compiled with ML Metadata at {describe(config)}, but this machine's settings say "
                f"{postgres.url() if postgres else 'SQLite (RUNWAY_METADATA_URL is not set)'}: set "
                "RUNWAY_METADATA_URL as it was at compile time, or compile again (`runway compile`)"
            )
        return connection_config(settings, "")  # the same store, with the password from the settings' file
    return config


def open_store(config: metadata_store_pb2.ConnectionConfig, *, attempts: int = 6) -> Any:
    """Open ML Metadata (``ml_metadata.MetadataStore``), creating its tables in an empty database.

    Two nodes that meet an empty PostgreSQL database at once (two pipelines started together) both create the
    tables, and one of them fails on the other's (seen: ``duplicate key value violates unique constraint
    "pg_type_typname_nsp_index"``). That one retries, with a short backoff, and then finds them made.

    Raises:
        RuntimeError: ML Metadata's error, when it is not that race or outlasts ``attempts``.
    """
    from ml_metadata import metadata_store

    delay = 0.2
    for _ in range(attempts - 1):
        try:
            return metadata_store.MetadataStore(config)
        except RuntimeError as error:
            if not config.HasField("postgresql") or not _CREATION_RACE.search(str(error)):
                raise
            log.info(
                "another process is creating ML Metadata's tables at %s; retrying in %.1f s", describe(config), delay
            )
            time.sleep(delay)
            delay *= 2
    return metadata_store.MetadataStore(config)  # the last attempt: its error is the caller's


def pipeline_has_history(store: object, pipeline_name: str) -> bool:
    """Whether ``store`` (an ``ml_metadata.MetadataStore``) has recorded any run of ``pipeline_name``."""
    return store.get_context_by_type_and_name("pipeline", pipeline_name) is not None  # type: ignore[attr-defined]


def model_bases(ir: pipeline_pb2.Pipeline) -> list[Path]:
    """The model base paths the pipeline's Pusher nodes push to (``<store>/<model name>``)."""
    bases = []
    for node in ir.nodes:
        parameter = node.pipeline_node.parameters.parameters.get("push_destination")
        if parameter is not None and parameter.field_value.string_value:
            destination = json.loads(parameter.field_value.string_value)
            if base := destination.get("filesystem", {}).get("base_directory"):
                bases.append(Path(base))
    return bases


def empty_store_notice(settings: Settings, pipeline_name: str, *, model_bases: list[Path]) -> str | None:
    """What to tell someone whose PostgreSQL store has no history of a pipeline that has history elsewhere.

    Only for PostgreSQL (a SQLite file is the history itself). Called when the store holds no run of the pipeline;
    says so when its SQLite file exists or the model store holds versions of its model, and what it means.

    Args:
        settings: this machine's settings.
        pipeline_name: the pipeline.
        model_bases: the pipeline's model base paths (its pushed versions are their numbered folders).
    """
    if settings.metadata_postgres is None:
        return None
    sqlite = settings.metadata_path(pipeline_name)
    versions = sorted(p.name for base in model_bases if base.is_dir() for p in base.iterdir() if p.name.isdigit())
    evidence = []
    if sqlite.is_file():
        evidence.append(f"its earlier runs are recorded in the SQLite file {sqlite}")
    if versions:
        evidence.append(f"the model store holds its pushed versions {', '.join(versions)}")
    if not evidence:
        return None
    return (
        f"ML Metadata at {settings.metadata_postgres.url()} holds no history of pipeline '{pipeline_name}', but "
        f"{' and '.join(evidence)}. Runs recorded here start a new history: no baseline model for the Evaluator, "
        "every span counted as not ingested yet, no cache. runway does not migrate a SQLite store: to keep that "
        "history, unset RUNWAY_METADATA_URL (and compile again); to start anew on PostgreSQL, carry on."
    )


def warn_on_new_history(
    config: metadata_store_pb2.ConnectionConfig, ir: pipeline_pb2.Pipeline, settings: Settings
) -> str | None:
    """Before a node runs: make sure ML Metadata's tables exist (``open_store``), and log (and return)
    ``empty_store_notice`` when the store has no history of the pipeline."""
    if not config.HasField("postgresql"):
        return None
    name = ir.pipeline_info.id
    if pipeline_has_history(open_store(config), name):
        return None
    notice = empty_store_notice(settings, name, model_bases=model_bases(ir))
    if notice:
        log.warning("%s", notice)
    return notice
