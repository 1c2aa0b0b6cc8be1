"""The project-started PostgreSQL (``pipeline_components/deploy/postgres.py``), really started: initdb, pg_ctl, a
generated password, loopback only, idempotent, nothing left running after ``stop``. Also runs docker-compose's
``infra/postgres/metadata-init.sql`` against it, as compose's metadata-init does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_components.deploy.postgres import LocalPostgres, PostgresServer
from pipeline_components.errors import ConfigError, RuntimeEnvironmentError
from pipeline_components.processes import pid_alive
from pipeline_components.settings import CHECKOUT, Settings
from tests.helpers import missing


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalPostgres]:
    # Not under pytest's tmp folder (0700): the cluster's own account must walk down to its folder.
    root = Path(tempfile.mkdtemp(prefix="runway-pg-unit-"))
    root.chmod(0o711)
    postgres = LocalPostgres(root=root / "postgres")
    try:
        postgres.bin_dir  # noqa: B018 (finds the binaries, or says how to install them)
    except RuntimeEnvironmentError as absent:
        shutil.rmtree(root)
        missing(str(absent))
    try:
        yield postgres
    finally:
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


def _psql(
    cluster: LocalPostgres, server: PostgresServer, *args: str, user: str, password: str | None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run(
        [str(cluster.bin_dir / "psql"), "--no-psqlrc", "--tuples-only", "--no-align", "--host", server.host,
         "--port", str(server.port), "--username", user, "--no-password", *args],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip


def _postmaster_pid(cluster: LocalPostgres) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def test_start_is_loopback_with_a_generated_password_and_idempotent(cluster: LocalPostgres) -> None:
    server = cluster.start()
    assert server.host == "127.0.0.1"
    assert cluster.password_file.stat().st_mode & 0o777 == 0o600
    password = cluster.password_file.read_text()
    assert len(password) >= 32 and password not in cluster.state_file.read_text()
    assert cluster.data.stat().st_mode & 0o777 == 0o700
    assert "listen_addresses = '127.0.0.1'" in (cluster.data / "runway.conf").read_text()
    pid = _postmaster_pid(cluster)
    assert cluster.start() == server and _postmaster_pid(cluster) == pid  # a second start changes nothing
    assert json.loads(cluster.state_file.read_text())["port"] == server.port


def test_clients_need_the_password(cluster: LocalPostgres) -> None:
    server = cluster.start()
    refused = _psql(cluster, server, "--dbname=postgres", "--command=SELECT 1", user=server.user, password=None)
    assert refused.returncode != 0 and "password" in refused.stderr
    wrong = _psql(cluster, server, "--dbname=postgres", "--command=SELECT 1", user=server.user, password="guess")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    right = _psql(
        cluster, server, "--dbname=postgres", "--command=SELECT 1", user=server.user,
        password=server.password_file.read_text(),
    )  # fmt: skip
    assert right.returncode == 0 and right.stdout.strip() == "1", right.stderr


def test_databases_are_created_once_and_named_for_the_settings(cluster: LocalPostgres) -> None:
    server = cluster.start()
    url = cluster.create_database("mlmd")
    assert cluster.create_database("mlmd") == url == f"postgresql://runway@127.0.0.1:{server.port}/mlmd"
    settings = Settings.from_env(server.metadata_env("mlmd"))
    assert settings.metadata_postgres is not None and settings.metadata_postgres.url() == url
    assert settings.metadata_postgres.password() == server.password_file.read_text()
    with pytest.raises(ConfigError, match="lower-case letters"):
        cluster.create_database("mlmd; DROP DATABASE postgres")


def test_compose_metadata_init_script_creates_the_role_and_database_idempotently(cluster: LocalPostgres) -> None:
    server = cluster.start()
    script = CHECKOUT / "infra" / "postgres" / "metadata-init.sql"
    env_password = "s3cret-for-mlmd"
    for _ in range(2):  # compose runs it at every `up`
        done = subprocess.run(
            [str(cluster.bin_dir / "psql"), "--no-psqlrc", "--host", server.host, "--port", str(server.port),
             "--username", server.user, "--dbname=postgres", f"--file={script}"],
            env={**os.environ, "PGPASSWORD": server.password_file.read_text(), "MLMD_DB_PASSWORD": env_password},
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert env_password not in done.stdout + done.stderr
    owner = _psql(
        cluster, server, "--dbname=mlmd", "--command=SELECT current_user, current_database()", user="mlmd",
        password=env_password,
    )  # fmt: skip
    assert owner.returncode == 0 and owner.stdout.strip() == "mlmd|mlmd", owner.stderr


def test_stop_leaves_nothing_running_and_start_finds_the_data_again(cluster: LocalPostgres) -> None:
    server = cluster.start()
    cluster.create_database("kept")
    pid = _postmaster_pid(cluster)
    cluster.stop()
    assert not pid_alive(pid) and not cluster.running() and cluster.server() is None
    cluster.stop()  # stopping a stopped cluster does nothing
    again = cluster.start()
    assert again.port == server.port  # the same URL as before, the port being free
    assert cluster.create_database("kept") == again.url("kept")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another account")
def test_a_folder_the_server_account_cannot_enter_is_named(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(RuntimeEnvironmentError, match=r"cannot enter .*chmod o\+x"):
        LocalPostgres(root=private / "postgres").init()
