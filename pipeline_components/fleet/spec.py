"""What a local fleet is made of: its ports, its server binary and the address its model servers bind.

``FleetSpec`` is what ``runway fleet up`` is asked for; ``bind_flags`` turns the bind address into the server's own
flags, and ``connect_address`` says where a client on this machine reaches a server bound that way.
"""

from __future__ import annotations

import ipaddress
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline_components.fleet import DEFAULT_GRPC_PORT, DEFAULT_INSTANCES, DEFAULT_REST_PORT
from pipeline_components.fleet.supervisor import FleetError
from pipeline_components.settings import CHECKOUT

HOST = "127.0.0.1"
DEFAULT_INSTANCE_BASE_PORT = 18500  # instance i: gRPC 18500 + 10 i, REST 18501 + 10 i


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where one process of a fleet runs when it is not this machine's root network namespace: the address of its
    host, and the command that enters that host (``ip netns exec NS``, from ``deploy.hosts.Hosts.command``). The
    fleet's watchdog starts (and restarts) the process through that command, so it listens on its host only."""

    address: str
    enter: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class FleetSpec:
    """How to start a local fleet.

    Attributes:
        instances: model servers.
        rest_port, grpc_port: nginx's published ports.
        instance_base_port: instance i listens on gRPC ``base + 10 i`` and REST ``base + 10 i + 1``.
        instance_ports: (gRPC, REST) per instance; overrides the base port.
        server: a server binary; default ``tensorflow_model_server`` if on PATH, else runway's.
        bind_address: the address every model server binds (``--bind_address``): loopback, so that only nginx and
            the rollout on this machine reach the instances' ports, never another host.
        store_paths: instance name -> the store as that instance sees it (tests).
        extra_server_flags: more flags for every model server.
        instance_hosts: one ``Placement`` per instance (``runway deploy``: the serving hosts); each binds its
            host's address, on its host's own ports. Default: every instance on this machine.
        lb_host: where nginx runs (``runway deploy``: the load-balancer host); it listens on that address.
    """

    instances: int = DEFAULT_INSTANCES
    rest_port: int = DEFAULT_REST_PORT
    grpc_port: int = DEFAULT_GRPC_PORT
    instance_base_port: int = DEFAULT_INSTANCE_BASE_PORT
    instance_ports: list[tuple[int, int]] | None = None
    server: str | None = None
    bind_address: str = HOST
    store_paths: dict[str, str] | None = None
    extra_server_flags: tuple[str, ...] = ()
    instance_hosts: tuple[Placement, ...] | None = None
    lb_host: Placement | None = None

    @property
    def lb_address(self) -> str:
        """The address nginx listens on (and clients connect to)."""
        return self.lb_host.address if self.lb_host is not None else HOST

    def where(self, index: int) -> tuple[str, tuple[str, ...]]:
        """Where instance ``index`` runs: the address it binds, and the command that enters its host (none: this
        machine). Only loopback ports are checked free before start: a placed process has a host of its own."""
        if self.instance_hosts is None:
            return self.bind_address, ()
        if len(self.instance_hosts) != self.instances:
            raise FleetError(f"{self.instances} instances but {len(self.instance_hosts)} hosts to place them on")
        placement = self.instance_hosts[index]
        return placement.address, placement.enter

    def ports(self) -> list[tuple[int, int]]:
        """(gRPC, REST) of each instance."""
        return self.instance_ports or [
            (self.instance_base_port + 10 * i, self.instance_base_port + 10 * i + 1) for i in range(self.instances)
        ]


def default_server() -> str:
    """``tensorflow_model_server`` when it is on PATH, else runway's TF Serving-compatible server."""
    return shutil.which("tensorflow_model_server") or str(CHECKOUT / "scripts" / "runway-model-server")


def bind_flags(server: str, address: str) -> list[str]:
    """The flags that bind ``server`` to ``address``.

    runway's model server takes ``--bind_address`` for both of its ports. ``tensorflow_model_server`` has no such
    flag (its gRPC port always binds every interface; ``--rest_api_host`` covers REST only), so it gets that one.
    """
    if Path(server).name == "tensorflow_model_server":
        return [f"--rest_api_host={address}"]
    return [f"--bind_address={address}"]


# A local fleet's model servers close a request log file this long after opening it (the server's default is 60 s):
# the monitoring reads closed files only, so `runway monitor` right after a replay waits this long at most.
LOCAL_LOG_FILE_SECONDS = 10


# Prometheus metrics on each instance's REST port, as compose and Kubernetes run them (the canary analysis reads them).
MONITORING_CONFIG = CHECKOUT / "infra" / "serving" / "monitoring.config"


def server_flags(server: str, address: str) -> list[str]:
    """The flags a local fleet gives ``server`` besides its ports and model config: ``bind_flags``, its Prometheus
    metrics (``MONITORING_CONFIG``), and for runway's model server a request log file closed after
    ``LOCAL_LOG_FILE_SECONDS``."""
    flags = [*bind_flags(server, address), f"--monitoring_config_file={MONITORING_CONFIG}"]
    if Path(server).name == "tensorflow_model_server":
        return flags
    return [*flags, f"--runway_request_log_max_file_seconds={LOCAL_LOG_FILE_SECONDS}"]


def connect_address(bind_address: str) -> str:
    """The address a client on this machine uses to reach a server bound to ``bind_address``.

    A server bound to the unspecified address (every interface: ``0.0.0.0`` or ``::``, or an empty host) is reached
    through loopback; any other bind address is reached on itself. This only picks where to *connect*; what a
    server listens on is ``bind_flags``'s business.

    Raises:
        FleetError: ``bind_address`` is not an IP address.
    """
    if not bind_address:
        return HOST
    try:
        unspecified = ipaddress.ip_address(bind_address).is_unspecified
    except ValueError:
        raise FleetError(
            f"bind address {bind_address!r} is not an IP address; use 127.0.0.1 (this machine only, the default), "
            "another address of this machine, or 0.0.0.0 for every interface"
        ) from None
    return HOST if unspecified else bind_address


def instance_name(index: int) -> str:
    """The name of instance ``index`` (``serving-0``, ...): its pid file, log and ``fleet.json`` entry."""
    return f"serving-{index}"
