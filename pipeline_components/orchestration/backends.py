"""Where a TFX node runs: a local subprocess (default), a Docker container, or a Kubernetes pod.

All three run the same command (``python -m pipeline_components.runtime run-node ...``) with the same
environment; only the paths differ (inside a container the shared storage is mounted at ``RUNWAY_HOME``).
The backend is chosen per machine with ``RUNWAY_NODE_BACKEND``; Docker and Kubernetes take their image and
storage from the variables below. The node's exit code means the same everywhere (``runner.py``): 0 done,
``EXIT_SKIPPED`` nothing to do (dry run, not blessed: the task is skipped on every backend), ``EXIT_GATE_FAILED``
a gate refused the run (the local operator fails without retrying; the container operators fail, and retry).

| variable | default | what |
|---|---|---|
| ``RUNWAY_NODE_BACKEND`` | ``local`` | ``local``, ``docker`` or ``kubernetes`` |
| ``RUNWAY_PIPELINE_IMAGE`` | ``runway-pipeline:0.1.0`` | the runtime environment image (infra/pipeline/Dockerfile) |
| ``RUNWAY_CONTAINER_HOME`` | ``/var/lib/runway`` | where the shared storage is mounted in the container |
| ``RUNWAY_DOCKER_VOLUME`` | ``runway-data`` | Docker volume holding data, artifacts, metadata, models |
| ``RUNWAY_DOCKER_URL`` | ``unix://var/run/docker.sock`` | Docker engine |
| ``RUNWAY_K8S_NAMESPACE`` | ``runway`` | namespace of the node pods |
| ``RUNWAY_K8S_PVC`` | ``runway-data`` | PersistentVolumeClaim (ReadWriteMany) with the shared storage |
| ``RUNWAY_K8S_METADATA_SECRET_NAME`` | ``runway-mlmd`` | Secret whose key ``password`` is ML Metadata's password |

ML Metadata on PostgreSQL (``RUNWAY_METADATA_URL``, ``pipeline_components.settings``) reaches every node the same
way: the URL as it is, and the password as the file ``METADATA_PASSWORD_IN_CONTAINER``: on Docker, the orchestrator's
``RUNWAY_METADATA_PASSWORD_FILE`` bound read-only (a path on the Docker host); on Kubernetes, that Secret mounted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pipeline_components.boundary import EXIT_SKIPPED, RUNTIME_ENV
from pipeline_components.errors import ConfigError
from pipeline_components.orchestration.runner import node_argv
from pipeline_components.settings import Settings

RUNTIME_PYTHON_IN_IMAGE = "/opt/runway/.venv-runtime/bin/python"
METADATA_PASSWORD_IN_CONTAINER = "/run/secrets/runway-mlmd/password"
# Jinja: Airflow renders these per task instance.
RUN_ID_TEMPLATE = "{{ run_id }}"
PARAMS_TEMPLATE = "{{ params | tojson }}"


class NodeBackend(StrEnum):
    LOCAL = "local"
    DOCKER = "docker"
    KUBERNETES = "kubernetes"


@dataclass(frozen=True, kw_only=True)
class ContainerSettings:
    backend: NodeBackend
    image: str
    home: str
    docker_volume: str
    docker_url: str
    namespace: str
    pvc: str
    # ML Metadata on PostgreSQL (None: the SQLite files on the shared storage).
    metadata_url: str | None = None
    metadata_password_file: str | None = None
    metadata_secret: str = "runway-mlmd"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ContainerSettings:
        env = os.environ if environ is None else environ
        name = env.get("RUNWAY_NODE_BACKEND", "local")
        try:
            backend = NodeBackend(name)
        except ValueError:
            raise ConfigError(
                f"RUNWAY_NODE_BACKEND={name!r} is not a backend; use one of {[b.value for b in NodeBackend]}"
            ) from None
        return cls(
            backend=backend,
            image=env.get("RUNWAY_PIPELINE_IMAGE", "runway-pipeline:0.1.0"),
            home=env.get("RUNWAY_CONTAINER_HOME", "/var/lib/runway"),
            docker_volume=env.get("RUNWAY_DOCKER_VOLUME", "runway-data"),
            docker_url=env.get("RUNWAY_DOCKER_URL", "unix://var/run/docker.sock"),
            namespace=env.get("RUNWAY_K8S_NAMESPACE", "runway"),
            pvc=env.get("RUNWAY_K8S_PVC", "runway-data"),
            metadata_url=env.get("RUNWAY_METADATA_URL") or None,
            metadata_password_file=env.get("RUNWAY_METADATA_PASSWORD_FILE") or None,
            metadata_secret=env.get("RUNWAY_K8S_METADATA_SECRET_NAME", "runway-mlmd"),
        )


def container_environment(container: ContainerSettings) -> dict[str, str]:
    """The runtime's environment inside a container: every location under the mounted shared storage."""
    metadata = {}
    if container.metadata_url:
        metadata["RUNWAY_METADATA_URL"] = container.metadata_url
        metadata["RUNWAY_METADATA_PASSWORD_FILE"] = METADATA_PASSWORD_IN_CONTAINER
    inside = Settings.from_env(
        {"RUNWAY_HOME": container.home, "RUNWAY_RUNTIME_PYTHON": RUNTIME_PYTHON_IN_IMAGE, **metadata}
    )
    env = {**inside.as_env(), **RUNTIME_ENV}
    env["RUNWAY_CONFIG_DIR"] = "/opt/runway/configs"
    return env


def container_ir_path(container: ContainerSettings, pipeline_name: str) -> str:
    return str(Path(container.home) / "ir" / f"{pipeline_name}.json")


def container_node_task(
    *, container: ContainerSettings, task_id: str, pipeline_name: str, node_id: str, **operator_kwargs: Any
) -> Any:
    """A DockerOperator or KubernetesPodOperator that runs one TFX node (providers imported only here)."""
    argv = node_argv(
        python=RUNTIME_PYTHON_IN_IMAGE,
        ir_path=container_ir_path(container, pipeline_name),
        node_id=node_id,
        run_id=RUN_ID_TEMPLATE,
        params_json=PARAMS_TEMPLATE,
    )
    env = container_environment(container)
    labels = {"app.kubernetes.io/part-of": "runway", "runway/pipeline": pipeline_name}
    if container.backend is NodeBackend.DOCKER:
        from airflow.providers.docker.operators.docker import DockerOperator
        from docker.types import Mount

        return DockerOperator(
            task_id=task_id,
            image=container.image,
            command=argv,
            environment=env,
            mounts=[
                Mount(source=container.docker_volume, target=container.home, type="volume"),
                *(
                    [Mount(source=password, target=METADATA_PASSWORD_IN_CONTAINER, type="bind", read_only=True)]
                    if container.metadata_url and (password := container.metadata_password_file)
                    else []
                ),
            ],
            docker_url=container.docker_url,
            auto_remove="success",
            mount_tmp_dir=False,
            skip_on_exit_code=EXIT_SKIPPED,
            labels=labels,
            **operator_kwargs,
        )
    if container.backend is NodeBackend.KUBERNETES:
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
        from kubernetes.client import models as k8s

        secret_volumes, secret_mounts = [], []
        if container.metadata_url:  # ML Metadata's password: the Secret's key `password`, as a read-only file
            secret_volumes.append(
                k8s.V1Volume(
                    name="runway-mlmd",
                    secret=k8s.V1SecretVolumeSource(
                        secret_name=container.metadata_secret,
                        items=[k8s.V1KeyToPath(key="password", path="password")],
                        default_mode=0o440,
                    ),
                )
            )
            secret_mounts.append(
                k8s.V1VolumeMount(
                    name="runway-mlmd", mount_path=str(Path(METADATA_PASSWORD_IN_CONTAINER).parent), read_only=True
                )
            )

        return KubernetesPodOperator(
            task_id=task_id,
            name=f"{pipeline_name}-{node_id}".lower().replace("_", "-")[:50],
            namespace=container.namespace,
            image=container.image,
            cmds=argv[:1],
            arguments=argv[1:],
            env_vars=env,
            volumes=[
                k8s.V1Volume(
                    name="runway-data",
                    persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=container.pvc),
                ),
                *secret_volumes,
            ],
            volume_mounts=[k8s.V1VolumeMount(name="runway-data", mount_path=container.home), *secret_mounts],
            container_resources=k8s.V1ResourceRequirements(
                requests={"cpu": "1", "memory": "2Gi"}, limits={"memory": "8Gi"}
            ),
            labels=labels,
            get_logs=True,
            on_finish_action="delete_succeeded_pod",
            skip_on_exit_code=EXIT_SKIPPED,
            **operator_kwargs,
        )
    raise ConfigError(f"backend {container.backend} does not run in a container")
