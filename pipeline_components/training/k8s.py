"""The multi-process strategies rendered as Kubernetes manifests (``runway train manifests``; docs/training.md).

One Indexed ``Job`` per role (``worker`` for multi_worker_mirrored; ``chief``, ``worker`` and ``ps`` for
parameter_server) and one headless ``Service`` that gives every pod a stable DNS name
``<job>-<index>.<service>.<namespace>.svc`` (Indexed Jobs set each pod's hostname to ``<job>-<index>``; the
``subdomain`` joins them to the Service). Each pod gets its ``TF_CONFIG`` at start from the cluster (env
``RUNWAY_TF_CLUSTER``), its role (``RUNWAY_TF_ROLE``) and its completion index (``JOB_COMPLETION_INDEX``):
``python -m pipeline_components.training.worker pod`` composes it with ``pod_tf_config``. Every pod runs the
pipeline image and mounts the shared artifact claim, where the Trainer wrote the run's spec. Or, with
``jobset=True``, the same roles as the replicated jobs of one ``JobSet`` (where that controller is installed).

Orchestrator side: plain dictionaries, no TensorFlow, no Kubernetes client at import time.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pipeline_components.config import PipelineConfig
from pipeline_components.errors import ConfigError

DATA_MOUNT = "/var/lib/runway"  # where the runway-data claim is mounted, as in infra/k8s and the Airflow values
LABEL = "runway.dev/training"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


def dns_name(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")


def roles_for(strategy: str, *, workers: int, parameter_servers: int) -> dict[str, int]:
    """Role -> replicas. multi_worker_mirrored: worker 0 is the chief; parameter_server: a coordinator (chief)."""
    if strategy == "multi_worker_mirrored":
        return {"worker": workers}
    if strategy == "parameter_server":
        return {"chief": 1, "worker": workers, "ps": parameter_servers}
    raise ConfigError(
        f"strategy {strategy!r} runs in one process (the Trainer's own pod): only multi_worker_mirrored and "
        "parameter_server render as a training cluster"
    )


def cluster_addresses(
    *, run: str, service: str, namespace: str, roles: dict[str, int], port: int, jobset: bool = False
) -> dict[str, list[str]]:
    """The ``cluster`` of TF_CONFIG: each pod's stable name under the headless Service.

    An Indexed Job ``<run>-<role>`` names its pods' hosts ``<run>-<role>-<index>``; a JobSet ``<run>`` with one
    replica of the replicated job ``<role>`` names them ``<run>-<role>-0-<index>``.
    """
    job = "-0" if jobset else ""
    return {
        role: [f"{run}-{role}{job}-{index}.{service}.{namespace}.svc:{port}" for index in range(count)]
        for role, count in roles.items()
    }


def pod_tf_config(env: dict[str, str]) -> dict[str, Any]:
    """TF_CONFIG of one pod from its environment (what the ``pod`` command of the worker module does)."""
    return {
        "cluster": json.loads(env["RUNWAY_TF_CLUSTER"]),
        "task": {"type": env["RUNWAY_TF_ROLE"], "index": int(env["JOB_COMPLETION_INDEX"])},
    }


def _container(
    *, role: str, strategy: str, cluster: dict[str, list[str]], spec_path: str, config: PipelineConfig
) -> dict[str, Any]:
    sizing = config.training.cluster
    cpu, memory = (sizing.ps_cpu, sizing.ps_memory) if role == "ps" else (sizing.cpu, sizing.memory)
    return {
        "name": "tensorflow",
        "image": sizing.image,
        "command": ["python", "-m", "pipeline_components.training.worker", "pod"],
        "env": [
            {"name": "RUNWAY_HOME", "value": DATA_MOUNT},
            {"name": "RUNWAY_TRAINING_SPEC", "value": spec_path},
            {"name": "RUNWAY_TRAINING_STRATEGY", "value": strategy},
            {"name": "RUNWAY_TF_ROLE", "value": role},
            {"name": "RUNWAY_TF_CLUSTER", "value": json.dumps(cluster, sort_keys=True)},
            {
                "name": "JOB_COMPLETION_INDEX",
                "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}},
            },
        ],
        "ports": [{"name": "grpc", "containerPort": sizing.port, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}},
        "volumeMounts": [{"name": "runway-data", "mountPath": DATA_MOUNT}],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 50000, "allowPrivilegeEscalation": False},
    }


def _job_spec(
    *, run: str, role: str, count: int, service: str, container: dict[str, Any], claim: str
) -> dict[str, Any]:
    # Servers (ps; workers under parameter_server) never exit on their own: the chief's Job decides the outcome,
    # and `kubectl delete` of the run's label removes the rest. No retries of a pod: a restarted worker rejoins
    # through BackupAndRestore only when the whole run is started again.
    return {
        "completionMode": "Indexed",
        "completions": count,
        "parallelism": count,
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": {LABEL: run, f"{LABEL}-role": role}},
            "spec": {
                "subdomain": service,
                "restartPolicy": "Never",
                "containers": [container],
                "volumes": [{"name": "runway-data", "persistentVolumeClaim": {"claimName": claim}}],
            },
        },
    }


def render_manifests(
    config: PipelineConfig,
    *,
    strategy: str | None = None,
    workers: int | None = None,
    parameter_servers: int | None = None,
    run: str | None = None,
    spec_path: str | None = None,
    jobset: bool = False,
) -> list[dict[str, Any]]:
    """The Kubernetes objects of one training run of ``config`` (defaults from its ``training:`` section).

    Args:
        strategy/workers/parameter_servers: override the configuration (like the run parameters do).
        run: the run's name (DNS label prefix of every object); default ``<pipeline>-train``.
        spec_path: the run's spec (``fn_args``) on the shared volume, written by the Trainer; default
            ``<RUNWAY_HOME>/training/<pipeline>/spec.json``.
        jobset: one JobSet (jobset.x-k8s.io/v1alpha2) instead of one Job per role.

    Raises:
        ConfigError: a single-process strategy, or settings that do not validate.
    """
    overrides: dict[str, object] = {}
    if strategy is not None:
        overrides["training.strategy"] = strategy
    if workers is not None:
        overrides["training.workers"] = workers
    if parameter_servers is not None:
        overrides["training.parameter_servers"] = parameter_servers
    if overrides:
        config = config.with_overrides(overrides)
    training = config.training
    roles = roles_for(training.strategy, workers=training.workers, parameter_servers=training.parameter_servers)
    run = dns_name(run or f"{config.name}-train")
    namespace = training.cluster.namespace
    service = run  # pods are <run>-<role>-<index>.<run>.<namespace>.svc
    cluster = cluster_addresses(
        run=run, service=service, namespace=namespace, roles=roles, port=training.cluster.port, jobset=jobset
    )
    spec_path = spec_path or f"{DATA_MOUNT}/training/{config.name}/spec.json"
    labels = {LABEL: run, "app.kubernetes.io/part-of": "runway", "app.kubernetes.io/component": "training"}
    headless = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service, "namespace": namespace, "labels": labels},
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": True,  # workers must find each other before any is "ready"
                "selector": {LABEL: run},
                "ports": [{"name": "grpc", "port": training.cluster.port, "targetPort": "grpc"}],
            },
        }
    ]
    objects: list[dict[str, Any]] = []
    jobs = {
        role: _job_spec(
            run=run,
            role=role,
            count=count,
            service=service,
            container=_container(
                role=role, strategy=training.strategy, cluster=cluster, spec_path=spec_path, config=config
            ),
            claim=training.cluster.data_claim,
        )
        for role, count in roles.items()
    }
    if not jobset:
        objects.extend(headless)
        for role, spec in jobs.items():
            objects.append(
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {
                        "name": f"{run}-{role}",
                        "namespace": namespace,
                        "labels": {**labels, f"{LABEL}-role": role},
                    },
                    "spec": spec,
                }
            )
        return objects
    # The JobSet controller creates the headless Service itself (network.subdomain) and names the pods
    # <run>-<role>-0-<index> (see cluster_addresses).
    objects.append(
        {
            "apiVersion": "jobset.x-k8s.io/v1alpha2",
            "kind": "JobSet",
            "metadata": {"name": run, "namespace": namespace, "labels": labels},
            "spec": {
                "network": {"enableDNSHostnames": True, "subdomain": service},
                "failurePolicy": {"maxRestarts": 0},
                "successPolicy": {"operator": "All", "targetReplicatedJobs": [next(iter(roles))]},
                "replicatedJobs": [
                    {"name": role, "replicas": 1, "template": {"spec": spec}} for role, spec in jobs.items()
                ],
            },
        }
    )
    return objects
