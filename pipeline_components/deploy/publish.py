"""Publishing the deployment on this machine's loopback: what docker's port publishing does for compose.

The deployment's services listen on their hosts' addresses only. An operator on this machine reaches the Airflow
UI and REST API, and clients the load balancer, through one nginx in the root network namespace that listens on
127.0.0.1 only and forwards to the control host's api-server and to the load-balancer host (REST, and gRPC over
HTTP/2). Nothing is published on another interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline_components.durable import atomic_write
from pipeline_components.errors import RuntimeEnvironmentError
from pipeline_components.fleet.nginx import check_config, find_nginx
from pipeline_components.fleet.supervisor import FleetError, Supervisor
from pipeline_components.ports import port_free
from pipeline_components.processes import wait_for

PUBLISH_ADDRESS = "127.0.0.1"


@dataclass(frozen=True, kw_only=True)
class Published:
    """A published port: where it listens on loopback and where it forwards."""

    name: str
    port: int
    target: str  # host:port
    grpc: bool = False


def render(published: list[Published], *, folder: Path, log_dir: Path) -> str:
    """The nginx configuration that publishes ``published`` on loopback (temporary files in ``folder``)."""
    servers = []
    for item in published:
        listen = f"{PUBLISH_ADDRESS}:{item.port}" + (" http2" if item.grpc else "")
        if item.grpc:
            forward = f"grpc_pass grpc://{item.target}; grpc_read_timeout 120s;"
        else:
            forward = (
                f"proxy_pass http://{item.target}; proxy_set_header Host $http_host; "
                "proxy_set_header X-Forwarded-For $remote_addr; proxy_read_timeout 300s; "
                "proxy_http_version 1.1; proxy_buffering off;"
            )
        servers.append(
            f"  server {{ # {item.name}\n    listen {listen};\n    client_max_body_size 64m;\n"
            f"    location / {{ {forward} }}\n  }}"
        )
    body = "\n".join(servers)
    return f"""# Written by runway deploy (pipeline_components/deploy/publish.py): loopback only.
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {log_dir / "publish-error.log"} warn;
events {{ worker_connections 1024; }}
http {{
  access_log {log_dir / "publish-access.log"};
  client_body_temp_path {folder / "tmp"};
  proxy_temp_path {folder / "tmp"};
  fastcgi_temp_path {folder / "tmp"};
  uwsgi_temp_path {folder / "tmp"};
  scgi_temp_path {folder / "tmp"};
{body}
}}
"""


def start_publisher(processes: Supervisor, name: str, folder: Path, published: list[Published]) -> int:
    """Write the configuration, check it (``nginx -t``), start nginx as ``name`` and wait until it listens.

    Raises:
        RuntimeEnvironmentError: nginx refused the configuration or did not listen within 15 s.
    """
    (folder / "tmp").mkdir(parents=True, exist_ok=True)
    conf = folder / "nginx.conf"
    atomic_write(conf, render(published, folder=folder, log_dir=processes.log_dir))
    nginx = find_nginx()
    try:
        check_config(nginx, conf, processes.log_dir)
    except FleetError as refused:
        raise RuntimeEnvironmentError(str(refused)) from None
    pid = processes.spawn(name, [nginx, "-p", str(folder), "-c", str(conf), "-g", "daemon off;"])
    port = published[0].port
    if not wait_for(lambda: not port_free(PUBLISH_ADDRESS, port), timeout=15.0):
        raise RuntimeEnvironmentError(
            f"the publishing nginx (pid {pid}) did not listen on {PUBLISH_ADDRESS}:{port}; see {processes.log_dir}"
        )
    return pid
