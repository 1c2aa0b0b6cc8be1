"""docker-compose.yml and infra/k8s checked against the one description of the topology
(``pipeline_components/deploy/topology.py``), which ``runway deploy`` runs on this machine: the same services with the
same ports, exactly the published ones published (on loopback by default), every secret required from the
environment and never written anywhere, the same executor, the workers on the same Celery queues, the model servers
and the load balancer on the same gRPC and REST ports. Each failure names what differs, so that a change to one shape
(or to the topology) that the others do not follow fails here rather than in production.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_components.deploy import topology
from pipeline_components.deploy.celery import celery_settings
from pipeline_components.deploy.postgres import PostgresServer
from pipeline_components.deploy.redis import RedisServer
from pipeline_components.settings import CHECKOUT
from tests.unit.kustomize_lite import render

COMPOSE = CHECKOUT / "docker-compose.yml"
ENV_EXAMPLE = CHECKOUT / ".env.example"
VALUES = CHECKOUT / "infra" / "k8s" / "airflow" / "values.yaml"
PUBLISH = "${RUNWAY_PUBLISH_ADDRESS:-127.0.0.1}"  # loopback unless the operator says otherwise

# Compose services that are not long-running services of the topology, and why.
COMPOSE_ONLY = {
    "metadata-init": "one-shot: ML Metadata's role and database (runway deploy makes them at up)",
    "airflow-init": "one-shot: airflow db migrate",
    "serving-init": "one-shot: fleet.json and an empty models.config on the shared volume",
    "airflow-cli": "tool (profile tools)",
    "runway": "tool (profile tools)",
    "prometheus": "monitoring of the fleet, not (yet) a service of the topology",
}
# A topology service whose secrets compose hands (partly) to a one-shot helper instead of the server itself.
HELPERS = {"postgres": ("metadata-init",)}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def without_comments(text: str) -> str:
    return re.sub(r"(?m)^\s*#.*$", "", text)


def compose_ports(service: dict[str, Any]) -> tuple[set[int], dict[int, tuple[str, int]]]:
    """(container ports, published host port -> (address, container port)) of a compose service."""
    container = {int(port) for port in service.get("expose", [])}
    published: dict[int, tuple[str, int]] = {}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            address, host, target = entry.get("host_ip", ""), int(entry["published"]), int(entry["target"])
        else:
            # [ADDRESS:][HOST:]CONTAINER[/PROTOCOL]; the address holds ':' itself (${VAR:-default}).
            parts = str(entry).split("/", 1)[0].rsplit(":", 2)
            address = parts[0] if len(parts) == 3 else ""
            target = int(parts[-1])
            host = int(parts[-2]) if len(parts) >= 2 else target
        container.add(target)
        published[host] = (address, target)
    return container, published


# --- services and ports ------------------------------------------------------------------------------------------


def test_every_topology_service_is_a_compose_service_with_its_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    differences = []
    for service in topology.SERVICES:
        if service.name not in services:
            differences.append(f"{service.name} ({service.role} on {service.host}) is not a compose service")
            continue
        container, published = compose_ports(services[service.name])
        if container != set(service.ports.values()):
            differences.append(
                f"{service.name}: compose declares ports {sorted(container)} (expose + ports), "
                f"the topology {dict(service.ports)}"
            )
        wanted = {port: (PUBLISH, service.ports[name]) for name, port in service.published.items()}
        if published != wanted:
            differences.append(
                f"{service.name}: compose publishes {published or 'nothing'}, the topology "
                f"{wanted or 'nothing'} (host port -> (address, container port))"
            )
    assert not differences, "\n".join(differences)


def test_compose_runs_nothing_long_lived_that_the_topology_lacks(compose: dict[str, Any]) -> None:
    extra = {name for name in compose["services"] if name not in {s.name for s in topology.SERVICES}}
    assert extra == set(COMPOSE_ONLY), (
        f"compose-only services {sorted(extra)}; known ones {sorted(COMPOSE_ONLY)}: add a new long-running service "
        "to pipeline_components/deploy/topology.py, or say here why it is not one"
    )
    for name in extra - {"prometheus"}:
        service = compose["services"][name]
        assert service.get("restart") == "no" or service.get("profiles"), f"{name}: {COMPOSE_ONLY[name]}"


def test_the_model_servers_and_the_load_balancer_use_the_topology_ports(compose: dict[str, Any]) -> None:
    servers = topology.by_role("model-server")
    assert len(servers) == len(topology.SERVING)
    for server in servers:
        args = dict(a[2:].split("=", 1) for a in compose["services"][server.name]["command"] if a.startswith("--"))
        assert (int(args["port"]), int(args["rest_api_port"])) == (server.ports["grpc"], server.ports["rest"]), (
            f"{server.name}: TF Serving listens on gRPC {args['port']} and REST {args['rest_api_port']}, "
            f"the topology says {server.ports}"
        )
    objects = render(CHECKOUT / "infra" / "k8s" / "overlays" / "prod")
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "tf-serving"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    k8s_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert k8s_ports == servers[0].ports, f"Kubernetes model servers: {k8s_ports}, topology: {servers[0].ports}"
    (lb,) = topology.by_role("load-balancer")
    (service,) = [o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "tf-serving"]
    exposed = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert exposed == lb.published, (
        f"the Kubernetes load balancer Service exposes {exposed}, the topology {lb.published}"
    )
    for conf in (
        CHECKOUT / "infra" / "serving" / "nginx.conf",
        CHECKOUT / "infra" / "k8s" / "base" / "config" / "nginx.conf",
    ):
        listens = {int(port) for port in re.findall(r"^\s*listen\s+(\d+)", conf.read_text(), flags=re.MULTILINE)}
        assert set(lb.ports.values()) <= listens, f"{conf.relative_to(CHECKOUT)} listens on {sorted(listens)}"


# --- secrets -----------------------------------------------------------------------------------------------------


def test_every_secret_is_required_by_compose_and_listed_in_env_example() -> None:
    text = without_comments(COMPOSE.read_text())
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#")
    )
    for secret in topology.SECRETS:
        assert f"${{{secret.env}:?" in text, f"{secret.name}: docker-compose.yml must require ${{{secret.env}:?...}}"
        assert secret.env in example, f"{secret.name}: .env.example lacks {secret.env}="
        assert example[secret.env] == "", f".env.example gives {secret.env} a value"


def secret_sources(compose: dict[str, Any], name: str) -> set[str]:
    """The environment variables whose values reach compose service ``name``: required in its environment, or the
    source of a compose secret it mounts."""
    service = compose["services"][name]
    environment = " ".join(str(value) for value in (service.get("environment") or {}).values())
    found = set(re.findall(r"(?<!\$)\$\{(\w+):\?", environment))
    for entry in service.get("secrets", []):
        source = entry if isinstance(entry, str) else entry["source"]
        found |= {compose["secrets"][source]["environment"]}
    return found


def test_each_service_gets_the_secrets_the_topology_gives_it(compose: dict[str, Any]) -> None:
    missing = []
    for service in topology.SERVICES:
        reach = set().union(*(secret_sources(compose, n) for n in (service.name, *HELPERS.get(service.name, ()))))
        for name in service.secrets:
            if topology.secret(name).env not in reach:
                missing.append(f"{service.name} reads {name}, but compose gives it no {topology.secret(name).env}")
    assert not missing, "\n".join(missing)


# What a committed secret looks like: a generated value of the topology's kinds (hex24, hex32, fernet), a password
# in a URL, a default login, or a literal where a setting takes a password (`KEY: value`, `KEY=value`, a kubectl
# `--from-literal=password=...`; the value ends its line or its argument, so prose such as "secret: the ..." passes).
_VARIABLE = r"""(?:["']?(?:\$|\{password\}|PASSWORD\b))"""  # $VAR, ${VAR...}, $(cmd), a template or placeholder
_END = r"""(?=[ \t]*(?:$|\\$|--|#))"""
SUSPICIOUS = {
    # 48 or 64 hex digits, not a pinned sha256 digest (pip's --hash=sha256:..., an image's @sha256:...).
    "a hex key": re.compile(r"(?<!sha256:)\b(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{48})\b"),
    "a fernet key": re.compile(r"(?<![\w-])[A-Za-z0-9_-]{43}=(?![\w=])"),
    "a password in a URL": re.compile(rf"\b[a-z][a-z0-9+]*://[^\s:/@'\"]*:(?!{_VARIABLE})[^\s@'\"]+@"),
    "a default login": re.compile(r"\b(?:admin|airflow|postgres|redis|root):(?:admin|airflow|postgres|redis|root)\b"),
    "a literal password": re.compile(
        rf"(?i)(?<![\w{{])\w*(?:password|passwd|secret|token|fernet[-_]?key|secret[-_]?key)[\"']?[:=][ \t]*"
        rf"(?!{_VARIABLE})(?!(?:~|null|/|\||>|\{{|\[))(?:\"[^\"\n]+\"|'[^'\n]+'|[^\s,}}\"']+){_END}",
        flags=re.MULTILINE,
    ),
    "a literal requirepass": re.compile(rf"(?i)\brequirepass[ \t]+(?!{_VARIABLE})\S+"),
}


def suspicious(text: str) -> list[str]:
    """What in ``text`` looks like a committed secret, as 'kind: match'."""
    return [f"{kind}: {match.group(0)!r}" for kind, pattern in SUSPICIOUS.items() for match in pattern.finditer(text)]


def committed_files() -> list[Path]:
    infra = [path for path in sorted((CHECKOUT / "infra").rglob("*")) if path.is_file()]
    return [COMPOSE, ENV_EXAMPLE, *infra]


def test_no_secret_value_or_default_password_is_committed() -> None:
    found = []
    for path in committed_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        found += [f"{path.relative_to(CHECKOUT)}: {item}" for item in suspicious(text)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("POSTGRES_PASSWORD: airflow", id="compose-env"),
        pytest.param("AIRFLOW_ADMIN_PASSWORD=hunter2", id="env-file"),
        pytest.param("  password: s3cret", id="helm-value"),
        pytest.param("--from-literal=password=hunter2", id="kubectl"),
        pytest.param("AIRFLOW__CELERY__BROKER_URL: redis://:hunter2@redis:6379/0", id="broker-url"),
        pytest.param("postgresql+psycopg2://airflow:airflow@postgres:5432/airflow", id="default-login"),
        pytest.param("requirepass hunter2", id="requirepass"),
        pytest.param("AIRFLOW__API__SECRET_KEY: " + "3f" * 32, id="hex"),
        pytest.param("fernet: " + "A" * 43 + "=", id="fernet"),
        pytest.param("# e.g. redis://:hunter2@redis:6379/0", id="url-in-a-comment"),
    ],
)
def test_the_secret_scan_finds_committed_values(line: str) -> None:
    assert suspicious(line), f"not flagged: {line}"


@pytest.mark.parametrize(
    "line",
    [
        "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (see .env.example)}",
        "REDIS_PASSWORD=",
        "url 'redis://:{password}@redis:6379/0' /run/secrets/redis-password",
        "--from-literal=connection='postgresql+psycopg2://USER:PASSWORD@HOST:5432/airflow'",
        '--from-literal=password="$REDIS_PASSWORD"',
        "requirepass $$password",
        "passwordSecretName: runway-airflow-redis-password",
        "RUNWAY_METADATA_PASSWORD_FILE: /run/secrets/mlmd-db-password",
        "  secret:",
        "# Not a secret: the address the published ports listen on",
        "--hash=sha256:" + "0d3f" * 16,
        "ALTER ROLE mlmd PASSWORD :'mlmd_password';",
    ],
)
def test_the_secret_scan_lets_references_pass(line: str) -> None:
    assert suspicious(line) == []


# --- executor and queues -----------------------------------------------------------------------------------------


def airflow_services(compose: dict[str, Any]) -> list[str]:
    return [name for name, service in compose["services"].items() if service["image"].startswith("runway:")]


def test_compose_and_the_helm_values_use_the_topologys_executor(
    compose: dict[str, Any], values: dict[str, Any]
) -> None:
    executors = {
        name: compose["services"][name]["environment"]["AIRFLOW__CORE__EXECUTOR"] for name in airflow_services(compose)
    }
    assert set(executors.values()) == {topology.EXECUTOR}, f"compose: {executors}; topology: {topology.EXECUTOR}"
    assert values["executor"] == topology.EXECUTOR, f"Helm values: {values['executor']}; topology: {topology.EXECUTOR}"


def test_compose_celery_settings_are_the_ones_runway_deploy_uses(compose: dict[str, Any]) -> None:
    """The same broker, result backend, visibility timeout, concurrency and default queue as deploy/celery.py, built
    for compose's service names and secret files, and each worker started with the same command."""
    settings = celery_settings(
        redis=RedisServer(
            host="redis", port=topology.REDIS_PORT, pid=0, password_file=Path("/run/secrets/redis-password")
        ),
        postgres=PostgresServer(
            host="postgres",
            port=topology.POSTGRES_PORT,
            user="airflow",
            password_file=Path("/run/secrets/postgres-password"),
        ),
        database="airflow",
        worker_hosts=topology.WORKERS,
        python=Path("python"),  # the image's orchestrator environment is first on PATH
    )
    # Compose passes Airflow's database URL itself, with the password required from the environment
    # (tests/unit/test_infra_compose.py checks it); a plain setting wins over its _CMD form.
    expected = {k: v for k, v in settings.env.items() if k != "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD"}
    for name in airflow_services(compose):
        environment = compose["services"][name]["environment"]
        differs = {
            key: (environment.get(key), value) for key, value in expected.items() if environment.get(key) != value
        }
        assert differs == {}, f"{name}: (compose, runway deploy) {differs}"
    for worker in topology.by_role("airflow-worker"):
        command = compose["services"][worker.name]["command"]
        assert ["airflow", *command] == settings.worker_command(worker.host), f"{worker.name}: {command}"


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_workers_consume_the_topology_queues(compose: dict[str, Any], values: dict[str, Any]) -> None:
    workers = topology.by_role("airflow-worker")
    assert [w.host for w in workers] == list(topology.WORKERS)
    for worker in workers:
        queues = option(compose["services"][worker.name]["command"], "--queues").split(",")
        assert queues == list(worker.queues), f"compose {worker.name} consumes {queues}, the topology {worker.queues}"
    # Kubernetes: one StatefulSet; pod airflow-worker-N's shell works out its queues from its ordinal.
    assert values["workers"]["replicas"] == len(workers), "one Celery worker pod per worker host"
    script = values["workers"]["args"][-1]
    assert script.startswith("exec airflow celery worker ")
    for ordinal, worker in enumerate(workers):
        printed = subprocess.run(
            ["bash", "-c", script.replace("exec airflow celery worker", "printf '%s\\n'", 1)],
            env={"HOSTNAME": f"airflow-worker-{ordinal}", "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert option(printed, "--queues").split(",") == list(worker.queues), f"pod airflow-worker-{ordinal}: {printed}"
        assert option(printed, "--celery-hostname") == option(
            compose["services"][worker.name]["command"], "--celery-hostname"
        )
