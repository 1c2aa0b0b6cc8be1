"""The local fleet: N model servers on loopback reading the shared model store, behind nginx.

``runway fleet up`` starts them, ``runway fleet down`` stops them (no orphans: every process is started in its own
session, its pid recorded, and stopped with SIGTERM, then SIGKILL). Everything lives under ``$RUNWAY_HOME/fleet``:

    fleet.json                 the fleet's addresses (see pipeline_components.fleet), written once all are started
    nginx/nginx.conf           generated from infra/nginx/fleet.conf.template (fleet.nginx)
    instances/<name>.pid       one per model server (and nginx.pid), beside <name>.argv (fleet.supervisor)
    instances/watchdog.*       the watchdog that starts and restarts them (fleet.watchdog), its report (.json)
    logs/<name>.log            each process's output (logs/watchdog.log: every start, exit and restart)

Each instance is ``tensorflow_model_server`` when that binary is on PATH, otherwise ``scripts/runway-model-server``,
started with ``--model_config_file=<store>/models.config`` (kept right by the rollout: a restarted instance comes
back with the current versions), bound to loopback, or to its host's address when placed (``runway deploy``).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline_components.durable import atomic_write
from pipeline_components.fleet import (
    FleetState,
    InstanceAddress,
    fleet_dir,
    fleet_state_path,
    read_fleet_state,
    write_fleet_state,
)
from pipeline_components.fleet.nginx import find_nginx, nginx_argv, reload, render_config, set_in_rotation, write_config
from pipeline_components.fleet.restarts import watchdog_report
from pipeline_components.fleet.spec import (
    DEFAULT_INSTANCE_BASE_PORT,
    HOST,
    FleetSpec,
    bind_flags,
    connect_address,
    default_server,
    instance_name,
    server_flags,
)
from pipeline_components.fleet.status import fleet_status
from pipeline_components.fleet.store import ModelStore
from pipeline_components.fleet.supervisor import (
    FleetError,
    Listener,
    Supervisor,
    is_ours,
    own_environment,
    port_open,
    wait_listening,
)
from pipeline_components.fleet.watchdog import SPENT, WATCHDOG, watchdog_argv
from pipeline_components.processes import log_tail, pid_alive, wait_for
from pipeline_components.settings import Settings

START_TIMEOUT_S = 240.0
STOP_WATCHDOG_S = 60.0  # it stops nginx and every model server (each SIGTERM, then SIGKILL after 15 s) first
NGINX = "nginx"
WATCHDOG_START_S = 30.0  # the watchdog starts every process within a second; this covers a loaded machine


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
        """Start the fleet; on a fleet that runs, bring back whatever is down and return it.

        Raises:
            FleetError: nginx is missing, a port is taken, or an instance did not come up (its log is named).
        """
        spec = spec or FleetSpec()
        existing = self.state()
        if existing is not None:
            if self._anything_alive(existing):
                return self._repair(existing)
            self.down()  # a stale description (machine rebooted, processes killed): clean up first
        nginx = find_nginx()
        server = spec.server or default_server()
        ports = spec.ports()
        on_loopback = ([] if spec.lb_host else [spec.rest_port, spec.grpc_port]) + (
            [] if spec.instance_hosts else [p for pair in ports for p in pair]
        )
        taken = [p for p in on_loopback if port_open(p)]
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
        addresses = [
            self._plan_instance(index, server, grpc_port, rest_port, spec)
            for index, (grpc_port, rest_port) in enumerate(ports)
        ]
        self._plan_nginx(nginx, spec, addresses)
        names = [a.name for a in addresses] + [NGINX]
        # A new fleet: no pid or restart count of an earlier one is carried over (its ports were free: none runs).
        for stale in [*(f"{name}.pid" for name in names), *SPENT]:
            (self.processes.pid_dir / stale).unlink(missing_ok=True)
        try:
            pids = self._start_watchdog(names)
            state = FleetState(
                rest_url=f"http://{spec.lb_address}:{spec.rest_port}",
                grpc_target=f"{spec.lb_address}:{spec.grpc_port}",
                store=str(self.store.root),
                model_config_file=str(self.store.config_path),
                instances=[replace(a, pid=pids[a.name]) for a in addresses],
                kind="local",
                server=server,
                nginx_pid=pids[NGINX],
            )
            # Written before waiting, so that `fleet down` can always stop what was started.
            with self.processes.locked():
                state = self._current_pids(state)
                write_fleet_state(self.settings.home, state)
            self._wait_ready(state)
        except BaseException:
            self.down()
            raise
        self._say(
            f"fleet up: {len(addresses)} x {Path(server).name} behind nginx: REST {state.rest_url}, "
            f"gRPC {state.grpc_target}; supervised by the watchdog (pid {pids[WATCHDOG]})"
        )
        if Path(server).name == "tensorflow_model_server" and spec.bind_address == HOST:
            self._say("note: tensorflow_model_server's gRPC port listens on every interface (it has no flag for it)")
        return state

    def _current_pids(self, state: FleetState) -> FleetState:
        """``state`` with the pids the pid files name now (the watchdog may have restarted one meanwhile)."""
        recorded = self.processes.recorded_pids()
        instances = [replace(a, pid=recorded.get(a.name, a.pid)) for a in state.instances]
        return replace(state, instances=instances, nginx_pid=recorded.get(NGINX, state.nginx_pid))

    def _start_watchdog(self, names: list[str]) -> dict[str, int]:
        """Start the watchdog over ``names`` and wait until it has started each of them. Returns every pid."""
        for name in names:
            self.processes.release(name)
        pid = self.processes.spawn(
            WATCHDOG, watchdog_argv(self.dir, names), env=own_environment(self.settings.as_env())
        )
        log = self.processes.log_path(WATCHDOG)

        def started() -> bool:
            if not pid_alive(pid):
                raise FleetError(f"the fleet's watchdog exited at start-up; see {log}:\n{log_tail(log)}")
            return all(pid_alive(self.processes.recorded_pid(name)) for name in names)

        if not wait_for(started, timeout=WATCHDOG_START_S, interval=0.1):
            raise FleetError(f"the watchdog did not start {names} within {WATCHDOG_START_S:.0f} s; see {log}")
        pids = {name: self.processes.recorded_pid(name) or 0 for name in names}
        return {**pids, WATCHDOG: pid}

    def _anything_alive(self, state: FleetState) -> bool:
        pids = [state.nginx_pid, self.processes.recorded_pid(WATCHDOG), *(a.pid for a in state.instances)]
        return any(pid_alive(pid) for pid in pids)

    def _repair(self, state: FleetState) -> FleetState:
        """``fleet up`` on a running fleet: release what was held down, start the watchdog if it is not running
        (it adopts the live processes and starts the others), else have it start what is down now (SIGHUP skips
        the backoff); wait until everything listens; say what came back."""
        names = [a.name for a in state.instances] + [NGINX]
        down = [a.name for a in state.instances if not pid_alive(a.pid)]
        if not pid_alive(state.nginx_pid):
            down.append(NGINX)
        watchdog = self.processes.recorded_pid(WATCHDOG)
        if not pid_alive(watchdog):
            self._say("the fleet's watchdog was not running: starting it")
            self._start_watchdog(names)
        else:
            for name in names:
                self.processes.release(name)
            if down:
                assert watchdog is not None
                os.kill(watchdog, signal.SIGHUP)
        if down:
            self._say(f"{', '.join(down)} {'was' if len(down) == 1 else 'were'} down: restarting")
            ok = wait_for(lambda: not [n for n, p in self._pids().items() if not pid_alive(p)], timeout=30.0)
            if not ok:
                raise FleetError(f"{down} not restarted within 30 s; see {self.processes.log_path(WATCHDOG)}")
        current = self._require_state()
        self._wait_ready(current)
        for address in current.instances:  # what stop_instance took out of nginx's rotation is back in it
            self._rotate(address, serving=True)
        if down:
            pids = self._pids()
            self._say("back: " + ", ".join(f"{name} (pid {pids[name]})" for name in down))
        else:
            self._say(f"the fleet is already running ({current.rest_url}, {current.grpc_target})")
        return current

    def _pids(self) -> dict[str, int | None]:
        state = self._require_state()
        return {**{a.name: a.pid for a in state.instances}, NGINX: state.nginx_pid}

    def _instance_config_file(self, name: str, store_path: str) -> Path:
        """The ``--model_config_file`` of an instance: the store's own, or a copy with its own base paths."""
        if store_path == str(self.store.root):
            return self.store.config_path
        path = self.processes.pid_dir / f"{name}.models.config"
        atomic_write(path, self.store.render_config(self.store.read_config(), store_path=store_path))
        return path

    def _plan_instance(
        self, index: int, server: str, grpc_port: int, rest_port: int, spec: FleetSpec
    ) -> InstanceAddress:
        name = instance_name(index)
        store_path = (spec.store_paths or {}).get(name, str(self.store.root))
        bind_address, enter = spec.where(index)
        argv = [
            *enter,
            server,
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            *server_flags(server, bind_address),
            f"--model_config_file={self._instance_config_file(name, store_path)}",
            # Labels in the file name versions that are loaded only after start-up (TF Serving refuses them else).
            "--allow_version_labels_for_unavailable_models",
            # A version that fails to load is retried once, quickly: the rollout's bounded wait reports it.
            "--max_num_load_retries=1",
            "--load_retry_interval_micros=2000000",
            *spec.extra_server_flags,
        ]
        self.processes.record_argv(name, argv)  # the watchdog starts it (and restarts it) with this command line
        host = connect_address(bind_address)
        return InstanceAddress(
            name=name, rest_url=f"http://{host}:{rest_port}", grpc_target=f"{host}:{grpc_port}", store_path=store_path
        )

    def _plan_nginx(self, nginx: str, spec: FleetSpec, addresses: list[InstanceAddress]) -> None:
        nginx_dir = self.dir / "nginx"
        conf = nginx_dir / "nginx.conf"
        text = render_config(
            addresses=addresses,
            host=spec.lb_address,
            rest_port=spec.rest_port,
            grpc_port=spec.grpc_port,
            nginx_dir=nginx_dir,
            log_dir=self.log_dir,
        )
        enter = spec.lb_host.enter if spec.lb_host is not None else ()
        write_config(nginx, conf, text, self.log_dir, enter=enter)
        self.processes.record_argv(NGINX, [*enter, *nginx_argv(nginx, conf, self.log_dir)])

    def _wait_ready(self, state: FleetState, *, nginx: bool = True) -> None:
        listeners = [_listener(address, self.processes.log_path(address.name)) for address in state.instances]
        wait_listening(listeners, timeout_s=START_TIMEOUT_S)
        if nginx:
            error_log = self.log_dir / "nginx-error.log"
            host = urlsplit(state.rest_url).hostname or HOST
            lb = Listener(name=NGINX, pid=state.nginx_pid, host=host, ports=(_port(state.rest_url),), log=error_log)
            wait_listening([lb], timeout_s=START_TIMEOUT_S)

    # -- one instance (tests, operators) ----------------------------------------------------------------------------

    def stop_instance(self, name: str, *, kill: bool = False) -> None:
        """Stop one model server (SIGKILL with ``kill``, as a crash would). It is held down: the watchdog leaves it
        stopped until ``start_instance`` or ``runway fleet up``, as compose leaves a container stopped by hand.

        A SIGTERM stop first takes the instance out of nginx's rotation and waits for the requests nginx sent it:
        gRPC servers cancel the calls that reach them while they shut down, which no load balancer can retry.
        """
        address = self._address(name)
        self.processes.hold(name)
        if not kill:
            self._rotate(address, serving=False)
        self.processes.stop(name, address.pid, kill=kill)
        if kill:
            self._rotate(address, serving=False)

    def _rotate(self, address: InstanceAddress, *, serving: bool) -> None:
        state = self._require_state()
        if set_in_rotation(self.dir / "nginx" / "nginx.conf", address, serving=serving) and pid_alive(state.nginx_pid):
            assert state.nginx_pid is not None
            reload(state.nginx_pid)

    def start_instance(self, name: str) -> int:
        """Start one model server again with the arguments it had; returns its new pid once it listens."""
        state = self._require_state()
        address = self._address(name)
        self.processes.release(name)
        if pid_alive(address.pid):
            return address.pid or 0
        watchdog = self.processes.recorded_pid(WATCHDOG)
        if pid_alive(watchdog):
            assert watchdog is not None
            os.kill(watchdog, signal.SIGHUP)  # it starts the released instance now
            if not wait_for(lambda: pid_alive(self._address(name).pid), timeout=WATCHDOG_START_S, interval=0.1):
                raise FleetError(f"the watchdog did not start {name}; see {self.processes.log_path(WATCHDOG)}")
            restarted = self._address(name)
        else:
            argv = self.processes.recorded_argv(name)
            with self.processes.locked():
                pid = self.processes.spawn(name, argv, env=own_environment(self.settings.as_env()), banner="restart")
                restarted = replace(address, pid=pid)
                instances = [restarted if a.name == name else a for a in state.instances]
                write_fleet_state(self.settings.home, replace(state, instances=instances))
        self._wait_ready(replace(state, instances=[restarted]), nginx=False)
        self._rotate(restarted, serving=True)
        return restarted.pid or 0

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
        """Stop the watchdog, nginx and every instance; remove ``fleet.json``. Returns what was running."""
        pids = self.processes.recorded_pids()
        state = self.state()
        if state is not None:
            pids.update({a.name: a.pid for a in state.instances if a.pid})
            if state.nginx_pid:
                pids[NGINX] = state.nginx_pid
        running = [name for name, pid in pids.items() if pid_alive(pid) and is_ours(pid)]
        # The watchdog first, or it would restart what is being stopped; it stops nginx, then the instances.
        self.processes.stop(WATCHDOG, pids.pop(WATCHDOG, None), timeout_s=STOP_WATCHDOG_S)
        # Whatever it did not stop (it was not running, or it was killed): nginx first, then each instance.
        for name, pid in sorted(pids.items(), key=lambda item: item[0] != NGINX):
            self.processes.stop(name, pid)
        fleet_state_path(self.settings.home).unlink(missing_ok=True)
        for leftover in [*self.processes.pid_dir.glob("*.held"), *(self.processes.pid_dir / f for f in SPENT)]:
            leftover.unlink(missing_ok=True)
        stopped = sorted(running, key=lambda name: (name != WATCHDOG, name != NGINX, name))
        self._say(f"fleet down: stopped {', '.join(stopped) or 'nothing (not running)'}")
        return stopped

    def status(self) -> dict[str, Any]:
        """Each process's liveness and restarts, the watchdog's, and per model what each instance reports."""
        return fleet_status(self.state(), self.store, watchdog=watchdog_report(self.dir))

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
    "connect_address",
    "default_server",
    "find_nginx",
    "instance_name",
    "pid_alive",
]
