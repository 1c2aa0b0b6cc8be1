"""The Airflow components of a deployment: their environment and command lines.

Every component (api-server, scheduler, dag-processor, triggerer on the control host; a Celery worker per worker
host) gets the same settings: Airflow's database and Celery's result backend on the deployment's PostgreSQL, the
broker on its Redis (``deploy/celery.py``), the secrets shared by all of them through Airflow's ``_CMD`` settings
(``cat <0600 file>``: no secret in any environment or command line), ML Metadata on PostgreSQL, and runway's
settings for the deployment's own home. Workers add their host's name and address and a runtime folder of their
own, so that each worker host runs TFX nodes in its own warm runtime.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

from pipeline_components.deploy.celery import CelerySettings
from pipeline_components.deploy.identity import ADDRESS_ENV, HOST_ENV
from pipeline_components.deploy.secrets import SecretFiles
from pipeline_components.deploy.topology import API_PORT, WORKERS
from pipeline_components.orchestration.airflow_local import airflow_bin, airflow_env
from pipeline_components.settings import Settings

# Airflow's settings of the embedded stack that a deployment replaces (SQLite's connection and lock timeout).
_EMBEDDED_ONLY = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC",
)
# How long a running task may go without a heartbeat before the scheduler fails it (and its retry runs on another
# worker): a worker host that is cut off or gone is noticed within this time. Airflow's default is 300 s.
HEARTBEAT_TIMEOUT_S = 60
# How often the scheduler adopts the running tasks of a scheduler that died (Airflow's default: 300 s). A restarted
# scheduler fails a lost task only once it owns it, so this bounds how long such a task blocks its run.
ORPHAN_CHECK_S = 60

CONTROL_COMPONENTS = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


def _cat(path: Path) -> str:
    return shlex.join(["cat", str(path)])


def component_env(
    settings: Settings,
    *,
    celery: CelerySettings,
    secrets: SecretFiles,
    control_address: str,
    auth: Mapping[str, str],
) -> dict[str, str]:
    """The environment of every Airflow component of the deployment (no secret value in it).

    Args:
        settings: the deployment's runway settings (its home, ML Metadata on PostgreSQL).
        celery: the CeleryExecutor's settings (``celery_settings``).
        secrets: the deployment's secret files.
        control_address: the control host's address (the api-server listens there).
        auth: the auth manager's settings.
    """
    env = airflow_env(settings)
    for name in _EMBEDDED_ONLY:
        env.pop(name, None)
    env.update(celery.env)
    env.update(settings.as_env())
    env.update(auth)
    env.update({
        "AIRFLOW_HOME": str(settings.home / "airflow"),
        "AIRFLOW__API__HOST": control_address,
        "AIRFLOW__API__PORT": str(API_PORT),
        "AIRFLOW__CORE__FERNET_KEY_CMD": _cat(secrets.path("fernet-key")),
        "AIRFLOW__API__SECRET_KEY_CMD": _cat(secrets.path("api-secret-key")),
        "AIRFLOW__API_AUTH__JWT_SECRET_CMD": _cat(secrets.path("jwt-secret")),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "pipeline_components.deploy.identity.hostname",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
        "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": str(ORPHAN_CHECK_S),
        "RUNWAY_WORKER_QUEUES": ",".join(WORKERS),
        "PYTHONUNBUFFERED": "1",
    })  # fmt: skip
    return env


def worker_env(env: Mapping[str, str], *, host: str, address: str, runtime_dir: Path) -> dict[str, str]:
    """A worker host's environment: ``env`` plus its name and address (``deploy/identity.py``) and its own runtime
    folder (``XDG_RUNTIME_DIR``), where its warm runtime keeps its socket: a Unix socket is a file, reachable from
    every namespace, so two worker hosts sharing one would run every node in whichever host started it."""
    runtime_dir.mkdir(parents=True, exist_ok=True)
    runtime_dir.chmod(0o700)
    return {**env, HOST_ENV: host, ADDRESS_ENV: address, "XDG_RUNTIME_DIR": str(runtime_dir)}


def component_argv(name: str, *, control_address: str) -> list[str]:
    """The command line of a control-host component (``CONTROL_COMPONENTS``)."""
    airflow = airflow_bin()
    if name == "airflow-apiserver":
        return [airflow, "api-server", "--host", control_address, "--port", str(API_PORT)]
    return [airflow, name.removeprefix("airflow-")]


def worker_argv(celery: CelerySettings, host: str, *, concurrency: int) -> list[str]:
    """``airflow celery worker`` for ``host``: its queues, its slots, and no log server (the task logs are on the
    shared filesystem, where the api-server reads them; a log server would be one more open port)."""
    return [
        *celery.worker_command(host, airflow=airflow_bin()),
        "--concurrency",
        str(concurrency),
        "--skip-serve-logs",
    ]
