"""The production topology, described once: which service runs on which host, on which ports, with which
secrets. ``runway deploy`` (network namespaces on one machine) starts exactly these services; ``docker-compose.yml``
and ``infra/k8s`` are checked against the same list (``tests/unit/deploy/test_topology.py``), so that what runs
here is what the compose file and the manifests describe.

A host is a machine of the team's: here a network namespace (``deploy/hosts.py``), in compose one network, on
Kubernetes a node pool. Names follow docker-compose.yml's service names.

Secrets are never values here, only names: each is generated at the deployment's first ``up`` into a file readable
by its owner only (``deploy/secrets.py``); compose requires it from ``.env`` (``${VAR:?}``); the Helm values name a
Kubernetes Secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline_components.errors import ConfigError

CONTROL = "control"
WORKERS = ("worker-1", "worker-2")
SERVING = ("serving-1", "serving-2", "serving-3")
LB = "lb"
CLIENT = "client"  # a downstream application's host: runs nothing of the deployment
HOSTS = (CONTROL, *WORKERS, *SERVING, LB, CLIENT)

EXECUTOR = "CeleryExecutor"
SHARED_QUEUE = "default"  # every worker consumes it; each worker also consumes its own host's queue


@dataclass(frozen=True, kw_only=True)
class Secret:
    """A secret of the deployment: its file name under the deployment's secrets folder, the environment variable
    compose takes it from, and the kind of value generated for it."""

    name: str
    env: str
    kind: str  # "hex32" (64 hex digits), "hex24", "fernet" (urlsafe base64 of 32 bytes), "password"


SECRETS = (
    Secret(name="postgres-password", env="POSTGRES_PASSWORD", kind="hex24"),
    Secret(name="mlmd-db-password", env="MLMD_DB_PASSWORD", kind="hex24"),
    Secret(name="redis-password", env="REDIS_PASSWORD", kind="hex24"),
    Secret(name="fernet-key", env="AIRFLOW_FERNET_KEY", kind="fernet"),
    Secret(name="api-secret-key", env="AIRFLOW_API_SECRET_KEY", kind="hex32"),
    Secret(name="jwt-secret", env="AIRFLOW_JWT_SECRET", kind="hex32"),
    Secret(name="admin-password", env="AIRFLOW_ADMIN_PASSWORD", kind="password"),
)
AIRFLOW_SECRETS = ("fernet-key", "api-secret-key", "jwt-secret", "postgres-password", "redis-password")


@dataclass(frozen=True, kw_only=True)
class Service:
    """One long-running service of the topology.

    Attributes:
        name: compose's service name (``airflow-worker-1``, ``tf-serving-2``, ...).
        host: the host it runs on.
        role: what it is: ``postgres``, ``redis``, ``airflow-api-server``, ``airflow-scheduler``,
            ``airflow-dag-processor``, ``airflow-triggerer``, ``airflow-worker``, ``model-server``, ``load-balancer``.
        ports: name -> port it listens on, on its host's address.
        published: name -> port published on the machine's loopback (compose: ``127.0.0.1:PORT``), the only way in
            from outside the topology's network.
        secrets: the secrets (``Secret.name``) it reads.
        queues: Celery queues it consumes (workers only).
    """

    name: str
    host: str
    role: str
    ports: dict[str, int] = field(default_factory=dict)
    published: dict[str, int] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()


POSTGRES_PORT = 5432
REDIS_PORT = 6379
API_PORT = 8080
GRPC_PORT = 8500
REST_PORT = 8501

SERVICES = (
    Service(
        name="postgres",
        host=CONTROL,
        role="postgres",
        ports={"postgres": POSTGRES_PORT},
        secrets=("postgres-password", "mlmd-db-password"),
    ),
    Service(name="redis", host=CONTROL, role="redis", ports={"redis": REDIS_PORT}, secrets=("redis-password",)),
    Service(
        name="airflow-apiserver",
        host=CONTROL,
        role="airflow-api-server",
        ports={"http": API_PORT},
        published={"http": API_PORT},
        secrets=(*AIRFLOW_SECRETS, "admin-password"),
    ),
    Service(name="airflow-scheduler", host=CONTROL, role="airflow-scheduler", secrets=AIRFLOW_SECRETS),
    Service(name="airflow-dag-processor", host=CONTROL, role="airflow-dag-processor", secrets=AIRFLOW_SECRETS),
    Service(name="airflow-triggerer", host=CONTROL, role="airflow-triggerer", secrets=AIRFLOW_SECRETS),
    *(
        Service(
            name=f"airflow-{host}",
            host=host,
            role="airflow-worker",
            secrets=(*AIRFLOW_SECRETS, "mlmd-db-password"),
            queues=(SHARED_QUEUE, host),
        )
        for host in WORKERS
    ),
    *(
        Service(
            name=f"tf-serving-{index}",
            host=host,
            role="model-server",
            ports={"grpc": GRPC_PORT, "rest": REST_PORT},
        )
        for index, host in enumerate(SERVING, start=1)
    ),
    Service(
        name="serving-lb",
        host=LB,
        role="load-balancer",
        ports={"grpc": GRPC_PORT, "rest": REST_PORT},
        published={"grpc": GRPC_PORT, "rest": REST_PORT},
    ),
)


def service(name: str) -> Service:
    """The service called ``name``.

    Raises:
        ConfigError: no service has that name.
    """
    for candidate in SERVICES:
        if candidate.name == name:
            return candidate
    raise ConfigError(f"no service {name!r} in the topology; services: {', '.join(s.name for s in SERVICES)}")


def on_host(host: str) -> tuple[Service, ...]:
    """The services of one host, in start order."""
    return tuple(s for s in SERVICES if s.host == host)


def by_role(role: str) -> tuple[Service, ...]:
    """The services of one role, in order (``model-server``: tf-serving-1, -2, -3)."""
    return tuple(s for s in SERVICES if s.role == role)


def secret(name: str) -> Secret:
    """The secret called ``name``.

    Raises:
        ConfigError: no secret has that name.
    """
    for candidate in SECRETS:
        if candidate.name == name:
            return candidate
    raise ConfigError(f"no secret {name!r} in the topology; secrets: {', '.join(s.name for s in SECRETS)}")
