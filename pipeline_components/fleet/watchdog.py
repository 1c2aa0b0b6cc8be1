"""The local fleet's watchdog: one small process per fleet that starts nginx and the model servers and restarts any
of them that dies.

Why a process of our own. ``runway fleet up`` and ``runway fleet down`` are separate commands, so something must
outlive ``fleet up`` to notice a death. The watchdog is that something, and it is the *parent* of the processes it
supervises, so it learns each exit status (a pid poller would not) and logs it. It keeps the
records the rest of the fleet already reads (``instances/<name>.pid``, ``fleet.json``'s pids), so ``fleet status``,
the rollout and the console need no second source of truth. supervisord (Debian and PyPI) would do the restarting
too, but it gives up on a process after ``startretries`` fast failures (FATAL, until someone runs
``supervisorctl``), it would own the pids behind an XML-RPC socket, and it would add a dependency and a
configuration format to the orchestrator for about 200 lines of code here; systemd user units are not available
in CI containers.

What it does, the way docker compose (``restart: unless-stopped``) and Kubernetes (``restartPolicy: Always``)
restart the same servers:

- a process that exits, whatever its status, is started again with the command line recorded for it
  (``instances/<name>.argv``); a model server reads ``--model_config_file`` (the store's ``models.config``, which
  only the rollout writes; an instance that sees the store under another path gets its copy re-rendered first)
  when it starts, so it comes back with the stable version the last rollout wrote;
- each restart waits a bounded backoff: ``first_delay_s`` (0.5 s) after a crash, doubled for each consecutive
  crash up to ``max_delay_s`` (30 s), reset once the process has run ``reset_after_s`` (60 s). Docker starts at
  100 ms and resets after 10 s; the kubelet starts at 10 s, caps at 5 min and resets after 10 min; this sits in
  between because a model server takes seconds to start and nginx covers its absence. It never gives up (a
  CrashLoopBackOff, not supervisord's FATAL): ``fleet status`` shows the restarts and the last exit status;
- a process stopped on purpose (``LocalFleet.stop_instance``: ``instances/<name>.held``) stays down, as compose
  leaves a container stopped by hand, until ``start_instance`` or ``runway fleet up`` releases it;
- a model server that runs but stops answering (its host cut off, the process hung) is taken out of nginx's
  rotation, and put back once it answers and has caught up with ``models.config`` (``fleet.readiness``, in a
  thread of this process);
- SIGHUP (sent by ``runway fleet up``) starts every process that is down at once, skipping the backoff;
- SIGTERM (sent by ``runway fleet down``) stops nginx, then every model server, then the watchdog itself; it also
  stops everything and exits if ``fleet.json`` disappears, so it never outlives its fleet.

Every event goes to ``logs/watchdog.log`` (``serving-1 (pid 4242) exited: killed by signal 9 (SIGKILL) after
73.0 s; restart 1 in 0.5 s``) and the current state to ``instances/watchdog.json`` (``fleet.restarts`` reads it).
A watchdog started for a fleet whose processes already run (``fleet up`` after the watchdog itself was killed)
adopts them: it polls their pids, and the exit status of a process it did not start is reported as unknown. A
process found running under its recorded pid when the watchdog is about to restart it (someone else, ``fleet up``
or ``deploy up``, started it meanwhile) is adopted too, never started twice.

``runway deploy`` runs one more watchdog over its Airflow components (``--processes``: the scheduler, the
dag-processor, the triggerer, the api-server, the Celery workers and the loopback publisher), with the same policy;
there it has no fleet to follow (no ``fleet.json``, no readiness probes), restarts each process with the
environment recorded for it (``Supervisor.record_env``: its host's name and address), and on SIGTERM leaves them
running, because ``deploy down`` stops them itself, workers before the control host.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import FrameType

from pipeline_components.durable import atomic_write
from pipeline_components.fleet import fleet_state_path, read_fleet_state, write_fleet_state
from pipeline_components.fleet.readiness import READINESS_FILE, Readiness
from pipeline_components.fleet.store import ModelStore
from pipeline_components.fleet.supervisor import Supervisor, is_ours
from pipeline_components.processes import pid_alive, stop_pid

WATCHDOG = "watchdog"
STATUS_FILE = "watchdog.json"
SPENT = (STATUS_FILE, READINESS_FILE)  # what `fleet down` removes: a new fleet starts with neither
NGINX = "nginx"
POLL_S = 0.2


@dataclass(frozen=True, kw_only=True)
class RestartPolicy:
    """The backoff between a process's exit and its restart (see the module docstring for why these values)."""

    first_delay_s: float = 0.5
    max_delay_s: float = 30.0
    reset_after_s: float = 60.0


@dataclass
class Watched:
    """One supervised process, as ``watchdog.json`` records it."""

    pid: int | None = None
    state: str = "starting"  # running | backoff | held | stopped
    restarts: int = 0
    last_exit: str | None = None
    last_exit_at: float | None = None
    restarted_at: float | None = None  # wall clock of the last restart
    started_at: float = 0.0
    next_start_at: float = 0.0
    delay_s: float = 0.0


def describe_exit(returncode: int | None) -> str:
    """``exit status 1`` or ``killed by signal 9 (SIGKILL)`` for a ``Popen.returncode`` (None: unknown)."""
    if returncode is None:
        return "exit status unknown (not started by this watchdog)"
    if returncode < 0:
        return f"killed by signal {-returncode} ({signal.Signals(-returncode).name})"
    return f"exit status {returncode}"


def watchdog_argv(fleet_dir: Path, names: list[str], *, fleet: bool = True) -> list[str]:
    """The command line of a fleet's watchdog supervising ``names`` (nginx last); with ``fleet=False``, of a
    watchdog over other processes recorded under ``fleet_dir`` (a deployment's Airflow components)."""
    mode = [] if fleet else ["--processes"]
    return [sys.executable, "-m", "pipeline_components.fleet.watchdog", "--fleet-dir", str(fleet_dir), *mode, *names]


class Watchdog:
    """The loop: start what is down (after its backoff), reap what exits, record both."""

    def __init__(
        self, fleet_dir: Path, names: list[str], policy: RestartPolicy | None = None, *, fleet: bool = True
    ) -> None:
        self.fleet_dir = fleet_dir
        self.fleet = fleet
        self.names = names
        self.policy = policy or RestartPolicy()
        self.processes = Supervisor(fleet_dir)
        self.status_path = self.processes.pid_dir / STATUS_FILE
        self.watched = {name: Watched() for name in names}
        # The processes this watchdog started, kept so that their exit status is ours to read (Supervisor.start).
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._carry_over_counts()
        self._stopping = False
        self._kicked = False
        self._seen_fleet = False

    def _carry_over_counts(self) -> None:
        """A watchdog started again (``fleet up`` repairing the fleet) continues the restart counts."""
        try:
            previous = json.loads(self.status_path.read_text()).get("processes", {})
        except (OSError, ValueError):
            return
        for name, watched in self.watched.items():
            entry = previous.get(name) or {}
            watched.restarts = int(entry.get("restarts", 0))
            watched.last_exit = entry.get("last_exit")
            watched.last_exit_at = entry.get("last_exit_at")
            watched.restarted_at = entry.get("restarted_at")

    def say(self, line: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}", flush=True)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGHUP, self._on_hup)
        self.say(f"watchdog (pid {os.getpid()}) supervising {', '.join(self.names)}")
        self._adopt()
        readiness = Readiness(self.fleet_dir, running=self._probed, say=self.say) if self.fleet else None
        if readiness is not None:
            readiness.start()
        while not self._stopping:
            self._tick()
            time.sleep(POLL_S)
        if readiness is None:
            self.say("watchdog stopped; its processes keep running")
            return 0
        readiness.stop()
        self._stop_all()
        return 0

    def _probed(self, name: str) -> int | None:
        """The pid ``fleet.readiness`` probes for ``name``: a model server this watchdog has running, else None."""
        watched = self.watched.get(name)
        return watched.pid if name != NGINX and watched is not None and watched.state == "running" else None

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._kicked = True

    def _adopt(self) -> None:
        for name, watched in self.watched.items():
            pid = self.processes.recorded_pid(name)
            if pid and pid_alive(pid) and is_ours(pid):
                watched.pid, watched.state, watched.started_at = pid, "running", time.monotonic()
                self.say(f"{name} (pid {pid}) already running: adopted")
            elif pid:  # it ended while no watchdog ran: nobody saw how
                watched.last_exit, watched.last_exit_at = (
                    "exit status unknown (ended while no watchdog ran)",
                    time.time(),
                )
                self.say(f"{name} (pid {pid}) is not running: {watched.last_exit}; starting it")
        self._write_status()

    def _fleet_gone(self) -> bool:
        """Whether the fleet this watchdog follows was taken down (its ``fleet.json`` seen, then gone)."""
        if fleet_state_path(self.fleet_dir.parent).exists():
            self._seen_fleet = True
            return False
        return self._seen_fleet

    def _tick(self) -> None:
        if self.fleet and self._fleet_gone():
            self.say("fleet.json is gone (the fleet was taken down): stopping")
            self._stopping = True
            return
        kicked, self._kicked = self._kicked, False
        changed = False
        now = time.monotonic()
        for name, watched in self.watched.items():
            if watched.pid is not None:
                status = self._exited(name, watched)
                if status is False:
                    if watched.delay_s and now - watched.started_at > self.policy.reset_after_s:
                        watched.delay_s = 0.0  # it ran long enough: the next crash restarts quickly again
                    continue
                self._record_exit(name, watched, status, now)
                changed = True
            if self.processes.held(name):
                if watched.state != "held":
                    watched.state, changed = "held", True
                    self.say(f"{name} is held down (stopped on purpose): not restarted until released")
                continue
            if watched.state == "held":  # released: start at once
                watched.next_start_at = now
            if kicked or now >= watched.next_start_at:
                changed |= self._start(name, watched)
        if changed:
            self._write_status()

    def _exited(self, name: str, watched: Watched) -> int | bool | None:
        """False while the process runs; else its return code (None when it was not our child)."""
        child = self._children.get(name)
        if child is not None and child.pid == watched.pid:
            code = child.poll()
            return False if code is None else code
        return False if pid_alive(watched.pid) else None

    def _record_exit(self, name: str, watched: Watched, status: int | None, now: float) -> None:
        ran = now - watched.started_at
        watched.delay_s = (
            self.policy.first_delay_s if not watched.delay_s else min(2 * watched.delay_s, self.policy.max_delay_s)
        )
        watched.last_exit, watched.last_exit_at = describe_exit(status), time.time()
        then = (
            "held down (stopped on purpose)"
            if self.processes.held(name)
            else f"restart {watched.restarts + 1} in {watched.delay_s:.1f} s"
        )
        self.say(f"{name} (pid {watched.pid}) exited: {watched.last_exit} after {ran:.1f} s; {then}")
        watched.pid, watched.state = None, "backoff"
        self._children.pop(name, None)
        watched.next_start_at = now + watched.delay_s

    def _start(self, name: str, watched: Watched) -> bool:
        # Started before under this fleet (by `fleet up`'s watchdog or this one): then this start is a restart.
        first = self.processes.recorded_pid(name) is None
        try:
            argv = self.processes.recorded_argv(name)
            self._refresh_config(name)
            # Under the fleet's lock: `fleet.json` and the pid file name the new pid together, and a process that
            # `fleet up` or `deploy up` started meanwhile (they take the lock too) is seen, and adopted.
            with self.processes.locked():
                running = self.processes.recorded_pid(name)
                if running and pid_alive(running) and is_ours(running):
                    watched.pid, watched.state, watched.started_at = running, "running", time.monotonic()
                    self.say(f"{name} (pid {running}) was started by someone else meanwhile: adopted")
                    return True
                env = self.processes.recorded_env(name)
                child = self.processes.start(name, argv, env=env, banner=f"started by the watchdog (pid {os.getpid()})")
                self._children[name], pid = child, child.pid
                self._record_pid(name, pid)
        except Exception as error:  # a broken record must not end the supervision of the others
            watched.delay_s = min(2 * watched.delay_s or self.policy.first_delay_s, self.policy.max_delay_s)
            watched.next_start_at = time.monotonic() + watched.delay_s
            self.say(f"{name}: cannot start ({type(error).__name__}: {error}); next try in {watched.delay_s:.1f} s")
            return False
        if not first:
            watched.restarts += 1
            watched.restarted_at = time.time()
        watched.pid, watched.state, watched.started_at = pid, "running", time.monotonic()
        self.say(f"{name} {'started' if first else f'restarted (restart {watched.restarts})'}: pid {pid}")
        return True

    def _refresh_config(self, name: str) -> None:
        """An instance that sees the store under another path reads its own copy of ``models.config``
        (``instances/<name>.models.config``, rendered for that path): bring the copy up to date with the store's
        file before it starts, so it too comes back with what the last rollout wrote."""
        if not self.fleet:
            return
        copy = self.processes.pid_dir / f"{name}.models.config"
        state = read_fleet_state(self.fleet_dir.parent)
        address = next((a for a in state.instances if a.name == name), None) if state else None
        if state is None or address is None or not copy.is_file():
            return
        store = ModelStore(Path(state.store))
        with store.locked():
            atomic_write(copy, store.render_config(store.read_config(), store_path=address.store_path))

    def _record_pid(self, name: str, pid: int) -> None:
        """Write the new pid into ``fleet.json`` (once ``fleet up`` has written it)."""
        home = self.fleet_dir.parent
        state = read_fleet_state(home) if self.fleet else None
        if state is None:
            return
        if name == NGINX:
            write_fleet_state(home, replace(state, nginx_pid=pid))
            return
        instances = [replace(a, pid=pid) if a.name == name else a for a in state.instances]
        write_fleet_state(home, replace(state, instances=instances))

    def _stop_all(self) -> None:
        self.say("stopping nginx and every model server")
        nginx = self.watched.get(NGINX)
        if nginx is not None and nginx.pid:  # first, so no new request reaches a model server that is stopping
            stop_pid(nginx.pid)
        servers = [w for name, w in self.watched.items() if name != NGINX and w.pid]
        for watched in servers:  # all at once, then wait for each
            if watched.pid and pid_alive(watched.pid) and is_ours(watched.pid):
                os.kill(watched.pid, signal.SIGTERM)
        for watched in servers:
            stop_pid(watched.pid)
        for watched in self.watched.values():
            watched.pid, watched.state = None, "stopped"
        self._write_status()
        self.say("watchdog stopped")

    def _write_status(self) -> None:
        processes = {}
        for name, watched in self.watched.items():
            entry = asdict(watched)
            for internal in ("started_at", "next_start_at", "delay_s"):
                entry.pop(internal)
            processes[name] = entry
        report = {"pid": os.getpid(), "updated": time.time(), "processes": processes}
        atomic_write(self.status_path, json.dumps(report, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline_components.fleet.watchdog", description=__doc__)
    parser.add_argument("--fleet-dir", type=Path, required=True, help="$RUNWAY_HOME/fleet of the fleet to supervise")
    parser.add_argument(
        "--processes",
        action="store_true",
        help="supervise other processes recorded there (a deployment's Airflow components): no fleet.json, no "
        "readiness probes, and SIGTERM leaves them running",
    )
    parser.add_argument("names", nargs="+", help="the processes recorded under <fleet dir>/instances/")
    args = parser.parse_args(argv)
    return Watchdog(args.fleet_dir, list(args.names), fleet=not args.processes).run()


if __name__ == "__main__":
    sys.exit(main())
