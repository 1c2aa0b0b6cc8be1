"""Static checks of docker-compose.yml and the serving configs it mounts (no Docker engine runs here or in CI).

The file is validated against the Compose Specification's JSON schema (vendored in infra/schemas/), then
cross-checked: everything a service uses is declared, ports do not clash, the model servers read the shared model
store read-only with the model config file the rollout writes, nginx balances exactly the three servers, and
Prometheus scrapes each of them where their monitoring config serves metrics.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipeline_components.fleet import FleetState, fleet_state_path, model_config_path
from pipeline_components.settings import CHECKOUT
from tests.helpers import require_nginx
from tests.unit.fleet.nginx_conf import directive, find, http_block, nginx_test, public, runnable

COMPOSE = CHECKOUT / "docker-compose.yml"
SERVERS = ("tf-serving-1", "tf-serving-2", "tf-serving-3")
CONTAINER_HOME = Path("/var/lib/runway")
NGINX_CONF = CHECKOUT / "infra" / "serving" / "nginx.conf"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads((CHECKOUT / "infra" / "schemas" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    return sorted(f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document))


def flags(service: dict[str, Any]) -> dict[str, str]:
    """``--name=value`` arguments of a service's command."""
    return dict(arg[2:].split("=", 1) for arg in service.get("command", []) if arg.startswith("--") and "=" in arg)


def volume_mounts(service: dict[str, Any]) -> list[dict[str, Any]]:
    """A service's volumes in the long syntax (short ``source:target[:ro]`` strings converted)."""
    mounts = []
    for entry in service.get("volumes", []):
        if isinstance(entry, str):
            source, target, *mode = entry.split(":")
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            mounts.append({"type": kind, "source": source, "target": target, "read_only": mode == ["ro"]})
        else:
            mounts.append(entry)
    return mounts


def config_mounts(service: dict[str, Any]) -> dict[str, str]:
    """target path -> config name."""
    return {
        (entry if isinstance(entry, str) else entry.get("target", f"/{entry['source']}")): (
            entry if isinstance(entry, str) else entry["source"]
        )
        for entry in service.get("configs", [])
    }


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_schema_check_catches_a_misspelt_key(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["tf-serving-1"]["helthcheck"] = broken["services"]["tf-serving-1"].pop("healthcheck")
    assert any("helthcheck" in error for error in schema_errors(broken))


def test_everything_a_service_uses_is_declared(compose: dict[str, Any]) -> None:
    services = compose["services"]
    volumes, configs, networks = (set(compose.get(key) or {}) for key in ("volumes", "configs", "networks"))
    for name, spec in compose.get("configs", {}).items():
        assert (CHECKOUT / spec["file"]).is_file(), f"config {name}: {spec['file']} does not exist"
    for name, service in services.items():
        for mount in volume_mounts(service):
            if mount["type"] == "volume":
                assert mount["source"] in volumes, f"{name}: volume {mount['source']} is not declared"
        for config in config_mounts(service).values():
            assert config in configs, f"{name}: config {config} is not declared"
        for network in service.get("networks", []):
            assert network in networks, f"{name}: network {network} is not declared"
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on {dependency}, which is not a service"
            if condition["condition"] == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", f"{dependency} must be a one-shot service"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no health check to wait for"


def test_published_ports_are_unique(compose: dict[str, Any]) -> None:
    published: dict[str, str] = {}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host = str(port).split(":")[-2] if ":" in str(port) else str(port)
            assert host not in published, f"host port {host}: {published.get(host)} and {name}"
            published[host] = name
    assert {"8080", "8500", "8501", "9090"} <= set(published)


def test_long_running_services_have_health_checks(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if service.get("restart") != "no" and not service.get("profiles"):
            assert "healthcheck" in service, f"{name} runs for good but has no health check"


def test_images_are_pinned_and_servers_match_kubernetes(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and "/" not in tag, f"{name}: pin the image tag ({image})"
    deployment = yaml.safe_load((CHECKOUT / "infra" / "k8s" / "base" / "serving-deployment.yaml").read_text())
    k8s_container = deployment["spec"]["template"]["spec"]["containers"][0]
    for server in SERVERS:
        service = compose["services"][server]
        assert service["image"] == k8s_container["image"]
        assert service["command"] == k8s_container["args"], "the compose and Kubernetes servers take the same flags"
        pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
        assert service["user"] == f"{pod_security['runAsUser']}:{pod_security['runAsGroup']}" == "50000:0"


def test_model_servers_read_the_shared_store_read_only(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert sorted(name for name in services if name.startswith("tf-serving-")) == list(SERVERS)
    for server in SERVERS:
        service = services[server]
        mounts = volume_mounts(service)
        store = [m for m in mounts if m.get("source") == "runway-data"]
        assert store == [{"type": "volume", "source": "runway-data", "target": str(CONTAINER_HOME), "read_only": True}]
        assert all(m.get("read_only") for m in mounts), f"{server} mounts something writable"
        args = flags(service)
        assert args["model_config_file"] == str(model_config_path(CONTAINER_HOME / "models"))
        assert args["model_config_file_poll_wait_seconds"] == "0"
        assert args["port"] == "8500" and args["rest_api_port"] == "8501"
        assert args["enable_batching"] == "true"
        configs = config_mounts(service)
        sources = compose["configs"]
        assert sources[configs[args["batching_parameters_file"]]]["file"] == "infra/serving/batching.config"
        assert sources[configs[args["monitoring_config_file"]]]["file"] == "infra/serving/monitoring.config"
        assert service["depends_on"] == {"serving-init": {"condition": "service_completed_successfully"}}
        assert "8500" in service["expose"] and "8501" in service["expose"] and "ports" not in service


def test_serving_init_prepares_the_store_and_the_fleet_description(compose: dict[str, Any]) -> None:
    init = compose["services"]["serving-init"]
    assert init["build"]["dockerfile"] == "infra/pipeline/Dockerfile"
    assert {"type": "volume", "source": "runway-data", "target": str(CONTAINER_HOME), "read_only": False} in (
        volume_mounts(init)
    )
    script = init["command"][-1]
    assert f"cp /etc/runway/fleet.compose.json {fleet_state_path(CONTAINER_HOME)}" in script
    assert f"test -f {model_config_path(CONTAINER_HOME / 'models')} ||" in script, "never overwrite the rollout's file"
    for name, service in compose["services"].items():
        if name.startswith("airflow-"):
            assert service["environment"]["RUNWAY_HOME"] == str(CONTAINER_HOME), "the rollout reads fleet.json there"


def test_serving_init_script_leaves_the_rollouts_config_alone(compose: dict[str, Any], tmp_path: Path) -> None:
    """Run serving-init's shell script on a folder standing in for the volume: twice, as two `up`s would."""
    from pipeline_components.fleet import read_fleet_state
    from pipeline_components.fleet.store import ModelStore

    sh = shutil.which("sh")
    if sh is None:
        pytest.skip("no POSIX shell")
    script = compose["services"]["serving-init"]["command"][-1]
    script = script.replace(str(CONTAINER_HOME), str(tmp_path)).replace(
        "/etc/runway/fleet.compose.json", str(CHECKOUT / "infra" / "serving" / "fleet.compose.json")
    )
    subprocess.run([sh, "-c", script], check=True)
    store = ModelStore(tmp_path / "models")
    assert store.read_config() == {}, "the empty config must be one the rollout can read"
    state = read_fleet_state(tmp_path)
    assert state is not None and [i.name for i in state.instances] == list(SERVERS)
    written = 'model_config_list {\n  config {\n    name: "flights_delay"\n  }\n}\n'
    store.config_path.write_text(written)
    subprocess.run([sh, "-c", script], check=True)
    assert store.config_path.read_text() == written


def test_fleet_description_names_the_compose_fleet(compose: dict[str, Any]) -> None:
    state = FleetState.from_json((CHECKOUT / "infra" / "serving" / "fleet.compose.json").read_text())
    assert state.kind == "compose"
    assert [i.name for i in state.instances] == list(SERVERS)
    for instance in state.instances:
        assert instance.grpc_target == f"{instance.name}:8500"
        assert instance.rest_url == f"http://{instance.name}:8501"
        assert instance.store_path == str(CONTAINER_HOME / "models")
    assert state.store == str(CONTAINER_HOME / "models")
    assert state.model_config_file == str(model_config_path(CONTAINER_HOME / "models"))
    assert state.grpc_target == "serving-lb:8500" and state.rest_url == "http://serving-lb:8501"
    assert state.server == compose["services"][SERVERS[0]]["image"]
    assert compose["services"]["serving-lb"]["ports"] == [f"{PUBLISH}:8500:8500", f"{PUBLISH}:8501:8501"]


# --- secrets -----------------------------------------------------------------------------------------------------

# Airflow settings that every Airflow component must share: connections encrypted by one fernet key, tokens signed by
# one API key and one JWT secret, one database.
SHARED_AIRFLOW_KEYS = (
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__AUTH_MANAGER",
)
PUBLISH = "${RUNWAY_PUBLISH_ADDRESS:-127.0.0.1}"  # where published ports listen: this host only, by default
SECRET_NAME = re.compile(r"PASSWORD$|SECRET$|FERNET_KEY$|SECRET_KEY$|TOKEN$")
# ${NAME}, ${NAME:?message}, ${NAME:-default}, ... (not $${...}, compose's escape for a literal dollar).
INTERPOLATION = re.compile(r"(?<!\$)\$\{(\w+)(?:(:?[-?+])([^}]*))?\}")
REQUIRED = re.compile(r"^\$\{\w+:\?[^}]+\}$")


def interpolations() -> list[tuple[str, str, str]]:
    """(name, operator, message or default) of each variable the compose file reads (comments left out)."""
    return INTERPOLATION.findall(re.sub(r"(?m)^\s*#.*$", "", COMPOSE.read_text()))


def environments(compose: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {name: dict(service.get("environment") or {}) for name, service in compose["services"].items()}


def airflow_services(compose: dict[str, Any]) -> list[str]:
    """Every service that runs Airflow's image (the Airflow components and the tools built on them)."""
    return [name for name, service in compose["services"].items() if service["image"].startswith("runway:")]


def test_no_variable_has_a_committed_default() -> None:
    """A default (``${VAR:-value}``) is a value written in the file: every secret must come from the environment.

    The one exception is not a secret: the address the published ports bind, loopback unless told otherwise.
    """
    found = [item for item in interpolations() if item[0] != "RUNWAY_PUBLISH_ADDRESS"]
    assert found, "the compose file reads its secrets from the environment"
    assert [name for name, operator, _ in found if operator != ":?"] == []
    for name, _, message in found:
        assert ".env.example" in message, f"${{{name}}}: say where to get it"


def test_published_ports_listen_on_loopback_unless_told_otherwise(compose: dict[str, Any]) -> None:
    published = [(name, str(port)) for name, svc in compose["services"].items() for port in svc.get("ports", [])]
    assert published
    for name, port in published:
        assert port.startswith(f"{PUBLISH}:"), f"{name} publishes {port} on every interface"
    assert {default for name, _, default in interpolations() if name == "RUNWAY_PUBLISH_ADDRESS"} == {"127.0.0.1"}


def test_no_secret_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    for service, environment in environments(compose).items():
        for key, value in environment.items():
            if SECRET_NAME.search(key):
                assert REQUIRED.match(str(value)), f"{service}: {key} must be ${{VAR:?...}}, not {value!r}"
        connection = environment.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        if connection:
            password = connection.split("://", 1)[1].rsplit("@", 1)[0].split(":", 1)[1]
            assert REQUIRED.match(password), f"{service}: the database password is written in the file"
    assert (
        environments(compose)["postgres"]["POSTGRES_PASSWORD"]
        == environments(compose)["airflow-scheduler"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        .split(":", 2)[2]
        .rsplit("@", 1)[0]
    ), "Airflow connects with the password the database was given"


def test_every_airflow_component_gets_the_same_keys(compose: dict[str, Any]) -> None:
    services = airflow_services(compose)
    assert {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"} <= set(services)
    environment = environments(compose)
    for key in SHARED_AIRFLOW_KEYS:
        values = {name: environment[name].get(key) for name in services}
        assert None not in values.values(), f"{key} is missing from {[n for n, v in values.items() if v is None]}"
        assert len(set(values.values())) == 1, f"{key} differs between Airflow components: {values}"
    for key in SHARED_AIRFLOW_KEYS[:3]:
        assert REQUIRED.match(environment["airflow-scheduler"][key]), key


def test_the_ui_admin_and_its_password_come_from_the_environment(compose: dict[str, Any]) -> None:
    """SimpleAuthManager with the one user and password of the environment: never a generated or default one."""
    apiserver = compose["services"]["airflow-apiserver"]
    environment = apiserver["environment"]
    assert environment["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".SimpleAuthManager")
    assert environment["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == (
        environment["AIRFLOW_ADMIN_USERNAME"] + ":admin"
    ), "the users list names exactly the environment's admin"
    assert REQUIRED.match(environment["AIRFLOW_ADMIN_USERNAME"]) and REQUIRED.match(
        environment["AIRFLOW_ADMIN_PASSWORD"]
    )
    script = apiserver["command"][-1]
    passwords = environment["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert passwords.startswith("/opt/airflow/") and "runway-data" not in passwords, "not on the shared volume"
    assert 'os.environ["AIRFLOW_ADMIN_PASSWORD"]' in script and "umask 077" in script
    assert script.endswith("exec airflow api-server")


def test_env_example_lists_every_variable_without_a_value(compose: dict[str, Any]) -> None:
    required = {name for name, operator, _ in interpolations() if operator == ":?"}
    lines = (CHECKOUT / ".env.example").read_text().splitlines()
    assignments = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert set(assignments) == required
    assert all(value == "" for value in assignments.values()), ".env.example must hold no real value"
    for name in required:  # each one says how to make it
        before = "\n".join(lines[: lines.index(f"{name}=")])
        assert re.search(r"openssl rand|python3 -c", before.rsplit("\n\n", 1)[-1]), name


# --- nginx -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nginx_http() -> list[Any]:
    return http_block(NGINX_CONF.read_text())


@pytest.mark.parametrize(("upstream", "port"), [("tf_serving_rest", 8501), ("tf_serving_grpc", 8500)])
def test_nginx_upstreams_name_the_three_servers(nginx_http: list[Any], upstream: str, port: int) -> None:
    (block,) = [node for node in find(nginx_http, "upstream") if node[1] == [upstream]]
    servers = find(block[2], "server")
    assert [s[1][0] for s in servers] == [f"{name}:{port}" for name in SERVERS]
    for server in servers:
        assert "max_fails=1" in server[1] and "fail_timeout=5s" in server[1], "a failed instance must be skipped"
        assert "resolve" in server[1], "a recreated container must be found again"
    assert find(block[2], "zone"), "resolve needs a shared memory zone"


def test_nginx_passes_rest_and_grpc_to_the_next_instance_on_failure(nginx_http: list[Any]) -> None:
    servers = {tuple(directive(s[2], "listen")): s[2] for s in find(nginx_http, "server")}
    (rest,) = find(servers[("8501",)], "location")
    assert directive(rest[2], "proxy_pass") == ["http://tf_serving_rest"]
    assert {"error", "timeout", "http_502", "http_503", "non_idempotent"} <= set(
        directive(rest[2], "proxy_next_upstream")
    )
    grpc_server = servers[("8500",)]
    assert directive(grpc_server, "http2") == ["on"], "gRPC needs HTTP/2 on the listening port"
    (grpc,) = find(grpc_server, "location")
    assert directive(grpc[2], "grpc_pass") == ["grpc://tf_serving_grpc"]
    assert {"error", "timeout", "http_502", "http_503", "non_idempotent"} <= set(
        directive(grpc[2], "grpc_next_upstream")
    )
    assert ("8081",) in servers, "the container's health check endpoint"


def balancing(http: list[Any]) -> dict[str, Any]:
    """What decides where a request goes and when it moves on: method, server failure settings, retries."""
    upstreams = find(http, "upstream")
    locations = [loc for server in find(http, "server") for loc in find(server[2], "location") if public(loc)]
    retries = {
        name: sorted(node[1])
        for location in locations
        for node in location[2]
        if (name := node[0])
        in ("proxy_next_upstream", "grpc_next_upstream", "proxy_next_upstream_tries", "grpc_next_upstream_tries")
    }
    return {
        "methods": sorted({node[0] for u in upstreams for node in u[2]} & {"least_conn", "ip_hash", "hash", "random"}),
        "server_failure": sorted({p for u in upstreams for s in find(u[2], "server") for p in s[1][1:] if "fail" in p}),
        "keepalive": sorted({tuple(directive(u[2], "keepalive")) for u in upstreams}),
        "retries": retries,
        "retry_timeouts": sorted(n[0] for loc in locations for n in loc[2] if n[0].endswith("next_upstream_timeout")),
    }


def test_nginx_balances_like_the_local_fleet(nginx_http: list[Any], tmp_path: Path) -> None:
    """Same balancing, failure marking and retries as the config `runway fleet up` generates (infra/nginx/)."""
    from pipeline_components.fleet import InstanceAddress
    from pipeline_components.fleet.nginx import render_config

    addresses = [
        InstanceAddress(
            name=f"instance-{i}",
            rest_url=f"http://127.0.0.1:{18501 + 2 * i}",
            grpc_target=f"127.0.0.1:{18500 + 2 * i}",
            store_path=str(tmp_path),
        )
        for i in range(len(SERVERS))
    ]
    local = render_config(
        addresses=addresses, host="127.0.0.1", rest_port=8501, grpc_port=8500, nginx_dir=tmp_path, log_dir=tmp_path
    )
    assert balancing(nginx_http) == balancing(http_block(local))


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    """``nginx -t`` on the production config, adapted only where this machine differs from the container
    (tests/unit/fleet/nginx_conf.py: service names, ``resolve``, pid and log files, ``http2`` on an older nginx)."""
    binary = require_nginx()
    config = tmp_path / "nginx.conf"
    config.write_text(runnable(NGINX_CONF, binary=binary, prefix=tmp_path, ports={}))
    result = nginx_test(binary, config)
    assert result.returncode == 0, result.stderr


# --- Prometheus --------------------------------------------------------------------------------------------------


def test_prometheus_scrapes_every_server_where_it_serves_metrics(compose: dict[str, Any]) -> None:
    prometheus = yaml.safe_load((CHECKOUT / "infra" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "tf-serving"]
    targets = [target for group in job["static_configs"] for target in group["targets"]]
    assert targets == [f"{name}:8501" for name in SERVERS]
    monitoring = (CHECKOUT / "infra" / "serving" / "monitoring.config").read_text()
    assert f'path: "{job["metrics_path"]}"' in monitoring and "enable: true" in monitoring
    service = compose["services"]["prometheus"]
    assert compose["configs"][config_mounts(service)["/etc/prometheus/prometheus.yml"]]["file"] == (
        "infra/prometheus/prometheus.yml"
    )
    assert "--config.file=/etc/prometheus/prometheus.yml" in service["command"]


# --- ML Metadata ---------------------------------------------------------------------------------------------------


def test_ml_metadata_lives_in_postgresql_beside_airflows_database(compose: dict[str, Any]) -> None:
    """Every container that runs runway reads the same PostgreSQL store (never a SQLite file on the shared volume),
    with the password of a compose secret that the environment must supply, and metadata-init creates that database
    and role beside Airflow's."""
    from pipeline_components.settings import Settings

    services = compose["services"]
    environment = environments(compose)
    stores = set()
    for name in airflow_services(compose):
        settings = Settings.from_env(environment[name])  # as the runtime reads them: a password in the URL fails
        postgres = settings.metadata_postgres
        assert postgres is not None, f"{name}: ML Metadata would be a SQLite file on the shared volume"
        assert postgres.password_file is not None
        (secret,) = [s for s in services[name]["secrets"] if f"/run/secrets/{s}" == str(postgres.password_file)]
        assert compose["secrets"][secret] == {"environment": "MLMD_DB_PASSWORD"}
        stores.add(postgres.url())
        assert "metadata-init" in services[name]["depends_on"] or name == "airflow-init"
    assert stores == {"postgresql://mlmd@postgres:5432/mlmd"}, "one store for every component"
    airflow_db = environment["airflow-scheduler"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit("/", 1)[1]
    assert airflow_db != "mlmd", "ML Metadata has its own database"
    init = services["metadata-init"]
    assert init["image"] == services["postgres"]["image"] and init["restart"] == "no"
    assert REQUIRED.match(init["environment"]["MLMD_DB_PASSWORD"]) and init["environment"]["PGHOST"] == "postgres"
    script = CHECKOUT / compose["configs"][config_mounts(init)[init["entrypoint"][-1].split("=", 1)[1]]]["file"]
    sql = script.read_text()
    assert "CREATE ROLE mlmd LOGIN" in sql and "CREATE DATABASE mlmd OWNER mlmd" in sql
    assert "\\getenv mlmd_password MLMD_DB_PASSWORD" in sql, "the password from the environment, not argv"


# --- Redis (Celery's broker) -----------------------------------------------------------------------------------------


def compose_shell(script: str) -> str:
    """A shell snippet of the compose file as the container runs it (``$$`` is compose's escape for ``$``)."""
    return script.replace("$$", "$")


def test_redis_runs_with_the_password_of_the_environment_only(compose: dict[str, Any], tmp_path: Path) -> None:
    """The redis service's own start script, run on this machine (Debian's redis-server, the same major version as
    the image): clients without the password are refused, the health check answers with it and fails without it, and
    the password reaches the server on its standard input."""
    import secrets as secrets_module

    from pipeline_components.deploy.redis import find_redis_server
    from pipeline_components.errors import RuntimeEnvironmentError
    from pipeline_components.ports import free_ports
    from pipeline_components.processes import wait_for
    from tests.helpers import missing

    try:
        server = find_redis_server()
    except RuntimeEnvironmentError as absent:
        missing(str(absent))
    service = compose["services"]["redis"]
    assert service["entrypoint"] == ["sh", "-c"] and "ports" not in service, "Redis is not published"
    assert REQUIRED.match(service["environment"]["REDIS_PASSWORD"])
    (port,) = free_ports(1)
    script = compose_shell(service["command"][-1])
    assert "port 6379\n" in script and "dir /data\n" in script and "appendonly yes\n" in script
    # On its standard input, not its command line (redis-server rewrites its process title later, too late for ps).
    assert "--requirepass" not in script and "redis-server - <<" in script
    script = script.replace("port 6379\n", f"port {port}\nbind 127.0.0.1\n").replace("dir /data", f"dir {tmp_path}")
    password = secrets_module.token_hex(24)
    path = f"{server.parent}:/usr/bin:/bin"
    process = subprocess.Popen(["sh", "-c", script], env={"REDIS_PASSWORD": password, "PATH": path})
    try:
        cli = shutil.which("redis-cli", path=path)
        assert cli is not None

        def ask(*args: str, auth: str | None = None) -> str:
            env = {"PATH": path} | ({"REDISCLI_AUTH": auth} if auth else {})
            return subprocess.run([cli, "-p", str(port), *args], env=env, capture_output=True, text=True).stdout

        assert wait_for(lambda: "PONG" in ask("ping", auth=password), timeout=15), "redis did not start"
        assert "NOAUTH" in ask("ping"), "a client without the password must be refused"
        health = compose_shell(service["healthcheck"]["test"][1]).replace("redis-cli", f"redis-cli -p {port}")
        for given, code in ((password, 0), ("wrong", 1)):
            run = subprocess.run(["sh", "-c", health], env={"REDIS_PASSWORD": given, "PATH": path})
            assert run.returncode == code, f"health check with {'the' if code == 0 else 'a wrong'} password"
        assert "yes" in ask("config", "get", "appendonly", auth=password), "a restart must keep the queued tasks"
    finally:
        process.terminate()
        process.wait(timeout=15)
