"""nginx in front of the local fleet: find the binary, write its configuration from the template, check it.

The configuration (``infra/nginx/fleet.conf.template``) balances REST and gRPC over the instances and publishes
only TF Serving's public API: the gRPC methods in ``PUBLIC_GRPC_METHODS`` and the REST status, metadata and
predict/classify/regress paths. Everything else, ``ModelService/HandleReloadConfigRequest`` first, is answered by
nginx itself (gRPC ``PERMISSION_DENIED``, REST 403) and never reaches an instance: the rollout reloads the
instances on their own ports, which only this machine reaches.

While a canary is analysed (``fleet.canary``), ``canary.conf`` beside the configuration copies a share of the
model's REST predict requests to ``stable`` to the ``canary`` label (``set_canary_mirror``); the client is answered
by ``stable`` only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pipeline_components.durable import atomic_write
from pipeline_components.fleet import InstanceAddress
from pipeline_components.fleet.supervisor import FleetError
from pipeline_components.processes import pid_alive, wait_for
from pipeline_components.settings import CHECKOUT

log = logging.getLogger(__name__)

NGINX_TEMPLATE = CHECKOUT / "infra" / "nginx" / "fleet.conf.template"
CANARY_CONF = "canary.conf"  # beside nginx.conf: the mirrored share of each model under canary analysis

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


def check_config(nginx: str, conf: Path, log_dir: Path, *, enter: Sequence[str] = ()) -> None:
    """``nginx -t`` on ``conf``, inside the host that ``enter`` enters (``nginx -t`` binds the listen addresses).

    Raises:
        FleetError: nginx refuses the configuration (its own message is included).
    """
    check = subprocess.run([*enter, *nginx_argv(nginx, conf, log_dir, test=True)], capture_output=True, text=True)
    if check.returncode:
        raise FleetError(f"nginx refuses the generated config {conf}:\n{check.stderr.strip()}")


def write_config(nginx: str, conf: Path, text: str, log_dir: Path, *, enter: Sequence[str] = ()) -> None:
    """Write the fleet's configuration, with no canary mirrored, and check it (``nginx -t``).

    Raises:
        FleetError: nginx refuses it.
    """
    atomic_write(conf.parent / CANARY_CONF, render_canary({}))
    atomic_write(conf, text)
    check_config(nginx, conf, log_dir, enter=enter)


def render_canary(mirrors: dict[str, float]) -> str:
    """``canary.conf``: ``$runway_canary_mirror`` is 1 for the share ``mirrors[model]`` (percent) of each model's
    stable predict requests, drawn per request (``split_clients`` on ``$request_id``), else 0."""
    lines = [f"# Written by the canary analysis (pipeline_components/fleet/canary.py): {json.dumps(mirrors)}"]
    choices = ["default 0;"]
    for index, (model, percent) in enumerate(sorted(mirrors.items())):
        if percent >= 100:
            choices.append(f"{model} 1;")
            continue
        lines.append(f'split_clients "${{request_id}}" $runway_canary_draw_{index} {{ {percent:g}% 1; * 0; }}')
        choices.append(f"{model} $runway_canary_draw_{index};")
    lines.append("map $runway_stable_predict_model $runway_canary_mirror { " + " ".join(choices) + " }")
    return "\n".join(lines) + "\n"


def canary_mirrors(nginx_dir: Path) -> dict[str, float]:
    """The models whose stable predict requests are mirrored now, with their share (percent)."""
    path = nginx_dir / CANARY_CONF
    if not path.is_file():
        return {}
    header = path.read_text().split("\n", 1)[0]
    return dict(json.loads(header.split(": ", 1)[1])) if ": " in header else {}


def set_canary_mirror(nginx_dir: Path, model: str, percent: float | None, *, master_pid: int | None) -> bool:
    """Mirror ``percent`` of ``model``'s stable predict requests to its ``canary`` label (None: stop), and reload.

    Returns:
        True when the running nginx took the change (its old workers have exited).

    Raises:
        FleetError: the fleet has no nginx configuration here (not a local fleet).
    """
    if not (nginx_dir / "nginx.conf").is_file():
        raise FleetError(f"no nginx configuration in {nginx_dir}: the canary analysis needs the local fleet's nginx")
    mirrors = canary_mirrors(nginx_dir)
    if percent is None:
        mirrors.pop(model, None)
    else:
        mirrors[model] = percent
    atomic_write(nginx_dir / CANARY_CONF, render_canary(mirrors))
    return master_pid is not None and pid_alive(master_pid) and reload(master_pid)


def set_in_rotation(conf: Path, address: InstanceAddress, *, serving: bool) -> bool:
    """Put an instance's REST and gRPC upstream servers in ``conf`` out of rotation (nginx's ``down``) or back.

    Returns:
        True when ``conf`` changed (nginx then needs ``reload``).
    """
    text = conf.read_text()
    changed = text
    for target in (address.rest_url.removeprefix("http://"), address.grpc_target):
        line = re.compile(rf"^(\s*server {re.escape(target)} [^;]*?)( down)?;$", re.MULTILINE)
        changed = line.sub(lambda found: found.group(1) + ("" if serving else " down") + ";", changed)
    if changed == text:
        return False
    atomic_write(conf, changed)
    return True


def reload(master_pid: int, *, timeout_s: float = 15.0, wait: bool = True) -> bool:
    """Reload nginx's configuration and wait until the workers of the old one have exited.

    An old worker takes no new request and exits once the requests it holds are answered (nginx's graceful
    reload), so when this returns no request can reach an instance the new configuration put ``down``.

    Returns:
        True when every old worker exited within ``timeout_s`` (without ``wait``: False, nothing was waited for).
    """
    old = _children(master_pid)
    os.kill(master_pid, signal.SIGHUP)
    if not wait:
        return False
    if wait_for(lambda: not any(pid_alive(pid) for pid in old), timeout=timeout_s, interval=0.05):
        return True
    log.warning("nginx workers %s still answer requests %g s after the reload", sorted(old), timeout_s)
    return False


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (nginx's workers), from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while we looked
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found
