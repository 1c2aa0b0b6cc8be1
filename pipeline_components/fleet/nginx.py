"""nginx in front of the local fleet: find the binary, write its configuration from the template, check it.

The configuration (``infra/nginx/fleet.conf.template``) balances REST and gRPC over the instances and publishes
only TF Serving's public API: the gRPC methods in ``PUBLIC_GRPC_METHODS`` and the REST status, metadata and
predict/classify/regress paths. Everything else, ``ModelService/HandleReloadConfigRequest`` first, is answered by
nginx itself (gRPC ``PERMISSION_DENIED``, REST 403) and never reaches an instance: the rollout reloads the
instances on their own ports, which only this machine reaches.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pipeline_components.fleet import InstanceAddress
from pipeline_components.fleet.supervisor import FleetError
from pipeline_components.settings import CHECKOUT

NGINX_TEMPLATE = CHECKOUT / "infra" / "nginx" / "fleet.conf.template"

# What a client may call through the load balancer (the same list in infra/serving/nginx.conf; a test keeps the
# two configurations and this tuple equal).
PUBLIC_GRPC_METHODS = (
    "tensorflow.serving.PredictionService/Predict",
    "tensorflow.serving.PredictionService/Classify",
    "tensorflow.serving.PredictionService/Regress",
    "tensorflow.serving.PredictionService/MultiInference",
    "tensorflow.serving.PredictionService/GetModelMetadata",
    "tensorflow.serving.ModelService/GetModelStatus",
)


def find_nginx() -> str:
    """The nginx binary.

    Raises:
        FleetError: nginx is not installed (how to install it is in the message).
    """
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None)
    if not found:
        raise FleetError(
            "nginx is not installed; it balances the local fleet. Install Debian's package: "
            "`apt-get install -y nginx` (make setup does it when run as root)"
        )
    return found


def render_config(
    *,
    addresses: list[InstanceAddress],
    host: str,
    rest_port: int,
    grpc_port: int,
    nginx_dir: Path,
    log_dir: Path,
) -> str:
    """The nginx configuration of a local fleet: ``infra/nginx/fleet.conf.template`` with its placeholders filled.

    Args:
        addresses: the model servers to balance over.
        host: the address nginx listens on (loopback for the local fleet).
        rest_port, grpc_port: nginx's published ports.
        nginx_dir: nginx's prefix (pid file, temporary files).
        log_dir: where nginx writes its error and access logs.
    """

    def servers(kind: str) -> str:
        lines = []
        for address in addresses:
            target = address.rest_url.removeprefix("http://") if kind == "rest" else address.grpc_target
            lines.append(f"        server {target} max_fails=1 fail_timeout=5s;")
        return "\n".join(lines)

    values = {
        "user": "user root;" if os.geteuid() == 0 else "",
        "nginx_dir": str(nginx_dir),
        "log_dir": str(log_dir),
        "host": host,
        "rest_port": str(rest_port),
        "grpc_port": str(grpc_port),
        "rest_servers": servers("rest"),
        "grpc_servers": servers("grpc"),
        "tries": str(max(2, len(addresses))),
    }
    text = NGINX_TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def nginx_argv(nginx: str, conf: Path, log_dir: Path, *, test: bool = False) -> list[str]:
    """The command line that runs (or, with ``test``, only checks) nginx with ``conf``."""
    check = ["-t", "-q"] if test else []
    return [nginx, *check, "-p", str(conf.parent), "-c", str(conf), "-e", str(log_dir / "nginx-error.log")]


def check_config(nginx: str, conf: Path, log_dir: Path) -> None:
    """``nginx -t`` on ``conf``.

    Raises:
        FleetError: nginx refuses the configuration (its own message is included).
    """
    check = subprocess.run(nginx_argv(nginx, conf, log_dir, test=True), capture_output=True, text=True)
    if check.returncode:
        raise FleetError(f"nginx refuses the generated config {conf}:\n{check.stderr.strip()}")
