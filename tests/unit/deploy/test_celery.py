"""Airflow's CeleryExecutor settings of a deployment (``pipeline_components/deploy/celery.py``), really used: a real
``airflow celery worker`` for one worker host, started with ``celery_settings(...)`` and the command it gives, takes a
task from its host's queue through a real Redis (``LocalRedis``) and stores the result in a real PostgreSQL
(``LocalPostgres``); a task for another host's queue waits in Redis, also across a Redis restart. No password is in
any setting, the worker's command line or its log. Started once for the module (Airflow's CLI takes seconds)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
import redis

from pipeline_components.deploy.celery import SHARED_QUEUE, CelerySettings, celery_settings, secret_url
from pipeline_components.deploy.postgres import LocalPostgres, PostgresServer
from pipeline_components.deploy.redis import LocalRedis, RedisServer, find_redis_server
from pipeline_components.errors import ConfigError, RuntimeEnvironmentError
from pipeline_components.settings import CHECKOUT
from tests.helpers import missing

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
HOSTS = ["worker-a", "worker-b"]


@dataclass
class Deployment:
    redis: LocalRedis
    postgres: PostgresServer
    settings: CelerySettings
    worker: subprocess.Popen[bytes]
    worker_log: Path
    sent: dict[str, object]  # the probe client's answer: task ids and the answered task's result


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # warm shutdown of the worker and its pool
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    # Not under pytest's tmp folder (0700): PostgreSQL's own account must walk down to its folder when root runs this.
    root = Path(tempfile.mkdtemp(prefix="runway-celery-unit-"))
    root.chmod(0o711)
    local_redis = LocalRedis(root=root / "redis")
    local_postgres = LocalPostgres(root=root / "postgres")
    try:
        find_redis_server()
        local_postgres.bin_dir  # noqa: B018 (finds the binaries, or says how to install them)
    except RuntimeEnvironmentError as absent:
        shutil.rmtree(root)
        missing(str(absent))
    worker: subprocess.Popen[bytes] | None = None
    try:
        broker = local_redis.start()
        postgres = local_postgres.start()
        local_postgres.create_database("airflow")
        settings = celery_settings(redis=broker, postgres=postgres, database="airflow", worker_hosts=HOSTS)
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        env |= settings.env | {
            "AIRFLOW_HOME": str(root / "airflow"),
            # The worker imports the probe task beside Airflow's own (Celery's `imports` setting).
            "AIRFLOW__CELERY__EXTRA_CELERY_CONFIG": json.dumps({"imports": ["tests.unit.deploy.celery_probe"]}),
            "RUNWAY_PROBE_HOST": "worker-a",
            "PYTHONPATH": str(CHECKOUT),
        }
        worker_log = root / "worker.log"
        command = [AIRFLOW, *settings.worker_command("worker-a")[1:], "--skip-serve-logs"]
        with worker_log.open("wb") as log:
            worker = subprocess.Popen(
                command, env=env, cwd=CHECKOUT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        # Sent while the worker starts (both import Airflow): the client waits for the answer, bounded in time.
        client = subprocess.run(
            [sys.executable, "-m", "tests.unit.deploy.celery_probe", "worker-b", "worker-a"],
            env=env, cwd=CHECKOUT, capture_output=True, text=True, timeout=150, check=False,
        )  # fmt: skip
        assert client.returncode == 0, f"{client.stderr[-3000:]}\nworker log:\n{worker_log.read_text()[-3000:]}"
        sent = json.loads(client.stdout.strip().splitlines()[-1])
        yield Deployment(local_redis, postgres, settings, worker, worker_log, sent)
    finally:
        if worker is not None:
            _stop_group(worker)
        local_redis.stop()
        local_postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_task_runs_on_its_hosts_worker_with_the_result_in_postgresql(deployment: Deployment) -> None:
    assert deployment.sent["result"] == {"token": "answered", "host": "worker-a"}
    password = deployment.postgres.password_file.read_text()
    with psycopg2.connect(
        host=deployment.postgres.host, port=deployment.postgres.port, user=deployment.postgres.user,
        password=password, dbname="airflow",
    ) as connection, connection.cursor() as cursor:  # fmt: skip
        cursor.execute("SELECT status, result FROM celery_taskmeta WHERE task_id = %s", (deployment.sent["answered"],))
        rows = cursor.fetchall()
    assert len(rows) == 1 and rows[0][0] == "SUCCESS"  # Celery's database backend, in Airflow's database


def test_a_task_for_another_host_waits_in_redis_across_a_restart(deployment: Deployment) -> None:
    def queued() -> list[str]:
        messages = redis.Redis.from_url(deployment.redis.url(), socket_timeout=5).lrange("worker-b", 0, -1)
        return [json.loads(message)["headers"]["id"] for message in messages]

    assert queued() == [deployment.sent["queued"]]  # no worker of worker-b: worker-a never took it
    deployment.redis.stop()
    deployment.redis.start()
    assert queued() == [deployment.sent["queued"]]


def test_no_password_in_the_settings_the_worker_command_or_its_log(deployment: Deployment) -> None:
    passwords = [deployment.postgres.password_file.read_text(), deployment.redis.password_file.read_text()]
    # The worker's environment is the settings plus the test's own variables (/proc/PID/environ cannot show it:
    # Airflow's process title overwrites that memory).
    command = Path(f"/proc/{deployment.worker.pid}/cmdline").read_bytes().decode(errors="replace")
    log = deployment.worker_log.read_text(errors="replace")
    for password in passwords:
        assert not any(password in value for value in deployment.settings.env.values())
        assert password not in command and password not in log
    assert "redis://:**@127.0.0.1" in log  # the worker did connect to the broker (Celery masks the password)


def test_each_worker_consumes_the_shared_queue_and_its_own() -> None:
    settings = celery_settings(
        redis=_redis_server(), postgres=_postgres_server(), database="airflow", worker_hosts=HOSTS,
        execution_api_url="http://10.0.0.2:8080/execution/",
    )  # fmt: skip
    assert settings.env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert settings.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == SHARED_QUEUE
    assert settings.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://10.0.0.2:8080/execution/"
    assert settings.worker_command("worker-b")[1:] == [
        "celery", "worker", "--queues", "default,worker-b", "--celery-hostname", "worker-b@runway",
    ]  # fmt: skip
    with pytest.raises(ConfigError, match="not a worker host"):
        settings.queues("worker-c")


@pytest.mark.parametrize(
    ("hosts", "database", "message"),
    [
        pytest.param([], "airflow", "at least one worker host", id="no-host"),
        pytest.param(["Worker_A"], "airflow", "lower-case letters", id="bad-host"),
        pytest.param(["default"], "airflow", "shared queue", id="host-named-like-the-shared-queue"),
        pytest.param(["w1", "w1"], "airflow", "listed twice: w1", id="duplicate-host"),
        pytest.param(["w1"], "air-flow; drop", "database name", id="bad-database"),
    ],
)
def test_bad_settings_are_refused(hosts: list[str], database: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        celery_settings(redis=_redis_server(), postgres=_postgres_server(), database=database, worker_hosts=hosts)


def test_secret_url_quotes_the_password_and_names_a_missing_file(tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("p@ss/word\n")
    assert secret_url("redis://:{password}@h:1/0", password_file) == "redis://:p%40ss%2Fword@h:1/0"
    with pytest.raises(ConfigError, match="cannot read the password file"):
        secret_url("redis://:{password}@h:1/0", tmp_path / "absent")


def _redis_server() -> RedisServer:
    return RedisServer(host="10.0.0.2", port=6379, pid=1, password_file=Path("/srv/redis/password"))


def _postgres_server() -> PostgresServer:
    return PostgresServer(host="10.0.0.2", port=5432, user="runway", password_file=Path("/srv/postgres/password"))
