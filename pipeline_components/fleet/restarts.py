"""What the local fleet's watchdog (``fleet.watchdog``) reports, read by ``runway fleet status``, ``runway fleet up``
and a rollout that meets an instance being restarted.

The watchdog writes ``$RUNWAY_HOME/fleet/instances/watchdog.json`` (its pid; per process the pid, state, restart
count and last exit status). An instance is *being restarted* while the watchdog runs, the instance is not held
down on purpose, and it is down, waiting out its backoff, or has been restarted since a given moment. Only then
does a rollout wait for it; an instance nobody restarts fails the rollout at once, naming it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline_components.errors import RunwayError
from pipeline_components.fleet.instances import Instance, InstanceError
from pipeline_components.fleet.readiness import fenced
from pipeline_components.fleet.store import ModelStore
from pipeline_components.fleet.supervisor import Supervisor
from pipeline_components.fleet.watchdog import STATUS_FILE, WATCHDOG
from pipeline_components.processes import pid_alive

SETTLED = ("AVAILABLE", "END")  # a version an instance has finished loading, or given up on (with its error)


def watchdog_report(fleet_dir: Path) -> dict[str, Any]:
    """The watchdog's pid, whether it runs, its ``processes`` entries (empty when it never ran here), and the
    instances its readiness probes took out of rotation (``fenced``: name -> since, reason)."""
    supervisor = Supervisor(fleet_dir)
    pid = supervisor.recorded_pid(WATCHDOG)
    try:
        processes = dict(json.loads((supervisor.pid_dir / STATUS_FILE).read_text()).get("processes", {}))
    except (OSError, ValueError):
        processes = {}
    return {"pid": pid, "alive": pid_alive(pid), "processes": processes, "fenced": fenced(fleet_dir)}


class RestartTooLong(RunwayError):
    """An instance the watchdog restarted did not serve again within the rollout's ``restart_wait_s``."""


class Restarts:
    """The watchdog of the local fleet under ``fleet_dir``, as the rollout of ``model`` on ``instances`` sees it."""

    def __init__(
        self,
        fleet_dir: Path,
        *,
        instances: list[Instance],
        store: ModelStore,
        model: str,
        wait_s: float,
        say: Callable[[str], None],
    ) -> None:
        self.fleet_dir = fleet_dir
        self.supervisor = Supervisor(fleet_dir)
        self.instances = instances
        self.store = store
        self.model = model
        self.wait_s = wait_s
        self.say = say

    def counts(self) -> dict[str, int]:
        """Each process's restart count now (compare with ``restarting(since=...)``)."""
        processes = watchdog_report(self.fleet_dir)["processes"]
        return {name: int(entry.get("restarts", 0)) for name, entry in processes.items()}

    def restarting(self, *, since: dict[str, int], recent: bool = True) -> list[str]:
        """The instances the watchdog is bringing back, or brought back after ``since`` was taken (with ``recent``:
        or within the last ``restart_wait_s``)."""
        report = watchdog_report(self.fleet_dir)
        if not report["alive"]:
            return []
        found = []
        for instance in self.instances:
            entry = report["processes"].get(instance.name)
            if entry is None or self.supervisor.held(instance.name):
                continue
            down = entry.get("state") != "running" or not pid_alive(entry.get("pid"))
            restarted = int(entry.get("restarts", 0)) != since.get(instance.name, 0)
            # Restarted just before the step began: it may still be loading what models.config names.
            just_now = recent and time.time() - float(entry.get("restarted_at") or 0.0) < self.wait_s
            if down or restarted or just_now:
                found.append(instance.name)
        return found

    def ride_out(self, step: str, body: Callable[[], str]) -> str:
        """Run ``body`` (a rollout step: idempotent); if it fails while the watchdog restarts an instance, wait for
        that instance to serve again and run it again, all within ``restart_wait_s``.

        Raises:
            RunwayError: the step's own error when no instance is being restarted (or time is up); a
                ``RestartTooLong`` naming the instance when it did not serve again in time.
        """
        until = time.monotonic() + self.wait_s
        first = True
        while True:
            since = self.counts()
            try:
                return body()
            except (RunwayError, OSError) as error:
                if time.monotonic() > until:
                    raise
                # A restart that ended before the first try still counts once; after that only a new one does, so a
                # failure of the step's own (a wrong answer) is not retried until the deadline.
                waited = self.wait_for_restarting(since, what=step, error=error, until=until, recent=first)
                if waited is None:
                    raise
                first = False

    def wait_for_restarting(
        self,
        since: dict[str, int],
        *,
        what: str,
        error: BaseException | None = None,
        until: float | None = None,
        recent: bool = True,
    ) -> list[str] | None:
        """Wait for the instances being restarted since ``since`` to serve again.

        Returns:
            The instances waited for (all back), or None when none is being restarted.

        Raises:
            RestartTooLong: one was not back by ``until`` (default ``restart_wait_s`` from now).
        """
        names = self.restarting(since=since, recent=recent)
        if not names:
            return None
        why = f" ({error})" if error else ""
        self.say(
            f"{what}: {', '.join(names)} is being restarted by the fleet's watchdog{why}; waiting for it "
            f"(at most {self.wait_s:.0f} s), then sending it the step again"
        )
        until = until if until is not None else time.monotonic() + self.wait_s
        waiting = [i for i in self.instances if i.name in names]
        late = self.wait_back(waiting, until=until)
        if late:
            raise RestartTooLong(
                f"{', '.join(late)} did not serve again within {self.wait_s:.0f} s of being restarted by the "
                f"fleet's watchdog{why}; see `runway fleet status` and its log under $RUNWAY_HOME/fleet/logs/, "
                "then re-run the rollout"
            )
        return names

    def wait_back(self, instances: list[Instance], *, until: float) -> list[str]:
        """Wait until each instance answers again and has settled every version of the rollout's model that
        ``models.config`` names (what a restarted instance loads first).

        Args:
            instances: the instances being restarted.
            until: the ``time.monotonic()`` deadline.

        Returns:
            The names of the instances that were not back by the deadline (empty: all are).
        """
        versions = self.store.serving(self.model).versions
        pending = {instance.name: instance for instance in instances}
        while pending:
            for name, instance in list(pending.items()):
                if self._back(instance, self.model, versions):
                    del pending[name]
            if not pending or time.monotonic() > until:
                break
            time.sleep(0.5)
        for instance in instances:
            instance.close()  # the next step connects afresh (no reconnect backoff left from the refused calls)
        return sorted(pending)

    @staticmethod
    def _back(instance: Instance, model: str, versions: tuple[int, ...]) -> bool:
        instance.close()
        try:
            states = instance.model_status(model, timeout_s=2.0)
        except InstanceError:
            return False
        return all(version in states and states[version].state in SETTLED for version in versions)
