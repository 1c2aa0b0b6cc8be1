"""The parts of ``runway deploy`` that need no hosts: secrets, the Airflow components' environment, the users, the
publishing nginx's configuration, and finding a deployment again. (The whole topology runs in
``tests/e2e/test_deployment.py``.)"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pipeline_components.deploy import airflow as components
from pipeline_components.deploy.auth import airflow_users_file, auth_env, ensure_users, users_file
from pipeline_components.deploy.celery import celery_settings
from pipeline_components.deploy.postgres import PostgresServer
from pipeline_components.deploy.publish import Published, render
from pipeline_components.deploy.redis import RedisServer
from pipeline_components.deploy.secrets import SecretFiles
from pipeline_components.deploy.topology import SECRETS, WORKERS
from pipeline_components.errors import ConfigError
from pipeline_components.ports import free_ports
from pipeline_components.settings import Settings
from tests.helpers import missing, require_nginx


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_are_generated_once_owner_only_and_refused_when_others_may_read_them(tmp_path: Path) -> None:
    files = SecretFiles(tmp_path / "secrets")
    made = files.ensure()
    assert sorted(made) == sorted(s.name for s in SECRETS)
    assert _mode(files.folder) == 0o700 and all(_mode(files.path(s.name)) == 0o600 for s in SECRETS)
    values = {s.name: files.read(s.name) for s in SECRETS}
    assert len(set(values.values())) == len(SECRETS)  # no two alike, none empty
    assert files.ensure() == [] and {s.name: files.read(s.name) for s in SECRETS} == values  # kept
    files.path("jwt-secret").chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        files.read("jwt-secret")


def test_components_get_commands_that_print_secrets_never_the_secrets(tmp_path: Path) -> None:
    files = SecretFiles(tmp_path / "secrets")
    files.ensure()
    root = tmp_path / "deploy"
    postgres = PostgresServer(host="10.9.0.2", port=5432, user="runway", password_file=tmp_path / "pg")
    redis = RedisServer(host="10.9.0.2", port=6379, pid=1, password_file=tmp_path / "redis")
    celery = celery_settings(redis=redis, postgres=postgres, database="airflow", worker_hosts=WORKERS)
    settings = Settings.from_env({"RUNWAY_HOME": str(root)})
    env = components.component_env(
        settings, celery=celery, secrets=files, control_address="10.9.0.2", auth=auth_env(root)
    )
    flat = json.dumps(env)
    for secret in SECRETS:
        assert files.read(secret.name) not in flat
    for password in ensure_users(root).values():
        assert password not in flat
    assert env["AIRFLOW__CORE__FERNET_KEY_CMD"] == f"cat {files.path('fernet-key')}"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET_CMD"] == f"cat {files.path('jwt-secret')}"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__API__HOST"] == "10.9.0.2" and env["RUNWAY_WORKER_QUEUES"] == "worker-1,worker-2"
    assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env  # SQLite's: replaced by the _CMD form
    assert env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "pipeline_components.deploy.identity.hostname"
    worker = components.worker_env(env, host="worker-2", address="10.9.0.4", runtime_dir=tmp_path / "run" / "w2")
    assert (worker["RUNWAY_HOST"], worker["RUNWAY_HOST_ADDRESS"]) == ("worker-2", "10.9.0.4")
    assert _mode(Path(worker["XDG_RUNTIME_DIR"])) == 0o700
    argv = components.worker_argv(celery, "worker-2", concurrency=2)
    assert "--skip-serve-logs" in argv and argv[argv.index("--queues") + 1] == "default,worker-2"


def test_users_have_roles_and_hashed_passwords_for_airflow(tmp_path: Path) -> None:
    passwords = ensure_users(tmp_path)
    assert set(passwords) == {"admin", "operator", "viewer"} and all(len(p) >= 20 for p in passwords.values())
    auth_env(tmp_path)
    hashed = airflow_users_file(tmp_path).read_text()
    assert all(password not in hashed for password in passwords.values())
    assert _mode(users_file(tmp_path)) == 0o600 and _mode(airflow_users_file(tmp_path)) == 0o600
    assert ensure_users(tmp_path) == passwords  # kept across ups


def test_the_publishing_nginx_listens_on_loopback_only_and_passes_nginx_t(tmp_path: Path) -> None:
    nginx = require_nginx()
    ui, rest, grpc = free_ports(3)
    published = [
        Published(name="airflow", port=ui, target="10.9.0.2:8080"),
        Published(name="rest", port=rest, target="10.9.0.8:8501"),
        Published(name="grpc", port=grpc, target="10.9.0.8:8500", grpc=True),
    ]
    (tmp_path / "tmp").mkdir()
    text = render(published, folder=tmp_path, log_dir=tmp_path)
    listens = [line.split()[1].rstrip(";") for line in text.splitlines() if line.strip().startswith("listen")]
    assert listens == [f"127.0.0.1:{ui}", f"127.0.0.1:{rest}", f"127.0.0.1:{grpc}"]
    assert "grpc_pass grpc://10.9.0.8:8500" in text
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    check = subprocess.run([nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_status_and_down_find_the_ports_and_subnet_of_the_last_up(tmp_path: Path) -> None:
    from pipeline_components.deploy.deployment import Deployment

    (tmp_path / "deploy").mkdir()
    state = {"subnet": "10.77.3.0/24", "published": {"ui": "127.0.0.1:18080", "rest": "127.0.0.1:18501",
                                                     "grpc": "127.0.0.1:18500"}}  # fmt: skip
    (tmp_path / "deploy" / "deployment.json").write_text(json.dumps(state))
    found = Deployment.for_settings(Settings.from_env({"RUNWAY_HOME": str(tmp_path)}), say=lambda line: None)
    assert found.published_ports == {"ui": 18080, "rest": 18501, "grpc": 18500}
    assert str(found.plan.subnet) == "10.77.3.0/24" and found.address("control") == "10.77.3.2"
    assert found.ui_url == "http://127.0.0.1:18080"


def test_the_serving_hosts_rules_load_in_nftables_and_name_every_allowed_source() -> None:
    from pipeline_components.deploy.firewall import find_nft, serving_rules

    if os.geteuid() != 0:
        missing("nft -c needs root (CAP_NET_ADMIN)")
    if not (shutil.which("nft") or Path("/usr/sbin/nft").is_file()):
        missing("nftables is not installed (make setup installs it)")
    nft = find_nft()
    rules = serving_rules(ports=(8500, 8501), allowed=["10.9.0.8", "10.9.0.2", "10.9.0.1"])
    assert "tcp dport { 8500, 8501 } ip saddr { 10.9.0.8, 10.9.0.2, 10.9.0.1 } accept" in rules
    assert rules.index("accept\n    tcp dport") < rules.index("drop")  # the allowed first, then the rest dropped
    check = subprocess.run([str(nft), "-c", "-f", "-"], input=rules, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
