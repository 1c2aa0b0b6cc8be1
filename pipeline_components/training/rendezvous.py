"""The meeting point of a ``multi_worker_mirrored`` run whose workers are Airflow tasks on other hosts.

When a deployment places training workers on its worker hosts (``RUNWAY_WORKER_QUEUES``, docs/training.md
"Training across worker hosts"), the Trainer task (the chief, worker 0) and one Airflow task per other worker start
on different machines and find each other through a folder of the shared filesystem, never through a process tree:

    <pipeline root>/.training-rendezvous/<run key>/<Trainer node>/
        open.json              the chief's current attempt: {"attempt": ID, "workers": N, "queues": [...]}
        released.json          the chief's word that this run needs no remote worker ({"ok": true}), or cannot use
                               the ones the DAG placed ({"ok": false, "reason": ...})
        task-trainer.json      written by the Trainer task when its node process ends (any outcome)
        task-worker-<i>.json   written by worker task i when its join command ends (any outcome)
        <attempt ID>/          one per run of the chief: a retry never reads an earlier try's entries
            member-<i>.json    worker i's host, address and free port (the chief's is member-0)
            beat-<i>           a counter each member's supervisor bumps every few seconds
            cluster.json       the cluster spec (addresses of the hosts, not loopback) and the training spec's path
            end.json           the chief's end: {"ok": true} or {"ok": false, "reason": ...}
            failed-<i>.json    why worker i failed, with the end of its log
            logs/worker-<i>.log

Every file is written atomically (``durable.atomic_write``). Heartbeats are judged by a change of their content seen
on the reader's own monotonic clock, so hosts with skewed clocks (or NFS attribute caching of mtimes) do not matter.
Standard library only: the orchestrator (which computes the folder and writes the task markers) imports it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline_components.durable import atomic_write

RENDEZVOUS_ENV = "RUNWAY_TRAINING_RENDEZVOUS"  # set on the Trainer task's node: the rendezvous folder
WORKER_QUEUES_ENV = "RUNWAY_TRAINING_WORKER_QUEUES"  # set on it too: the queue of training worker i, comma-separated
HOST_ENV = "RUNWAY_HOST"  # set on each Celery worker of a deployment: its host's name (worker-1)
HOST_ADDRESS_ENV = "RUNWAY_HOST_ADDRESS"  # and its address, which training servers listen on
FOLDER = ".training-rendezvous"
HEARTBEAT_S = 2.0
# A member whose heartbeat has not changed for this long is taken for dead: its host was lost, or its supervisor
# was killed without a word (SIGKILL, OOM). Long enough for a busy host's pauses, short against worker_timeout_s.
HEARTBEAT_STALE_S = 60.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_key(run_id: str) -> str:
    """A folder name for an Airflow run id (``manual__2026-11-22T05:37:45+00:00``): readable, and unique by hash."""
    readable = _UNSAFE.sub("_", run_id).strip("._")[:80] or "run"
    return f"{readable}-{hashlib.sha256(run_id.encode()).hexdigest()[:10]}"


def rendezvous_dir(pipeline_root: Path, run_id: str, node_id: str) -> Path:
    """The rendezvous folder of one Trainer node in one pipeline run; the Trainer task and every worker task
    compute it with this function from the same three values."""
    return Path(pipeline_root) / FOLDER / run_key(run_id) / _UNSAFE.sub("_", node_id)


def chief_env(rendezvous: Path, queues: list[str]) -> dict[str, str]:
    """What the DAG's Trainer task adds to its node's environment: the node then trains as the chief of remote
    workers (``queues[i]`` is the queue of training worker ``i``; ``queues[0]`` the Trainer's own)."""
    return {RENDEZVOUS_ENV: str(rendezvous), WORKER_QUEUES_ENV: ",".join(queues)}


def join_argv(
    *, python: str, rendezvous: Path, index: int, address: str, host: str, queue: str, timeout_s: float
) -> list[str]:
    """The command of a DAG's training worker task (run in the runtime environment on the worker's host)."""
    return [
        python, "-m", "pipeline_components.training.worker", "join",
        "--rendezvous", str(rendezvous), "--index", str(index), "--address", address,
        "--host", host, "--queue", queue, "--timeout-s", f"{timeout_s:g}",
    ]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Member:
    """One training worker as it announced itself: ``index`` 0 is the chief (the Trainer task)."""

    index: int
    host: str
    address: str
    port: int
    queue: str

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    def describe(self) -> str:
        role = "chief, the Trainer task" if self.index == 0 else f"Airflow task on queue {self.queue}"
        return f"training worker {self.index} on host {self.host or '?'} at {self.endpoint} ({role})"


def _read(path: Path) -> Any:
    """A JSON file's content, or None when it is not there (yet)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _write(path: Path, payload: Any) -> None:
    atomic_write(path, json.dumps(payload, indent=2, sort_keys=True))


class Heartbeat:
    """A counter in a file, bumped at most every ``HEARTBEAT_S`` by a member's supervising loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._last = 0.0

    def beat(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last >= HEARTBEAT_S:
            self.count += 1
            atomic_write(self.path, str(self.count))
            self._last = now


class Watch:
    """Which files changed since this watcher first looked, and which stopped changing (heartbeats)."""

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[str | None, float]] = {}

    def _content(self, path: Path) -> str | None:
        try:
            return path.read_text()
        except FileNotFoundError:
            return None

    def changed(self, path: Path) -> bool:
        """Whether ``path``'s content differs from what it was at this watcher's first look."""
        content = self._content(path)
        if path not in self._seen:
            self._seen[path] = (content, time.monotonic())
            return False
        return content != self._seen[path][0]

    def silent_for(self, path: Path) -> float:
        """Seconds since ``path``'s content last changed (as seen by this watcher, first look included)."""
        content, since = self._seen.get(path, (None, time.monotonic()))
        now_content = self._content(path)
        if path not in self._seen or now_content != content:
            self._seen[path] = (now_content, time.monotonic())
            return 0.0
        return time.monotonic() - since


@dataclass(frozen=True)
class Rendezvous:
    """The rendezvous folder of one Trainer node in one run (``rendezvous_dir``)."""

    root: Path

    # --- files of the whole run ------------------------------------------------------------------------------
    @property
    def released_path(self) -> Path:
        return self.root / "released.json"

    def task_marker(self, name: str) -> Path:
        """``trainer`` or ``worker-<i>``: written by that Airflow task when its command ends."""
        return self.root / f"task-{name}.json"

    def mark_task_ended(self, name: str, *, try_number: int, outcome: str) -> None:
        """An Airflow task's command ended (``outcome``: success, skipped, failed: why); the other side, waiting
        for it, stops waiting."""
        _write(self.task_marker(name), {"try": try_number, "outcome": outcome, "time": time.time()})

    def task_outcome(self, name: str) -> str:
        """What ``mark_task_ended`` last recorded for ``name`` ("" when nothing)."""
        value = _read(self.task_marker(name))
        return f"try {value.get('try')}: {value.get('outcome')}" if isinstance(value, dict) else ""

    def release(self, *, ok: bool, reason: str) -> None:
        """The chief's word for the worker tasks of this run: not needed (``ok``: they skip), or refused (fail)."""
        _write(self.released_path, {"ok": ok, "reason": reason})

    def released(self) -> dict[str, Any] | None:
        value = _read(self.released_path)
        return value if isinstance(value, dict) else None

    # --- attempts --------------------------------------------------------------------------------------------
    def open_attempt(self, *, workers: int, queues: list[str]) -> Path:
        """A fresh attempt folder for this run of the chief, announced in ``open.json``. Earlier attempts stay
        (their logs explain an earlier try; a worker that is still stopping may write its failure there)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.released_path.unlink(missing_ok=True)
        attempt = self.root / f"attempt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}"
        (attempt / "logs").mkdir(parents=True)
        _write(self.root / "open.json", {"attempt": attempt.name, "workers": workers, "queues": queues})
        return attempt

    def current_attempt(self) -> Path | None:
        """The attempt the chief opened last, while it has not ended; None otherwise."""
        value = _read(self.root / "open.json")
        if not isinstance(value, dict) or not value.get("attempt"):
            return None
        attempt = self.root / str(value["attempt"])
        return None if (attempt / "end.json").exists() else attempt


def write_member(attempt: Path, member: Member) -> None:
    _write(attempt / f"member-{member.index}.json", asdict(member))


def read_member(attempt: Path, index: int) -> Member | None:
    value = _read(attempt / f"member-{index}.json")
    return Member(**value) if isinstance(value, dict) else None


def beat_path(attempt: Path, index: int) -> Path:
    return attempt / f"beat-{index}"


def write_cluster(attempt: Path, members: list[Member], spec_path: Path) -> dict[str, list[str]]:
    """The cluster every member trains in: worker ``i`` at its host's address and port."""
    cluster = {"worker": [member.endpoint for member in sorted(members, key=lambda m: m.index)]}
    _write(attempt / "cluster.json", {"cluster": cluster, "spec": str(spec_path)})
    return cluster


def read_cluster(attempt: Path) -> tuple[dict[str, list[str]], Path] | None:
    value = _read(attempt / "cluster.json")
    if not isinstance(value, dict):
        return None
    return value["cluster"], Path(value["spec"])


def end_attempt(attempt: Path, *, ok: bool, reason: str = "") -> None:
    """The chief's last word on the attempt; workers stop (and fail, unless ``ok``) when they see it."""
    _write(attempt / "end.json", {"ok": ok, "reason": reason})


def attempt_end(attempt: Path) -> dict[str, Any] | None:
    value = _read(attempt / "end.json")
    return value if isinstance(value, dict) else None


def write_failure(attempt: Path, index: int, *, reason: str, log_tail: str = "") -> None:
    _write(attempt / f"failed-{index}.json", {"reason": reason, "log_tail": log_tail})


def read_failure(attempt: Path, index: int) -> dict[str, Any] | None:
    value = _read(attempt / f"failed-{index}.json")
    return value if isinstance(value, dict) else None
