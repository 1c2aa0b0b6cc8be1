"""Airflow 3's CeleryExecutor settings of a deployment (issue 18): Redis as broker, PostgreSQL as Celery's result
backend and Airflow's metadata database, a queue per worker host.

``celery_settings(...)`` turns a running ``LocalRedis`` and ``LocalPostgres`` (``deploy/redis.py``,
``deploy/postgres.py``) into the environment variables every Airflow component of the deployment gets (api-server,
scheduler, dag-processor, triggerer, workers), and each worker's command line. ``make run`` never calls it: SQLite and
the LocalExecutor stay the default.

No password travels in those variables (a process's environment is readable by its user, and copied into every
child): each URL that needs one is set with Airflow's ``_CMD`` form (``AIRFLOW__CELERY__BROKER_URL_CMD``, ...), a
command that prints it with the password read from its 0600 file when the component starts:

    python -m pipeline_components.deploy.celery url 'redis://:{password}@127.0.0.1:6380/0' /srv/runway/redis/password

Queues: every worker consumes the shared queue ``default`` (Airflow's default queue: a task without ``queue=`` runs
on whichever worker is free, and a retry can land on another host) and its own host's queue, named after the host
(``queue="worker-1"`` pins a task there, as one training worker per host needs).
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pipeline_components.deploy.postgres import PostgresServer
from pipeline_components.deploy.redis import RedisServer
from pipeline_components.errors import ConfigError

SHARED_QUEUE = "default"
_HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Celery redelivers a message whose task has not been acknowledged within this time (tasks acknowledge late, when
# they end), so it must exceed the longest node: a redelivered Trainer would run twice. A worker host that is lost is
# noticed by Airflow's task heartbeats instead, and its task retried under the task's retry policy.
_VISIBILITY_TIMEOUT_S = 86_400


@dataclass(frozen=True, kw_only=True)
class CelerySettings:
    """What a Celery deployment's Airflow components are started with.

    Attributes:
        env: the environment variables of every Airflow component (no secret among them).
        worker_hosts: the worker hosts, in order; each has its own queue, named after it.
    """

    env: dict[str, str]
    worker_hosts: tuple[str, ...]

    def queues(self, host: str) -> list[str]:
        """The queues the worker of ``host`` consumes: the shared one, then its own.

        Raises:
            ConfigError: ``host`` is not one of the deployment's worker hosts.
        """
        if host not in self.worker_hosts:
            raise ConfigError(f"{host!r} is not a worker host of this deployment ({', '.join(self.worker_hosts)})")
        return [SHARED_QUEUE, host]

    def worker_command(self, host: str, *, airflow: str = "airflow") -> list[str]:
        """``airflow celery worker`` for ``host``: its queues, and a Celery node name unique across hosts (hosts
        that are network namespaces of one machine share its host name, which Celery's default ``%h`` uses)."""
        queues = ",".join(self.queues(host))
        return [airflow, "celery", "worker", "--queues", queues, "--celery-hostname", f"{host}@runway"]


def _url_command(python: Path, template: str, password_file: Path) -> str:
    return shlex.join([str(python), "-m", "pipeline_components.deploy.celery", "url", template, str(password_file)])


def celery_settings(
    *,
    redis: RedisServer,
    postgres: PostgresServer,
    database: str,
    worker_hosts: Sequence[str],
    worker_concurrency: int = 4,
    execution_api_url: str | None = None,
    python: Path | None = None,
) -> CelerySettings:
    """The CeleryExecutor settings of a deployment on ``redis`` and ``postgres``.

    Args:
        redis: the broker (``LocalRedis.start()``); database 0 holds the queues.
        postgres: the server of Airflow's metadata database, which also holds Celery's results
            (``LocalPostgres.start()``; create the database with ``LocalPostgres.create_database``).
        database: Airflow's database on ``postgres``.
        worker_hosts: the worker hosts' names (lower-case letters, digits, '-'): one queue each.
        worker_concurrency: task slots per worker.
        execution_api_url: where workers reach the api-server's Task Execution API
            (``http://HOST:PORT/execution/``), when it is not on the worker's own loopback.
        python: the orchestrator environment's interpreter, which runs the URL commands (default: this one).

    Returns:
        The environment of every component, and each worker's queues and command.

    Raises:
        ConfigError: a host or database name is not a plain name, a host is listed twice, or no host is given.
    """
    hosts = tuple(worker_hosts)
    if not hosts:
        raise ConfigError("a Celery deployment needs at least one worker host")
    for host in hosts:
        if not _HOST_NAME.match(host) or host == SHARED_QUEUE:
            raise ConfigError(
                f"worker host {host!r}: use lower-case letters, digits and '-' (at most 31, a letter first, not "
                f"{SHARED_QUEUE!r}, the shared queue); it names the host's queue"
            )
    if len(set(hosts)) != len(hosts):
        twice = sorted(host for host in set(hosts) if hosts.count(host) > 1)
        raise ConfigError(f"worker hosts listed twice: {', '.join(twice)}")
    if not _DATABASE_NAME.match(database):
        raise ConfigError(f"database name {database!r}: use lower-case letters, digits and '_' (at most 63)")
    if worker_concurrency < 1:
        raise ConfigError(f"worker_concurrency {worker_concurrency}: a worker needs at least one task slot")
    interpreter = python or Path(sys.executable)
    user = quote(postgres.user, safe="")
    sql = f"postgresql+psycopg2://{user}:{{password}}@{postgres.host}:{postgres.port}/{database}"
    env = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": _url_command(interpreter, sql, postgres.password_file),
        "AIRFLOW__CELERY__RESULT_BACKEND_CMD": _url_command(interpreter, f"db+{sql}", postgres.password_file),
        "AIRFLOW__CELERY__BROKER_URL_CMD": _url_command(
            interpreter, f"redis://:{{password}}@{redis.host}:{redis.port}/0", redis.password_file
        ),
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": str(_VISIBILITY_TIMEOUT_S),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": SHARED_QUEUE,
    }
    if execution_api_url is not None:
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = execution_api_url
    return CelerySettings(env=env, worker_hosts=hosts)


def secret_url(template: str, password_file: Path) -> str:
    """``template`` with ``{password}`` replaced by the content of ``password_file``, URL-quoted.

    Raises:
        ConfigError: the template has no ``{password}`` or the file cannot be read.
    """
    if "{password}" not in template:
        raise ConfigError(f"URL template {template!r} has no {{password}} to fill in")
    try:
        password = password_file.read_text().strip()
    except OSError as error:
        raise ConfigError(f"cannot read the password file {password_file}: {error.strerror}") from None
    return template.replace("{password}", quote(password, safe=""))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipeline_components.deploy.celery url TEMPLATE PASSWORD_FILE``: print the URL (Airflow's ``_CMD``
    settings run it; its output is the secret, so it goes to stdout only)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] != "url":
        print("usage: python -m pipeline_components.deploy.celery url TEMPLATE PASSWORD_FILE", file=sys.stderr)
        return 2
    try:
        print(secret_url(args[1], Path(args[2])), end="")
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
