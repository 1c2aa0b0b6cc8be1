"""``runway deploy status``: every host and service of the deployment with its address, pid and health."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from pipeline_components.deploy import airflow as components
from pipeline_components.deploy.deployment import Deployment
from pipeline_components.deploy.topology import API_PORT, CONTROL, SERVICES, WORKERS
from pipeline_components.fleet.local import LocalFleet
from pipeline_components.fleet.restarts import watchdog_report
from pipeline_components.processes import pid_alive


def _api_health(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            health: dict[str, Any] = json.loads(answer.read())
            return health
    except (urllib.error.URLError, OSError, ValueError):
        return None


def deployment_status(deployment: Deployment) -> dict[str, Any]:
    """Hosts (namespace, address, link) and services (host, address, port, pid, health: ``healthy``, ``running``
    (alive, health unknown), ``unhealthy`` or ``down``; ``restarts`` by the deployment's watchdog and its last
    exit, for the processes it supervises), the watchdog last."""
    hosts = [
        {"host": h.name, "namespace": h.namespace, "address": h.address, "exists": h.exists, "link": h.link}
        for h in deployment.hosts.status()
    ]
    control = deployment.address(CONTROL)
    api = _api_health(f"http://{control}:{API_PORT}/api/v2/monitor/health")
    postgres = deployment.postgres.server()
    redis = deployment.redis.status()
    fleet_state = LocalFleet(deployment.settings, say=lambda line: None).state()
    watchdog = watchdog_report(deployment.root)
    instances = {a.name: a for a in fleet_state.instances} if fleet_state else {}
    rows: list[dict[str, Any]] = []
    for service in SERVICES:
        address = deployment.address(service.host)
        row: dict[str, Any] = {"service": service.name, "host": service.host, "address": address}
        row["port"] = ",".join(str(p) for p in service.ports.values()) or "-"
        pid: int | None = None
        health = "down"
        if service.role == "postgres":
            pid = _postmaster_pid(deployment)
            health = "healthy" if postgres is not None else "down"
        elif service.role == "redis":
            pid = redis.pid if redis else None
            health = "healthy" if redis is not None else "down"
        elif service.role == "model-server":
            index = int(service.name.rsplit("-", 1)[1]) - 1
            address_entry = instances.get(f"serving-{index}")
            pid = address_entry.pid if address_entry else None
            health = "running" if pid_alive(pid) else "down"
        elif service.role == "load-balancer":
            pid = fleet_state.nginx_pid if fleet_state else None
            health = "running" if pid_alive(pid) else "down"
        else:
            pid = deployment.processes.pid(service.name)
            health = _airflow_health(service.name, pid, api, deployment)
        row.update(pid=pid if pid_alive(pid) else None, health=health)
        rows.append(row)
    publish = deployment.processes.pid("publish")
    rows.append({
        "service": "publish", "host": "(this machine)", "address": "127.0.0.1",
        "port": ",".join(str(p) for p in deployment.published_ports.values()),
        "pid": publish if pid_alive(publish) else None, "health": "running" if pid_alive(publish) else "down",
    })  # fmt: skip
    for row in rows:
        supervised = watchdog["processes"].get(row["service"])
        if supervised:
            row.update(restarts=supervised.get("restarts", 0), last_exit=supervised.get("last_exit"))
    rows.append({
        "service": "watchdog", "host": "(this machine)", "address": "-", "port": "-",
        "pid": watchdog["pid"] if watchdog["alive"] else None, "health": "running" if watchdog["alive"] else "down",
    })  # fmt: skip
    return {"hosts": hosts, "services": rows}


def _postmaster_pid(deployment: Deployment) -> int | None:
    try:
        return int((deployment.postgres.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _airflow_health(name: str, pid: int | None, api: dict[str, Any] | None, deployment: Deployment) -> str:
    if not pid_alive(pid):
        return "down"
    if name == "airflow-apiserver":
        return "healthy" if api is not None else "unhealthy"
    key = {"airflow-scheduler": "scheduler", "airflow-dag-processor": "dag_processor", "airflow-triggerer": "triggerer"}
    if name in key and api is not None:
        return "healthy" if api.get(key[name], {}).get("status") == "healthy" else "unhealthy"
    if name in {f"airflow-{host}" for host in WORKERS}:
        return "healthy" if deployment.processes.worker_ready(name.removeprefix("airflow-")) else "starting"
    assert name in components.CONTROL_COMPONENTS or name.startswith("airflow-")
    return "running"
