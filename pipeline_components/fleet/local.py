"""The local fleet: N model servers on loopback reading the shared model store, behind nginx.

``runway fleet up`` starts them, ``runway fleet down`` stops them (no orphans: every process is started in its own
session, its pid recorded, and stopped with SIGTERM, then SIGKILL). Everything lives under ``$RUNWAY_HOME/fleet``:

    fleet.json                 the fleet's addresses (see pipeline_components.fleet), written once all are started
    nginx/nginx.conf           generated from infra/nginx/fleet.conf.template (fleet.nginx)
    instances/<name>.pid       one per model server (and nginx.pid), beside <name>.argv (fleet.supervisor)
    logs/<name>.log            each process's output

Each instance is ``tensorflow_model_server`` when that binary is on PATH, otherwise ``scripts/runway-model-server``,
started with ``--model_config_file=<store>/models.config`` (the rollout keeps that file right, so a restarted
instance comes back with the current versions and labels) and bound to ``FleetSpec.bind_address`` (loopback).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline_components.durable import atomic_write
from pipeline_components.fleet import (
    DEFAULT_GRPC_PORT,
    DEFAULT_INSTANCES,
    DEFAULT_REST_PORT,
    FleetState,
    InstanceAddress,
    fleet_dir,
    fleet_state_path,
    read_fleet_state,
    write_fleet_state,
)
from pipeline_components.fleet.nginx import check_config, find_nginx, nginx_argv, render_config
from pipeline_components.fleet.status import fleet_status
from pipeline_components.fleet.store import ModelStore
from pipeline_components.fleet.supervisor import (
    FleetError,
    Listener,
    Supervisor,
    own_environment,
    port_open,
    wait_listening,
)
from pipeline_components.processes import pid_alive
from pipeline_components.settings import CHECKOUT, Settings

HOST = "127.0.0.1"
DEFAULT_INSTANCE_BASE_PORT = 18500  # instance i: gRPC 18500 + 10 i, REST 18501 + 10 i
START_TIMEOUT_S = 240.0
NGINX = "nginx"


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

    def ports(self) -> list[tuple[int, int]]:
        """(gRPC, REST) of each instance."""
        return self.instance_ports or [
            (self.instance_base_port + 10 * i, self.instance_base_port + 10 * i + 1) for i in range(self.instances)
        ]


def default_server() -> str:
    return shutil.which("tensorflow_model_server") or str(CHECKOUT / "scripts" / "runway-model-server")


def bind_flags(server: str, address: str) -> list[str]:
    """The flags that bind ``server`` to ``address``.

    runway's model server takes ``--bind_address`` for both of its ports. ``tensorflow_model_server`` has no such
    flag (its gRPC port always binds every interface; ``--rest_api_host`` covers REST only), so it gets that one.
    """
    if Path(server).name == "tensorflow_model_server":
        return [f"--rest_api_host={address}"]
    return [f"--bind_address={address}"]


def instance_name(index: int) -> str:
    return f"serving-{index}"


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _listener(address: InstanceAddress, log: Path) -> Listener:
    host = address.grpc_target.rsplit(":", 1)[0]
    return Listener(
        name=address.name,
        pid=address.pid,
        host=host,
        ports=(_port(address.rest_url), _port(address.grpc_target)),
        log=log,
    )


class LocalFleet:
    """The local fleet under ``settings.home``."""

    def __init__(self, settings: Settings, say: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.dir = fleet_dir(settings.home)
        self.store = ModelStore(settings.model_store)
        self.processes = Supervisor(self.dir)
        self._say = say or (lambda line: None)

    @property
    def log_dir(self) -> Path:
        return self.processes.log_dir

    def state(self) -> FleetState | None:
        return read_fleet_state(self.settings.home)

    # -- up ---------------------------------------------------------------------------------------------------------

    def up(self, spec: FleetSpec | None = None) -> FleetState:
        """Start the fleet (a fleet already running is left as it is and returned).

        Raises:
            FleetError: nginx is missing, a port is taken, or an instance did not come up (its log is named).
        """
        spec = spec or FleetSpec()
        existing = self.state()
        if existing is not None:
            if self.running(existing):
                self._say(f"the fleet is already running ({existing.rest_url}, {existing.grpc_target})")
                return existing
            self.down()  # a stale description (machine rebooted, processes killed): clean up first
        nginx = find_nginx()
        server = spec.server or default_server()
        ports = spec.ports()
        taken = [p for p in (spec.rest_port, spec.grpc_port, *(p for pair in ports for p in pair)) if port_open(p)]
        if taken:
            raise FleetError(
                f"port(s) {taken} already in use on {HOST}; stop what uses them or pick others "
                "(runway fleet up --rest-port/--grpc-port/--instance-base-port)"
            )
        self.processes.prepare()
        (self.dir / "nginx" / "tmp").mkdir(parents=True, exist_ok=True)
        self.store.root.mkdir(parents=True, exist_ok=True)
        with self.store.locked():
            if not self.store.config_path.is_file():
                self.store.write_config({})
        addresses: list[InstanceAddress] = []
        try:
            for index, (grpc_port, rest_port) in enumerate(ports):
                address = self._start_instance(index, server, grpc_port, rest_port, spec)
                addresses.append(address)
            nginx_pid = self._start_nginx(nginx, spec, addresses)
            state = FleetState(
                rest_url=f"http://{HOST}:{spec.rest_port}",
                grpc_target=f"{HOST}:{spec.grpc_port}",
                store=str(self.store.root),
                model_config_file=str(self.store.config_path),
                instances=addresses,
                kind="local",
                server=server,
                nginx_pid=nginx_pid,
            )
            # Written before waiting, so that `fleet down` can always stop what was started.
            write_fleet_state(self.settings.home, state)
            self._wait_ready(state)
        except BaseException:
            self.down()
            raise
        self._say(
            f"fleet up: {len(addresses)} x {Path(server).name} behind nginx: REST {state.rest_url}, "
            f"gRPC {state.grpc_target}"
        )
        return state

    def _instance_config_file(self, name: str, store_path: str) -> Path:
        """The ``--model_config_file`` of an instance: the store's own, or a copy with its own base paths."""
        if store_path == str(self.store.root):
            return self.store.config_path
        path = self.processes.pid_dir / f"{name}.models.config"
        atomic_write(path, self.store.render_config(self.store.read_config(), store_path=store_path))
        return path

    def _start_instance(
        self, index: int, server: str, grpc_port: int, rest_port: int, spec: FleetSpec
    ) -> InstanceAddress:
        name = instance_name(index)
        store_path = (spec.store_paths or {}).get(name, str(self.store.root))
        argv = [
            server,
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            *bind_flags(server, spec.bind_address),
            f"--model_config_file={self._instance_config_file(name, store_path)}",
            # Labels in the file name versions that are loaded only after start-up (TF Serving refuses them else).
            "--allow_version_labels_for_unavailable_models",
            # A version that fails to load is retried once, quickly: the rollout's bounded wait reports it.
            "--max_num_load_retries=1",
            "--load_retry_interval_micros=2000000",
            *spec.extra_server_flags,
        ]
        pid = self.processes.spawn(name, argv, env=own_environment(self.settings.as_env()))
        # Clients connect to the bound address (loopback when it binds every interface).
        host = HOST if spec.bind_address in ("0.0.0.0", "::", "") else spec.bind_address
        return InstanceAddress(
            name=name,
            rest_url=f"http://{host}:{rest_port}",
            grpc_target=f"{host}:{grpc_port}",
            store_path=store_path,
            pid=pid,
        )

    def _start_nginx(self, nginx: str, spec: FleetSpec, addresses: list[InstanceAddress]) -> int:
        nginx_dir = self.dir / "nginx"
        conf = nginx_dir / "nginx.conf"
        text = render_config(
            addresses=addresses,
            host=HOST,
            rest_port=spec.rest_port,
            grpc_port=spec.grpc_port,
            nginx_dir=nginx_dir,
            log_dir=self.log_dir,
        )
        atomic_write(conf, text)
        check_config(nginx, conf, self.log_dir)
        return self.processes.spawn(NGINX, nginx_argv(nginx, conf, self.log_dir))

    def _wait_ready(self, state: FleetState, *, nginx: bool = True) -> None:
        listeners = [_listener(address, self.processes.log_path(address.name)) for address in state.instances]
        wait_listening(listeners, timeout_s=START_TIMEOUT_S)
        if nginx:
            error_log = self.log_dir / "nginx-error.log"
            wait_listening(
                [Listener(name=NGINX, pid=state.nginx_pid, host=HOST, ports=(_port(state.rest_url),), log=error_log)],
                timeout_s=START_TIMEOUT_S,
            )

    # -- one instance (tests, operators) ----------------------------------------------------------------------------

    def stop_instance(self, name: str, *, kill: bool = False) -> None:
        """Stop one model server (SIGKILL with ``kill``: a crash); the load balancer routes around it."""
        address = self._address(name)
        self.processes.stop(name, address.pid, kill=kill)

    def start_instance(self, name: str) -> int:
        """Start one model server again with the arguments it had; returns its new pid once it listens."""
        state = self._require_state()
        address = self._address(name)
        if pid_alive(address.pid):
            return address.pid or 0
        argv = self.processes.recorded_argv(name)
        pid = self.processes.spawn(name, argv, env=own_environment(self.settings.as_env()), banner="restart")
        restarted = replace(address, pid=pid)
        instances = [restarted if a.name == name else a for a in state.instances]
        write_fleet_state(self.settings.home, replace(state, instances=instances))
        self._wait_ready(replace(state, instances=[restarted]), nginx=False)
        return pid

    def _address(self, name: str) -> InstanceAddress:
        state = self._require_state()
        address = next((a for a in state.instances if a.name == name), None)
        if address is None:
            raise FleetError(f"no instance {name}; the fleet has {[a.name for a in state.instances]}")
        return address

    # -- down / status ----------------------------------------------------------------------------------------------

    def running(self, state: FleetState | None = None) -> bool:
        state = state or self.state()
        return state is not None and pid_alive(state.nginx_pid)

    def down(self) -> list[str]:
        """Stop nginx and every instance; remove ``fleet.json``. Returns what was stopped."""
        pids = self.processes.recorded_pids()
        state = self.state()
        if state is not None:
            pids.update({a.name: a.pid for a in state.instances if a.pid})
            if state.nginx_pid:
                pids[NGINX] = state.nginx_pid
        stopped = [
            name
            # nginx first: no new traffic reaches an instance that is stopping
            for name, pid in sorted(pids.items(), key=lambda item: item[0] != NGINX)
            if self.processes.stop(name, pid)
        ]
        fleet_state_path(self.settings.home).unlink(missing_ok=True)
        self._say(f"fleet down: stopped {', '.join(stopped) or 'nothing (not running)'}")
        return stopped

    def status(self) -> dict[str, Any]:
        """Each process's liveness and, per model in models.config, what each instance reports."""
        return fleet_status(self.state(), self.store)

    def _require_state(self) -> FleetState:
        state = self.state()
        if state is None:
            raise FleetError(f"no local fleet under {self.dir}; start one with `runway fleet up`")
        return state


__all__ = [
    "DEFAULT_INSTANCE_BASE_PORT",
    "HOST",
    "FleetError",
    "FleetSpec",
    "LocalFleet",
    "bind_flags",
    "default_server",
    "find_nginx",
    "instance_name",
    "pid_alive",
]
