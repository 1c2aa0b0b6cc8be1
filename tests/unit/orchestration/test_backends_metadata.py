"""ML Metadata on PostgreSQL reaches the node containers: the URL as the orchestrator has it, the password as a
read-only file (Docker: the orchestrator's file bound; Kubernetes: the Secret mounted), never as a value."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_components.orchestration.backends import (
    METADATA_PASSWORD_IN_CONTAINER,
    ContainerSettings,
    container_node_task,
)
from pipeline_components.settings import Settings

URL = "postgresql://mlmd@postgres.runway.svc:5432/mlmd"


def _node(backend: str, **env: str) -> Any:
    container = ContainerSettings.from_env({"RUNWAY_NODE_BACKEND": backend, **env})
    return container_node_task(container=container, task_id="Trainer", pipeline_name="flights", node_id="Trainer")


def _env(task: Any) -> dict[str, str]:
    if hasattr(task, "environment"):
        return dict(task.environment)
    return task.env_vars if isinstance(task.env_vars, dict) else {e.name: e.value for e in task.env_vars}


@pytest.mark.parametrize("backend", ["docker", "kubernetes"])
def test_the_node_container_reads_the_same_postgresql_store(backend: str) -> None:
    task = _node(
        backend,
        RUNWAY_METADATA_URL=URL,
        RUNWAY_METADATA_PASSWORD_FILE="/etc/runway/mlmd-password",
        RUNWAY_K8S_METADATA_SECRET_NAME="mlmd-credentials",
    )
    env = _env(task)
    inside = Settings.from_env(env)
    assert inside.metadata_postgres is not None and inside.metadata_postgres.url() == URL
    assert env["RUNWAY_METADATA_PASSWORD_FILE"] == METADATA_PASSWORD_IN_CONTAINER
    assert not any("password" in key.lower() and key != "RUNWAY_METADATA_PASSWORD_FILE" for key in env)
    if backend == "docker":
        (secret,) = [m for m in task.mounts if m["Target"] == METADATA_PASSWORD_IN_CONTAINER]
        assert secret["Source"] == "/etc/runway/mlmd-password" and secret["Type"] == "bind" and secret["ReadOnly"]
    else:
        (volume,) = [v for v in task.volumes if v.secret is not None]
        assert volume.secret.secret_name == "mlmd-credentials"
        assert [(item.key, item.path) for item in volume.secret.items] == [("password", "password")]
        (mount,) = [m for m in task.volume_mounts if m.name == volume.name]
        assert f"{mount.mount_path}/password" == METADATA_PASSWORD_IN_CONTAINER and mount.read_only


@pytest.mark.parametrize("backend", ["docker", "kubernetes"])
def test_without_a_url_the_nodes_keep_the_sqlite_files(backend: str) -> None:
    task = _node(backend)
    assert "RUNWAY_METADATA_URL" not in _env(task)
    volumes = task.mounts if backend == "docker" else task.volumes
    assert len(volumes) == 1  # the shared storage only
