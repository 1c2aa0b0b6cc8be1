"""ML Metadata on PostgreSQL, from the settings alone: a project-started PostgreSQL (once for the module), the
penguins pipeline compiled and its first nodes run as Airflow tasks run them, read back by the run summary behind
``runway run`` and ``runway report``.

Two pipelines share the one database under the same run id (Airflow's ``scheduled__<date>`` names a run of every
pipeline scheduled that day) and each reads back only its own run. Runtime environment (TFX); PostgreSQL binaries
from Debian's ``postgresql`` package (``make setup``).
"""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ml_metadata.proto import metadata_store_pb2

from pipeline_components.config import load_pipeline_config
from pipeline_components.data import penguins
from pipeline_components.deploy.postgres import LocalPostgres, PostgresServer
from pipeline_components.errors import ConfigError, RuntimeEnvironmentError, RunwayError
from pipeline_components.metadata.connection import connection_config, for_node, open_store
from pipeline_components.metadata.reader import RunReader
from pipeline_components.runtime.compile import compile_pipeline, read_ir, write_ir
from pipeline_components.runtime.node import run_node
from pipeline_components.runtime.run_summary import ingested_spans, run_report
from pipeline_components.settings import Settings
from tests.conftest import CONFIGS
from tests.helpers import missing

RUN_ID = "scheduled__2026-12-01T00:00:00+00:00"  # the same run id in both pipelines, as a shared schedule gives


@pytest.fixture(scope="module")
def postgres() -> Iterator[tuple[LocalPostgres, PostgresServer]]:
    # Not under pytest's own tmp folder: that is 0700, and the cluster's account must walk down to its folder.
    root = Path(tempfile.mkdtemp(prefix="runway-pg-test-"))
    root.chmod(0o711)
    cluster = LocalPostgres(root=root / "postgres")
    try:
        server = cluster.start()
    except RuntimeEnvironmentError as absent:
        shutil.rmtree(root)
        missing(str(absent))
    try:
        yield cluster, server
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _compile(settings: Settings, name: str) -> Path:
    config = load_pipeline_config(CONFIGS / "penguins.yaml").with_overrides({"name": name})
    path = settings.ir_path(name)
    write_ir(compile_pipeline(config, settings), path, config_path=config.source)
    return path


@pytest.fixture(scope="module")
def runs(postgres: tuple[LocalPostgres, PostgresServer]) -> Iterator[dict[str, Any]]:
    """Two pipelines on one database: `penguins` runs three nodes on the newest span, `penguins_b` its ExampleGen on
    span 2007 at the same time as penguins' own, under the same run id; nothing else is configured than
    RUNWAY_METADATA_URL and the password file."""
    cluster, server = postgres
    cluster.create_database("mlmd")
    home = cluster.root.parent / "home"
    env = {"RUNWAY_HOME": str(home), **server.metadata_env("mlmd")}
    settings = Settings.from_env(env)
    config = load_pipeline_config(CONFIGS / "penguins.yaml")
    penguins.prepare(settings.data_dir / config.data.folder)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():  # as an Airflow task gets them (settings.as_env)
            patch.setenv(name, value)
        irs = {name: _compile(settings, name) for name in ("penguins", "penguins_b")}
        # Both pipelines' first nodes at once, on the empty database (both create ML Metadata's tables), each in a
        # forked process as the warm runtime runs nodes.
        fork = multiprocessing.get_context("fork")
        first = [
            fork.Process(target=run_node, args=(irs["penguins"], "CsvExampleGen", RUN_ID, {})),
            fork.Process(target=run_node, args=(irs["penguins_b"], "CsvExampleGen", RUN_ID, {"span": 2007})),
        ]
        for process in first:
            process.start()
        for process in first:
            process.join(timeout=240)
        assert [p.exitcode for p in first] == [0, 0], "a node failed when both ran at once (see its output above)"
        for node in ("StatisticsGen", "ImportSchemaGen"):
            run_node(irs["penguins"], node, RUN_ID, {})
        yield {"settings": settings, "irs": irs, "home": home, "config": config, "server": server}


def test_nodes_record_in_postgres_and_the_run_summary_reads_them_back(runs: dict[str, Any]) -> None:
    settings, config = runs["settings"], runs["config"]
    report = run_report(config, settings, RUN_ID)
    assert {node: item["state"] for node, item in report["nodes"].items()} == {
        "CsvExampleGen": "COMPLETE",
        "StatisticsGen": "COMPLETE",
        "ImportSchemaGen": "COMPLETE",
    }
    assert report["spans"]["ingested"] == [2009]
    assert ingested_spans(config, settings) == [2009]
    # Nothing went to a SQLite file: not the default one, not anywhere under RUNWAY_HOME.
    assert not settings.metadata_path("penguins").exists()
    assert [p for p in runs["home"].rglob("*") if p.suffix in (".sqlite", ".db")] == []


def test_two_pipelines_share_one_database_without_interference(runs: dict[str, Any]) -> None:
    settings = runs["settings"]
    other = runs["config"].with_overrides({"name": "penguins_b"})
    report = run_report(other, settings, RUN_ID)
    assert set(report["nodes"]) == {"CsvExampleGen"}  # not penguins' StatisticsGen of the same run id
    assert report["spans"]["ingested"] == [2007]
    assert ingested_spans(other, settings) == [2007]
    assert ingested_spans(runs["config"], settings) == [2009]


def test_the_compiled_ir_holds_no_password(runs: dict[str, Any]) -> None:
    password = Path(runs["server"].password_file).read_text().strip()
    for path in runs["irs"].values():
        text = path.read_text()
        assert password not in text
        assert '"password"' not in text
        connection = read_ir(path).deployment_config  # the store is named, as the node will find it
        assert b"mlmd" in connection.value and str(runs["server"].port).encode() in connection.value


def test_a_node_refuses_an_ir_compiled_for_another_store(runs: dict[str, Any], tmp_path: Path) -> None:
    sqlite_settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path)})
    compiled = connection_config(sqlite_settings, "penguins", password=False)
    with pytest.raises(ConfigError, match=r"RUNWAY_METADATA_URL points at postgresql://runway@127\.0\.0\.1"):
        for_node(compiled, runs["settings"])
    postgres_ir = connection_config(runs["settings"], "penguins", password=False)
    with pytest.raises(ConfigError, match="compile again"):
        for_node(postgres_ir, sqlite_settings)
    assert for_node(postgres_ir, runs["settings"]).postgresql.password  # added at run time, from the file


def test_an_empty_database_says_where_the_history_is(
    postgres: tuple[LocalPostgres, PostgresServer],
    runs: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    cluster, server = postgres
    cluster.create_database("fresh")
    env = {"RUNWAY_HOME": str(runs["home"]), "RUNWAY_IR_DIR": str(tmp_path), **server.metadata_env("fresh")}
    settings = Settings.from_env(env)
    config = runs["config"]
    # The pipeline's history so far: its SQLite file and a pushed version in the model store.
    settings.metadata_path("penguins").parent.mkdir(parents=True, exist_ok=True)
    settings.metadata_path("penguins").write_bytes(b"")
    (settings.model_store / config.serving.model_name / "1700000000").mkdir(parents=True)
    try:
        with pytest.raises(RunwayError) as refused:
            run_report(config, settings, RUN_ID)
        message = str(refused.value)
        assert "holds no history of pipeline 'penguins'" in message
        assert str(settings.metadata_path("penguins")) in message and "1700000000" in message
        assert "unset RUNWAY_METADATA_URL" in message
        assert not RunReader.for_pipeline(settings, "penguins").has_history()

        # A node run against that database says the same in its log before it records anything.
        ir = _compile(settings, "penguins")
        with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.DEBUG):
            for name, value in env.items():
                patch.setenv(name, value)
            run_node(ir, "ImportSchemaGen", "manual__fresh", {})
        assert any("holds no history of pipeline 'penguins'" in r.getMessage() for r in caplog.records)
        # Nothing the node logged (Python's logging, or ML Metadata's own output on the descriptors) has the password.
        out, err = capfd.readouterr()
        password = server.password_file.read_text()
        assert password not in caplog.text + out + err and "Connecting to database" in err
    finally:
        settings.metadata_path("penguins").unlink()
        shutil.rmtree(settings.model_store / config.serving.model_name)


def test_a_store_that_cannot_be_opened_is_named_with_what_to_check(
    postgres: tuple[LocalPostgres, PostgresServer], tmp_path: Path
) -> None:
    cluster, server = postgres
    absent = Settings.from_env({"RUNWAY_HOME": str(tmp_path), **server.metadata_env("absent")})
    with pytest.raises(RunwayError, match=r"cannot open ML Metadata at postgresql://runway@127\.0\.0\.1:\d+/absent"):
        RunReader.for_pipeline(absent, "penguins")  # a reader never creates the database
    cluster.create_database("mlmd")
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password")
    env = {**server.metadata_env("mlmd"), "RUNWAY_METADATA_PASSWORD_FILE": str(wrong)}
    # ML Metadata's own message is empty here (libpq's reason goes to its log): the error says what to check.
    with pytest.raises(RunwayError, match=r"/mlmd: .*the password in RUNWAY_METADATA_PASSWORD_FILE") as refused:
        RunReader.for_pipeline(Settings.from_env({"RUNWAY_HOME": str(tmp_path), **env}), "penguins")
    assert "not-the-password" not in str(refused.value)


def _open_together(config: metadata_store_pb2.ConnectionConfig, barrier: Any) -> None:
    barrier.wait()  # every process meets the empty database at the same moment
    open_store(config)


def test_processes_meeting_an_empty_database_at_once_all_open_it(
    postgres: tuple[LocalPostgres, PostgresServer],
) -> None:
    """Without the retry, 24 of 32 such processes failed here (a unique violation in PostgreSQL's catalog while
    another one created ML Metadata's tables)."""
    cluster, server = postgres
    fork = multiprocessing.get_context("fork")
    for attempt in range(2):
        database = f"together_{attempt}"
        cluster.create_database(database)
        config = connection_config(Settings.from_env(server.metadata_env(database)), "penguins")
        barrier = fork.Barrier(4)
        processes = [fork.Process(target=_open_together, args=(config, barrier)) for _ in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        assert [p.exitcode for p in processes] == [0, 0, 0, 0]
