"""Local multi-process training clusters, launched and supervised by the Trainer node itself.

``multi_worker_mirrored``: N worker processes on loopback, each with its ``TF_CONFIG`` (worker 0 is the chief and
exports the model); the Trainer's own process only supervises. ``parameter_server``: parameter servers and workers
run ``tf.distribute.Server`` in child processes; the Trainer's process is the coordinator (``ClusterCoordinator``
inside keras' ``model.fit``).

Every child runs in its own process group, dies with the Trainer (``PR_SET_PDEATHSIG``), and is killed on every
exit path of the Trainer (normal end, exception, ``atexit``, SIGTERM/SIGINT/SIGHUP from a cancelled Airflow task).
A watchdog fails the node as soon as one child dies, with the end of that child's log in the error.
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pipeline_components.errors import TrainingWorkerError
from pipeline_components.ports import free_ports
from pipeline_components.processes import log_tail

log = logging.getLogger(__name__)

TASK_ENV = "RUNWAY_TRAINING_TASK"  # "worker:1" in a cluster process; absent in the Trainer itself
SPEC_ENV = "RUNWAY_TRAINING_SPEC"
LOG_TAIL_LINES = 40
_PR_SET_PDEATHSIG = 1


def cluster_spec(roles: dict[str, int], host: str = "127.0.0.1") -> dict[str, list[str]]:
    """``{"worker": ["127.0.0.1:PORT", ...], ...}`` with a fresh free port per task."""
    ports = iter(free_ports(sum(roles.values()), host))
    return {role: [f"{host}:{next(ports)}" for _ in range(count)] for role, count in roles.items() if count}


def tf_config(cluster: dict[str, list[str]], role: str, index: int) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": role, "index": index}})


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the Trainer dies, even by SIGKILL (no orphan survives)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with status {code}"


@dataclass
class Member:
    role: str
    index: int
    process: subprocess.Popen[bytes]
    log_path: Path
    serves_forever: bool  # a tf.distribute.Server: any exit is a failure

    @property
    def name(self) -> str:
        return f"{self.role} {self.index}"


_LIVE: list[LocalCluster] = []
_HANDLERS_INSTALLED = False


def _stop_all() -> None:
    for cluster in list(_LIVE):
        cluster.stop()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _stop_all()
    previous = _PREVIOUS_HANDLERS.get(signum)
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


_PREVIOUS_HANDLERS: dict[int, Any] = {}


def _install_handlers() -> None:
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    atexit.register(_stop_all)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            _PREVIOUS_HANDLERS[signum] = signal.getsignal(signum)
            signal.signal(signum, _on_signal)
    _HANDLERS_INSTALLED = True


@dataclass
class LocalCluster:
    """Child processes of one training run; ``stop()`` is idempotent and runs on every exit path."""

    log_dir: Path
    members: list[Member] = field(default_factory=list)
    failure: TrainingWorkerError | None = None
    _watchdog: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _install_handlers()
        _LIVE.append(self)

    def launch(self, role: str, index: int, argv: list[str], env: dict[str, str], *, serves_forever: bool) -> Member:
        log_path = self.log_dir / f"{role}-{index}.log"
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                start_new_session=True,  # its own process group: killed as a group, untouched by terminal signals
                preexec_fn=_die_with_parent,
            )
        member = Member(role, index, process, log_path, serves_forever)
        self.members.append(member)
        log.info("started %s (pid %d), log %s", member.name, process.pid, log_path)
        return member

    def failed_member(self) -> TrainingWorkerError | None:
        """The first member that exited with a failure (or at all, for a server), as the error to raise."""
        for member in self.members:
            code = member.process.poll()
            if code is None or (code == 0 and not member.serves_forever):
                continue
            text = log_tail(member.log_path, LOG_TAIL_LINES)
            return TrainingWorkerError(
                f"training {member.name} (pid {member.process.pid}) {describe_exit(code)}; every other process of "
                f"the cluster was stopped. Last lines of its log {member.log_path}:\n{text}",
                role=member.role,
                index=member.index,
                log_tail=text,
            )
        return None

    def wait(self, timeout_s: float, poll_s: float = 0.5) -> None:
        """Until every member exited 0; the first failure or the timeout stops all and raises.

        Raises:
            TrainingWorkerError: a member died (its log tail in the message) or training ran past ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                failure = self.failed_member()
                if failure:
                    raise failure
                if all(m.process.poll() == 0 for m in self.members):
                    return
                if time.monotonic() > deadline:
                    raise TrainingWorkerError(
                        f"training did not finish within training.worker_timeout_s = {timeout_s:g}s; the cluster "
                        f"was stopped (logs in {self.log_dir})"
                    )
                time.sleep(poll_s)
        finally:
            self.stop()

    def start_watchdog(self, poll_s: float = 0.5) -> None:
        """For a cluster the Trainer's own thread trains against (parameter_server): a member that dies interrupts
        that thread; ``raise_failure()`` then turns the interruption into the member's error."""

        def watch() -> None:
            while not self._stopping.wait(poll_s):
                failure = self.failed_member()
                if failure:
                    self.failure = failure
                    log.error("%s", failure)
                    _thread.interrupt_main()
                    return

        self._watchdog = threading.Thread(target=watch, name="training-watchdog", daemon=True)
        self._watchdog.start()

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM every member's process group, then SIGKILL what is left; reap them all."""
        self._stopping.set()
        live = [m for m in self.members if m.process.poll() is None]
        for member in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(member.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for member in live:
            with contextlib.suppress(subprocess.TimeoutExpired):
                member.process.wait(max(0.0, deadline - time.monotonic()))
        for member in self.members:
            # the group too: anything a member started itself
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(member.process.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                member.process.wait(5)
        if self in _LIVE:
            _LIVE.remove(self)

    def pids(self) -> list[int]:
        return [m.process.pid for m in self.members]


def worker_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline_components.training.worker", *args]


def run_multi_worker(spec_path: Path, *, workers: int, log_dir: Path, timeout_s: float) -> None:
    """Start ``workers`` processes that each train under ``MultiWorkerMirroredStrategy``; wait for all.

    Raises:
        TrainingWorkerError: a worker died (the others are stopped) or the run timed out.
    """
    cluster = LocalCluster(log_dir)
    spec = cluster_spec({"worker": workers})
    try:
        for index in range(workers):
            env = {
                "TF_CONFIG": tf_config(spec, "worker", index),
                TASK_ENV: f"worker:{index}",
                SPEC_ENV: str(spec_path),
            }
            cluster.launch("worker", index, worker_argv("train", str(spec_path)), env, serves_forever=False)
        log.info("multi_worker_mirrored: %d workers %s, logs in %s", workers, spec["worker"], log_dir)
        cluster.wait(timeout_s)
    finally:
        cluster.stop()


def start_parameter_server_cluster(*, workers: int, parameter_servers: int, log_dir: Path) -> tuple[LocalCluster, Any]:
    """Start ps and worker ``tf.distribute.Server``s; return the cluster and the coordinator's cluster resolver.

    The coordinator (this process) is the ``chief`` task; ``tf.config.experimental_connect_to_cluster`` (inside
    ``ParameterServerStrategy``) starts its server.
    """
    import tensorflow as tf

    cluster = LocalCluster(log_dir)
    spec = cluster_spec({"chief": 1, "worker": workers, "ps": parameter_servers})
    try:
        for role in ("ps", "worker"):
            for index in range(len(spec[role])):
                env = {TASK_ENV: f"{role}:{index}", "TF_CONFIG": tf_config(spec, role, index)}
                argv = worker_argv("serve", json.dumps(spec), role, str(index))
                cluster.launch(role, index, argv, env, serves_forever=True)
        _wait_for_ports([address for role in ("ps", "worker") for address in spec[role]], cluster, timeout_s=120)
    except BaseException:
        cluster.stop()
        raise
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(spec), rpc_layer="grpc", task_type="chief", task_id=0
    )
    log.info("parameter_server: ps %s, workers %s, coordinator %s", spec["ps"], spec["worker"], spec["chief"])
    return cluster, resolver


def _wait_for_ports(addresses: list[str], cluster: LocalCluster, *, timeout_s: float) -> None:
    """Every server listens before the coordinator connects (or one died: its error)."""
    deadline = time.monotonic() + timeout_s
    pending = list(addresses)
    while pending:
        failure = cluster.failed_member()
        if failure:
            raise failure
        host, port = pending[0].rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                pending.pop(0)
        except OSError:
            if time.monotonic() > deadline:
                raise TrainingWorkerError(
                    f"the training server at {pending[0]} did not start listening in {timeout_s:g}s "
                    f"(logs in {cluster.log_dir})"
                ) from None
            time.sleep(0.3)
