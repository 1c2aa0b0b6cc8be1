"""``runway deploy up|status|down``: the production topology (``deploy/topology.py``) brought up on this machine,
each host a network namespace (``deploy/hosts.py``).

- control: PostgreSQL (databases ``airflow`` and ``mlmd``), Redis, Airflow's api-server, scheduler, dag-processor
  and triggerer, all listening on the control host's address;
- worker-1, worker-2: an ``airflow celery worker`` each (queues ``default`` and its own host's), running TFX nodes in
  its own warm runtime;
- serving-1..3: a model server each, lb: nginx in front of them (runway's fleet, its watchdog restarting whatever
  dies, ``fleet/local.py`` with placements);
- the UI and REST API, and the load balancer, published on this machine's loopback only (``deploy/publish.py``).

The deployment lives under ``<RUNWAY_HOME>/deploy``: its own runway home (pipelines, model store, fleet, Airflow's
home and logs), its secrets (``secrets/``, 0600), the databases' folders, and each process's pid file and log
(``instances/``, ``logs/``). Prepared data is read from the embedded home's data folder (``make run`` prepares it).
``up`` starts what is not running and keeps what is (twice is harmless); ``down`` stops every process of every host,
then removes the hosts, and checks that nothing is left.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline_components.deploy import airflow as components
from pipeline_components.deploy import firewall
from pipeline_components.deploy.auth import auth_env
from pipeline_components.deploy.celery import CelerySettings, celery_settings
from pipeline_components.deploy.hosts import HostPlan, Hosts
from pipeline_components.deploy.postgres import SUPERUSER, LocalPostgres, PostgresServer
from pipeline_components.deploy.processes import AIRFLOW_PROCESSES, DeploymentError, DeploymentProcesses, worker_name
from pipeline_components.deploy.publish import PUBLISH_ADDRESS, Published, start_publisher
from pipeline_components.deploy.redis import LocalRedis
from pipeline_components.deploy.secrets import SecretFiles
from pipeline_components.deploy.topology import (
    API_PORT,
    CONTROL,
    GRPC_PORT,
    LB,
    POSTGRES_PORT,
    REDIS_PORT,
    REST_PORT,
    SECRETS,
    SERVING,
    WORKERS,
)
from pipeline_components.durable import atomic_write
from pipeline_components.fleet.local import LocalFleet
from pipeline_components.fleet.spec import FleetSpec, Placement
from pipeline_components.ports import port_free
from pipeline_components.processes import command_line, pid_alive, stop_pid
from pipeline_components.settings import PostgresMetadata, Settings

AIRFLOW_DATABASE = "airflow"
METADATA_DATABASE = "mlmd"
WORKER_CONCURRENCY = 2
PUBLISH = "publish"
OWN_SECRETS = ("fernet-key", "api-secret-key", "jwt-secret", "admin-password")
SUPERVISED = (*AIRFLOW_PROCESSES, PUBLISH)  # what the deployment's watchdog restarts (deploy/processes.py)
__all__ = ["Deployment", "DeploymentError", "deployment_settings"]


def deployment_settings(settings: Settings, root: Path, postgres: PostgresServer | None) -> Settings:
    """The runway settings of the deployment under ``root``: a home of its own, the embedded home's prepared data
    and pipeline configs, and ML Metadata in the deployment's PostgreSQL (database ``mlmd``)."""
    metadata = None
    if postgres is not None:
        metadata = PostgresMetadata.from_url(postgres.url(METADATA_DATABASE), postgres.password_file)
    return replace(
        settings,
        home=root,
        pipelines_dir=root / "pipelines",
        metadata_dir=root / "metadata",
        ir_dir=root / "ir",
        model_store=root / "models",
        metadata_postgres=metadata,
    )


class Deployment:
    """The deployment of one ``RUNWAY_HOME`` (under ``<home>/deploy``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        say: Callable[[str], None] = print,
        ui_port: int = API_PORT,
        rest_port: int = REST_PORT,
        grpc_port: int = GRPC_PORT,
        subnet: str | None = None,
    ) -> None:
        self.root = settings.home / "deploy"
        self.say = say
        self.hosts = Hosts(HostPlan.for_home(self.root, subnet=subnet))
        self.plan = self.hosts.plan
        self.processes = DeploymentProcesses(self.root, self.hosts, say=say)
        self.secrets = SecretFiles(self.root / "secrets")
        self.published_ports = {"ui": ui_port, "rest": rest_port, "grpc": grpc_port}
        control = self.address(CONTROL)
        enter = self.hosts.command(CONTROL, [])
        self.postgres = LocalPostgres(
            root=self.root / "postgres", host=control, port=POSTGRES_PORT, netns=enter, clients=[str(self.plan.subnet)]
        )
        self.redis = LocalRedis(root=self.root / "redis", host=control, port=REDIS_PORT, netns=enter)
        self._base = settings

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        *,
        say: Callable[[str], None] = print,
        ui: int | None = None,
        rest: int | None = None,
        grpc: int | None = None,
        subnet: str | None = None,
    ) -> Deployment:
        """The deployment of ``settings.home``, with the published ports and subnet of its last ``up`` unless
        given (``status``, ``down`` and ``run`` find it again without flags)."""
        state_file = settings.home / "deploy" / "deployment.json"
        known: dict[str, Any] = json.loads(state_file.read_text()) if state_file.is_file() else {}
        ports = {name: int(value.rsplit(":", 1)[1]) for name, value in known.get("published", {}).items()}
        return cls(
            settings,
            say=say,
            ui_port=ui or ports.get("ui", API_PORT),
            rest_port=rest or ports.get("rest", REST_PORT),
            grpc_port=grpc or ports.get("grpc", GRPC_PORT),
            subnet=subnet or known.get("subnet"),
        )

    def address(self, host: str) -> str:
        return self.plan.host(host).address

    @property
    def ui_url(self) -> str:
        """The Airflow UI and REST API, as published on loopback."""
        return f"http://{PUBLISH_ADDRESS}:{self.published_ports['ui']}"

    @property
    def log_folder(self) -> Path:
        """Airflow's task logs (one folder per DAG, run and task), on the shared filesystem."""
        return self.root / "airflow" / "logs"

    @property
    def metadata_url(self) -> str:
        return f"postgresql://{self.address(CONTROL)}:{POSTGRES_PORT}/{METADATA_DATABASE}"

    @property
    def settings(self) -> Settings:
        """The deployment's runway settings, ML Metadata on its PostgreSQL. Derived from the topology (the control
        host's address and PostgreSQL's port), not asked of the server: no ``pg_ctl status`` at every use."""
        server = PostgresServer(
            host=self.address(CONTROL), port=POSTGRES_PORT, user=SUPERUSER, password_file=self.postgres.password_file
        )
        return deployment_settings(self._base, self.root, server)

    @property
    def state_file(self) -> Path:
        return self.root / "deployment.json"

    # -- up ---------------------------------------------------------------------------------------------------------

    def up(self) -> None:
        """Bring up every host and service that is not running; keep the others (``deploy/health.py`` reports).

        Raises:
            DeploymentError: a service did not start (its log is named, with its last lines).
            NetworkNamespaceError: hosts cannot be made here (not root, no iproute2).
        """
        started = time.monotonic()
        self._check_published_ports()
        self.hosts.up()
        self.say(f"hosts: {len(self.plan.hosts)} network namespaces on {self.plan.subnet} (bridge {self.plan.bridge})")
        # PostgreSQL's and Redis's passwords are made by their servers, in their own folders (postgres/, redis/).
        made = self.secrets.ensure(tuple(s for s in SECRETS if s.name in OWN_SECRETS))
        if made:
            self.say(f"secrets: generated {', '.join(made)} in {self.secrets.folder} (0600)")
        postgres = self.postgres.start()
        self.postgres.create_database(AIRFLOW_DATABASE)
        self.postgres.create_database(METADATA_DATABASE)
        self.say(f"control: PostgreSQL on {postgres.host}:{postgres.port} (databases airflow, mlmd)")
        redis = self.redis.start()
        self.say(f"control: Redis on {redis.host}:{redis.port}")
        celery = self._celery()
        env = self._env(celery)
        control = self.address(CONTROL)
        self.processes.migrate(env, CONTROL)
        for name in components.CONTROL_COMPONENTS:
            self.processes.start(name, CONTROL, components.component_argv(name, control_address=control), env)
        self.processes.wait_api(f"http://{control}:{API_PORT}/api/v2/monitor/health")
        self.say(f"control: Airflow api-server healthy at http://{control}:{API_PORT}")
        for host in WORKERS:
            worker = components.worker_env(
                env, host=host, address=self.address(host), runtime_dir=Path("/run") / self.plan.prefix / host
            )
            argv = components.worker_argv(celery, host, concurrency=WORKER_CONCURRENCY)
            self.processes.start(worker_name(host), host, argv, worker)
        self.processes.wait_workers()
        self.say(f"workers: {', '.join(WORKERS)} ready (Celery, queues default + their own)")
        self._firewall()
        state = LocalFleet(self.settings, say=self.say).up(self._fleet_spec())
        self.say(f"serving: {len(state.instances)} model servers behind nginx at {state.rest_url}")
        self._publish()
        atomic_write(self.state_file, json.dumps(self._describe(), indent=1) + "\n")
        self.processes.supervise(SUPERVISED, self._base.as_env())
        self.say(
            f"deployment up in {time.monotonic() - started:.0f} s: Airflow UI and REST API on "
            f"http://{PUBLISH_ADDRESS}:{self.published_ports['ui']}, REST predictions on "
            f"http://{PUBLISH_ADDRESS}:{self.published_ports['rest']}, gRPC on "
            f"{PUBLISH_ADDRESS}:{self.published_ports['grpc']} (users and passwords: `runway deploy users`)"
        )

    def _check_published_ports(self) -> None:
        pid = self.processes.pid(PUBLISH)
        if pid_alive(pid):
            return
        taken = [
            f"{name} {port}" for name, port in self.published_ports.items() if not port_free(PUBLISH_ADDRESS, port)
        ]
        if taken:
            raise DeploymentError(
                f"port(s) {', '.join(taken)} on {PUBLISH_ADDRESS} are taken (`runway fleet down` or `runway airflow` "
                "of the embedded stack?): stop what holds them, or publish elsewhere: "
                "runway deploy up --ui-port/--rest-port/--grpc-port"
            )

    def _celery(self) -> CelerySettings:
        postgres, redis = self.postgres.server(), self.redis.status()
        if postgres is None or redis is None:
            raise DeploymentError("PostgreSQL and Redis must run before Airflow's settings can be made")
        return celery_settings(
            redis=redis,
            postgres=postgres,
            database=AIRFLOW_DATABASE,
            worker_hosts=WORKERS,
            worker_concurrency=WORKER_CONCURRENCY,
            execution_api_url=f"http://{self.address(CONTROL)}:{API_PORT}/execution/",
        )

    def _env(self, celery: CelerySettings) -> dict[str, str]:
        return components.component_env(
            self.settings,
            celery=celery,
            secrets=self.secrets,
            control_address=self.address(CONTROL),
            auth=auth_env(self.root),
        )

    def _fleet_spec(self) -> FleetSpec:
        def place(host: str) -> Placement:
            return Placement(address=self.address(host), enter=tuple(self.hosts.command(host, [])))

        return FleetSpec(
            instances=len(SERVING),
            rest_port=REST_PORT,
            grpc_port=GRPC_PORT,
            instance_ports=[(GRPC_PORT, REST_PORT)] * len(SERVING),
            instance_hosts=tuple(place(host) for host in SERVING),
            lb_host=place(LB),
        )

    def _firewall(self) -> None:
        """Only the load balancer, the control and worker hosts and this machine reach the model servers."""
        allowed = [self.address(host) for host in (LB, CONTROL, *WORKERS)] + [self.plan.gateway]
        rules = firewall.serving_rules(ports=(GRPC_PORT, REST_PORT), allowed=allowed)
        for host in SERVING:
            firewall.apply(self.hosts.command(host, []), rules)
        self.say("serving hosts: model server ports open to lb, control, workers and this machine only")

    def _publish(self) -> None:
        if pid_alive(self.processes.pid(PUBLISH)):
            return
        lb, control = self.address(LB), self.address(CONTROL)
        published = [
            Published(name="airflow", port=self.published_ports["ui"], target=f"{control}:{API_PORT}"),
            Published(name="rest", port=self.published_ports["rest"], target=f"{lb}:{REST_PORT}"),
            Published(name="grpc", port=self.published_ports["grpc"], target=f"{lb}:{GRPC_PORT}", grpc=True),
        ]
        start_publisher(self.processes.records, PUBLISH, self.root / "publish", published)
        self.say(f"published on {PUBLISH_ADDRESS}: " + ", ".join(f"{p.name} {p.port} -> {p.target}" for p in published))

    # -- status and down --------------------------------------------------------------------------------------------

    def _describe(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "subnet": str(self.plan.subnet),
            "hosts": {host.name: host.address for host in self.plan.hosts},
            "published": {name: f"{PUBLISH_ADDRESS}:{port}" for name, port in self.published_ports.items()},
        }

    def down(self) -> list[str]:
        """Stop every process of the deployment, remove its hosts, and check that nothing is left. Returns what
        was stopped. Data (databases, model store, artifacts, secrets) is kept."""
        stopped: list[str] = []
        if self.processes.stop_watchdog():  # first: it would restart what is stopped next
            stopped.append("watchdog (airflow)")
        stopped += self.processes.stop([PUBLISH])
        fleet = LocalFleet(self.settings, say=lambda line: None)
        if fleet.state() is not None:
            stopped += fleet.down()
        stopped += self.processes.stop([*(worker_name(h) for h in WORKERS), *reversed(components.CONTROL_COMPONENTS)])
        if self.redis.status() is not None:
            self.redis.stop()
            stopped.append("redis")
        if self.postgres.running():
            self.postgres.stop()
            stopped.append("postgres")
        stopped += self._stop_leftovers()
        self.hosts.down()
        return stopped

    def _stop_leftovers(self) -> list[str]:
        """Stop any process still inside a host (a task's runtime, a node): namespaces must be empty to go."""
        leftovers = []
        for host in self.plan.hosts:
            for pid in self.hosts.pids(host.name):
                leftovers.append(f"{host.name}: pid {pid} ({command_line(pid)[:60]})")
                stop_pid(pid, timeout_s=10.0)
        return leftovers
