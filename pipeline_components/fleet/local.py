"""The local fleet: N model servers on loopback reading the shared model store, behind nginx.

``runway fleet up`` starts them, ``runway fleet down`` stops them (no orphans: every process is started in its own
session, its pid recorded, and stopped with SIGTERM, then SIGKILL). Everything lives under ``$RUNWAY_HOME/fleet``:

    fleet.json                 the fleet's addresses (see pipeline_components.fleet), written once all are ready
    nginx/nginx.conf           generated from infra/nginx/fleet.conf.template
    instances/<name>.pid       one per model server (and nginx.pid)
    logs/<name>.log            each process's output

Each instance is ``tensorflow_model_server`` when that binary is on PATH, otherwise ``scripts/runway-model-server``,
started with ``--model_config_file=<store>/models.config`` (the rollout keeps that file right, so a restarted
instance comes back with the current versions and labels).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_components.errors import RunwayError
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
from pipeline_components.fleet.store import ModelStore, atomic_write
from pipeline_components.settings import CHECKOUT, Settings

NGINX_TEMPLATE = CHECKOUT / "infra" / "nginx" / "fleet.conf.template"
HOST = "127.0.0.1"
DEFAULT_INSTANCE_BASE_PORT = 18500  # instance i: gRPC 18500 + 10 i, REST 18501 + 10 i
START_TIMEOUT_S = 240.0


class FleetError(RunwayError):
    """The local fleet could not be started, stopped or described."""


@dataclass(frozen=True, kw_only=True)
class FleetSpec:
    instances: int = DEFAULT_INSTANCES
    rest_port: int = DEFAULT_REST_PORT
    grpc_port: int = DEFAULT_GRPC_PORT
    instance_base_port: int = DEFAULT_INSTANCE_BASE_PORT
    instance_ports: list[tuple[int, int]] | None = None  # (gRPC, REST) per instance; overrides the base port
    server: str | None = None  # a server binary; default: tensorflow_model_server if on PATH, else runway's
    store_paths: dict[str, str] | None = None  # instance name -> the store as that instance sees it (tests)
    extra_server_flags: tuple[str, ...] = ()


def find_nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None)
    if not found:
        raise FleetError(
            "nginx is not installed; it balances the local fleet. Install Debian's package: "
            "`apt-get install -y nginx` (make setup does it when run as root)"
        )
    return found


def default_server() -> str:
    return shutil.which("tensorflow_model_server") or str(CHECKOUT / "scripts" / "runway-model-server")


def instance_name(index: int) -> str:
    return f"serving-{index}"


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours (killed, not yet reaped) is not alive.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class LocalFleet:
    """The local fleet under ``settings.home``."""

    def __init__(self, settings: Settings, say: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.dir = fleet_dir(settings.home)
        self.store = ModelStore(settings.model_store)
        self._say = say or (lambda line: None)

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

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
        ports = spec.instance_ports or [
            (spec.instance_base_port + 10 * i, spec.instance_base_port + 10 * i + 1) for i in range(spec.instances)
        ]
        taken = [p for p in (spec.rest_port, spec.grpc_port, *(p for pair in ports for p in pair)) if port_open(p)]
        if taken:
            raise FleetError(
                f"port(s) {taken} already in use on {HOST}; stop what uses them or pick others "
                "(runway fleet up --rest-port/--grpc-port/--instance-base-port)"
            )
        for folder in (self.log_dir, self.dir / "instances", self.dir / "nginx" / "tmp"):
            folder.mkdir(parents=True, exist_ok=True)
        self.store.root.mkdir(parents=True, exist_ok=True)
        with self.store.locked():
            if not self.store.config_path.is_file():
                self.store.write_config({})
        addresses = []
        try:
            for index, (grpc_port, rest_port) in enumerate(ports):
                name = instance_name(index)
                store_path = (spec.store_paths or {}).get(name, str(self.store.root))
                pid = self._start_instance(name, server, grpc_port, rest_port, store_path, spec.extra_server_flags)
                addresses.append(
                    InstanceAddress(
                        name=name,
                        rest_url=f"http://{HOST}:{rest_port}",
                        grpc_target=f"{HOST}:{grpc_port}",
                        store_path=store_path,
                        pid=pid,
                    )
                )
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
        if store_path == str(self.store.root):
            return self.store.config_path
        path = self.dir / "instances" / f"{name}.models.config"
        atomic_write(path, self.store.render_config(self.store.read_config(), store_path=store_path))
        return path

    def _start_instance(
        self, name: str, server: str, grpc_port: int, rest_port: int, store_path: str, extra: tuple[str, ...]
    ) -> int:
        argv = [
            server,
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            f"--model_config_file={self._instance_config_file(name, store_path)}",
            # Labels in the file name versions that are loaded only after start-up (TF Serving refuses them else).
            "--allow_version_labels_for_unavailable_models",
            # A version that fails to load is retried once, quickly: the rollout's bounded wait reports it.
            "--max_num_load_retries=1",
            "--load_retry_interval_micros=2000000",
            *extra,
        ]
        pid = self._spawn(name, argv, " ".join(argv))
        (self.dir / "instances" / f"{name}.argv").write_text("\n".join(argv) + "\n")
        return pid

    def _spawn(self, name: str, argv: list[str], banner: str) -> int:
        """Start one instance in its own session, logging to ``<log dir>/<name>.log``; record and return its pid."""
        with open(self.log_dir / f"{name}.log", "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {banner}\n".encode())
            log.flush()
            process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.settings.as_env(), "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        (self.dir / "instances" / f"{name}.pid").write_text(f"{process.pid}\n")
        return process.pid

    def render_nginx_config(self, spec: FleetSpec, addresses: list[InstanceAddress]) -> str:
        def servers(kind: str) -> str:
            lines = []
            for address in addresses:
                target = address.rest_url.removeprefix("http://") if kind == "rest" else address.grpc_target
                lines.append(f"        server {target} max_fails=1 fail_timeout=5s;")
            return "\n".join(lines)

        nginx_dir = self.dir / "nginx"
        values = {
            "user": "user root;" if os.geteuid() == 0 else "",
            "nginx_dir": str(nginx_dir),
            "log_dir": str(self.log_dir),
            "host": HOST,
            "rest_port": str(spec.rest_port),
            "grpc_port": str(spec.grpc_port),
            "rest_servers": servers("rest"),
            "grpc_servers": servers("grpc"),
            "tries": str(max(2, len(addresses))),
        }
        text = NGINX_TEMPLATE.read_text()
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        return text

    def _start_nginx(self, nginx: str, spec: FleetSpec, addresses: list[InstanceAddress]) -> int:
        nginx_dir = self.dir / "nginx"
        conf = nginx_dir / "nginx.conf"
        atomic_write(conf, self.render_nginx_config(spec, addresses))
        check = subprocess.run(
            [nginx, "-t", "-q", "-p", str(nginx_dir), "-c", str(conf), "-e", str(self.log_dir / "nginx-error.log")],
            capture_output=True,
            text=True,
        )
        if check.returncode:
            raise FleetError(f"nginx refuses the generated config {conf}:\n{check.stderr.strip()}")
        with open(self.log_dir / "nginx.log", "ab") as log:
            process = subprocess.Popen(
                [nginx, "-p", str(nginx_dir), "-c", str(conf), "-e", str(self.log_dir / "nginx-error.log")],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (self.dir / "instances" / "nginx.pid").write_text(f"{process.pid}\n")
        return process.pid

    def _wait_ready(self, state: FleetState, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        pending = {address.name: address for address in state.instances}
        while pending:
            for name, address in list(pending.items()):
                if not pid_alive(address.pid):
                    raise FleetError(f"model server {name} exited during start-up; see {self.log_dir / name}.log")
                rest_port = int(address.rest_url.rsplit(":", 1)[1])
                grpc_port = int(address.grpc_target.rsplit(":", 1)[1])
                if port_open(rest_port) and port_open(grpc_port):
                    del pending[name]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise FleetError(
                    f"model server(s) {sorted(pending)} not listening after {timeout_s:.0f} s; see {self.log_dir}"
                )
            time.sleep(0.5)
        rest_port = int(state.rest_url.rsplit(":", 1)[1])
        while not port_open(rest_port):
            if not pid_alive(state.nginx_pid):
                raise FleetError(f"nginx exited during start-up; see {self.log_dir / 'nginx-error.log'}")
            if time.monotonic() > deadline:
                raise FleetError(f"nginx not listening on {rest_port}; see {self.log_dir / 'nginx-error.log'}")
            time.sleep(0.2)

    # -- one instance (tests, operators) ----------------------------------------------------------------------------

    def stop_instance(self, name: str, *, kill: bool = False) -> None:
        """Stop one model server (SIGKILL with ``kill``: a crash); the load balancer routes around it."""
        state = self._require_state()
        address = next((a for a in state.instances if a.name == name), None)
        if address is None:
            raise FleetError(f"no instance {name}; the fleet has {[a.name for a in state.instances]}")
        _stop_pid(address.pid, kill=kill)

    def start_instance(self, name: str) -> int:
        """Start one model server again with the arguments it had; returns its new pid once it listens."""
        state = self._require_state()
        index = next((i for i, a in enumerate(state.instances) if a.name == name), None)
        if index is None:
            raise FleetError(f"no instance {name}")
        address = state.instances[index]
        if pid_alive(address.pid):
            return address.pid or 0
        argv = (self.dir / "instances" / f"{name}.argv").read_text().split("\n")
        argv = [arg for arg in argv if arg]
        pid = self._spawn(name, argv, "restart")
        instances = list(state.instances)
        instances[index] = InstanceAddress(**{**address.__dict__, "pid": pid})
        new_state = FleetState(**{**state.__dict__, "instances": instances})
        write_fleet_state(self.settings.home, new_state)
        self._wait_ready(FleetState(**{**new_state.__dict__, "instances": [instances[index]]}))
        return pid

    # -- down / status ----------------------------------------------------------------------------------------------

    def running(self, state: FleetState | None = None) -> bool:
        state = state or self.state()
        return bool(state) and state is not None and pid_alive(state.nginx_pid)

    def down(self) -> list[str]:
        """Stop nginx and every instance; remove ``fleet.json``. Returns what was stopped."""
        stopped = []
        pid_dir = self.dir / "instances"
        state = self.state()
        pids: dict[str, int] = {}
        if pid_dir.is_dir():
            for pid_file in pid_dir.glob("*.pid"):
                with contextlib.suppress(ValueError):
                    pids[pid_file.stem] = int(pid_file.read_text().strip())
        if state is not None:
            pids.update({a.name: a.pid for a in state.instances if a.pid})
            if state.nginx_pid:
                pids["nginx"] = state.nginx_pid
        for name, pid in sorted(pids.items(), key=lambda item: item[0] != "nginx"):  # nginx first: no new traffic
            if pid_alive(pid) and _is_ours(pid):
                _stop_pid(pid)
                stopped.append(name)
            (pid_dir / f"{name}.pid").unlink(missing_ok=True)
        fleet_state_path(self.settings.home).unlink(missing_ok=True)
        self._say(f"fleet down: stopped {', '.join(stopped) or 'nothing (not running)'}")
        return stopped

    def status(self) -> dict[str, Any]:
        """Each process's liveness and, per model in models.config, what each instance reports."""
        from pipeline_components.fleet.instances import Instance, InstanceError

        state = self.state()
        if state is None:
            return {"running": False}
        models = self.store.read_config()
        report: dict[str, Any] = {
            "running": self.running(state),
            "rest_url": state.rest_url,
            "grpc_target": state.grpc_target,
            "server": state.server,
            "nginx": {"pid": state.nginx_pid, "alive": pid_alive(state.nginx_pid)},
            "models": {name: {"versions": list(m.versions), "labels": m.labels} for name, m in models.items()},
            "instances": [],
        }
        for address in state.instances:
            entry: dict[str, Any] = {"name": address.name, "pid": address.pid, "alive": pid_alive(address.pid)}
            instance = Instance(address)
            try:
                for model in models:
                    try:
                        versions = instance.model_status(model, timeout_s=2.0)
                    except InstanceError as error:
                        entry["error"] = str(error)
                        break
                    entry.setdefault("models", {})[model] = {str(v): s.state for v, s in sorted(versions.items())}
            finally:
                instance.close()
            report["instances"].append(entry)
        return report

    def _require_state(self) -> FleetState:
        state = self.state()
        if state is None:
            raise FleetError(f"no local fleet under {self.dir}; start one with `runway fleet up`")
        return state


def _is_ours(pid: int) -> bool:
    """Only stop a process that is a model server or nginx (a recycled pid could be anything)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return any(word in cmdline for word in ("nginx", "model_server", "model-server", "pipeline_components.serving"))


def _stop_pid(pid: int | None, *, kill: bool = False, timeout_s: float = 15.0) -> None:
    if not pid or not pid_alive(pid):
        return
    try:
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if pid_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        while pid_alive(pid) and time.monotonic() < deadline + 5:
            time.sleep(0.1)
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
