"""A verified, fleet-wide rollout of one model version, with rollback.

TF Serving keeps *one* server available while it swaps versions; nothing makes a fleet of them switch together, and
a label may only name a version that is already loaded. So a rollout moves every instance through the same steps,
each one checked on every instance before the next starts:

1. ``load``: the candidate is added next to the current stable version (``version_policy { specific }``) in
   ``models.config`` and sent to every instance with ``HandleReloadConfigRequest``;
2. ``wait_available``: ``GetModelStatus`` reports the candidate AVAILABLE on every instance (bounded wait; a failed
   load ends the wait at once with the server's error);
3. ``label_canary``: the label ``canary`` names the candidate (``stable`` still the old version: clients untouched);
4. ``verify``: on every instance, over REST and over gRPC, the ``canary`` label answers the real examples stored
   with the push with the exported model's own predictions (within a tolerance) and within a latency budget;
5. ``promote``: ``stable`` moves to the candidate (the previous stable stays loaded, so a rollback is instant);
6. ``retire``: versions older than the previous stable are unloaded, and folders beyond the retention of the
   newest K versions are deleted (never a labelled or loaded one).

Any failure in steps 1-5 puts the previous ``models.config`` entry back on every instance (and in the file, so an
instance that restarts comes back right), records why, and raises ``RolloutFailed``. An instance that cannot be
reached fails the rollout the same way (fail safe: the fleet keeps the old stable), except on the local fleet once
the watchdog's readiness probes (``fleet.readiness``) take it out of nginx's rotation: the steps then go on without
it (a call waiting on it is abandoned, a step that failed on it runs again) and it catches up with ``models.config``
before it serves again. Each step is idempotent, so re-running a rollout, or one step of it, is harmless: the state
between steps lives in a journal file, ``$RUNWAY_HOME/fleet/rollouts/<model>.json``.

On the local fleet, a step that fails while the fleet's watchdog is restarting an instance (``fleet.restarts``)
waits for that instance to serve again (at most ``restart_wait_s``) and runs again; the instance read the current
``models.config`` when it started, and the step sends it again. A rollback that cannot reach a restarting
instance waits the same way and sends it the previous entry; one it still cannot reach is named, with the
versions it may serve, in the error.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline_components.config.serving import CanaryConfig
from pipeline_components.durable import atomic_write
from pipeline_components.errors import RunwayError
from pipeline_components.fleet import CANARY_LABEL, STABLE_LABEL, FleetState, fleet_dir
from pipeline_components.fleet.canary import CANARY_STEP, CanaryFailed, analyse
from pipeline_components.fleet.instances import Instance, InstanceError
from pipeline_components.fleet.options import RolloutOptions
from pipeline_components.fleet.readiness import Rotation
from pipeline_components.fleet.reconfigure import reconfigure
from pipeline_components.fleet.restarts import Restarts, RestartTooLong
from pipeline_components.fleet.store import ModelServing, ModelStore, RequestLogging
from pipeline_components.fleet.verification import Tolerances, load_samples, verify_fleet

log = logging.getLogger("runway.fleet.rollout")

STEPS = ("load", "wait_available", "label_canary", "verify", "promote", "retire")


class RolloutFailed(RunwayError):
    """A rollout step failed; the fleet was put back on the previous stable version."""


class NothingToRollOut(RunwayError):
    """There is no candidate to roll out (nothing pushed, or it is already stable)."""


class Rollout:
    """The rollout of one model on one fleet. Each public step may run in its own process (an Airflow task)."""

    def __init__(
        self,
        *,
        store: ModelStore,
        fleet: FleetState,
        model: str,
        home: Path,
        options: RolloutOptions | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.model, self.home = model, home
        self.options = options or RolloutOptions()
        self.journal_path = fleet_dir(home) / "rollouts" / f"{model}.json"
        self.instances = [Instance(address) for address in fleet.instances]
        self._say = say or (lambda line: log.info("%s", line))
        # Only the local fleet has a watchdog; elsewhere (compose, Kubernetes) an unreachable instance fails at once.
        self.restarts = (
            Restarts(
                fleet_dir(home),
                instances=self.instances,
                store=store,
                model=model,
                wait_s=self.options.restart_wait_s,
                say=self.say,
            )
            if fleet.kind == "local"
            else None
        )
        self.rotation = Rotation(fleet_dir(home) if fleet.kind == "local" else None)

    def say(self, line: str) -> None:
        self._say(f"[{self.model}] {line}")

    @property
    def request_logging(self) -> RequestLogging | None:
        return self.options.request_logging

    # -- journal ----------------------------------------------------------------------------------------------------

    def journal(self) -> dict[str, Any]:
        if not self.journal_path.is_file():
            return {}
        return dict(json.loads(self.journal_path.read_text()))

    def _write_journal(self, **changes: Any) -> dict[str, Any]:
        journal = {**self.journal(), **changes, "updated": time.time()}
        atomic_write(self.journal_path, json.dumps(journal, indent=2, sort_keys=True) + "\n")
        return journal

    def _previous(self) -> ModelServing:
        previous = self.journal()["previous"]
        return ModelServing(self.model, tuple(previous["versions"]), dict(previous["labels"]))

    def candidate(self) -> int:
        journal = self.journal()
        if journal.get("status") != "in_progress":
            raise RolloutFailed(
                f"no rollout of {self.model} is in progress (journal {self.journal_path}: "
                f"status {journal.get('status', 'none')}); start one with the load step"
            )
        return int(journal["candidate"])

    # -- applying a config to the fleet -----------------------------------------------------------------------------

    def reachable(self) -> list[Instance]:
        """The instances in rotation, which the steps act on."""
        return self.rotation.of(self.instances)

    def _apply(self, serving: ModelServing, *, what: str) -> str:
        """Write ``models.config`` with ``serving`` for this model and reload it on every instance, in parallel."""
        if not self.reachable():
            raise RolloutFailed(f"{what}: no instance is in rotation (see `runway fleet status`)")
        errors = self._configure(serving, timeout_s=self.options.available_timeout_s)
        if errors:
            raise RolloutFailed(f"{what}: " + "; ".join(errors))
        out = self.rotation.out()
        left = f"; {', '.join(sorted(out))} out of rotation, takes models.config when it answers again" if out else ""
        self.say(f"{what}: applied on {len(self.instances) - len(out)} instance(s){left}")
        return what

    def _configure(self, serving: ModelServing, *, timeout_s: float) -> list[str]:
        """Reload on the instances in rotation; a call to one fenced meanwhile is abandoned and not an error."""
        errors = reconfigure(
            self.store,
            self.model,
            self._logged(serving),
            all_instances=self.instances,
            send_to=self.reachable(),
            timeout_s=timeout_s,
            abandon=self.rotation.out,
        )
        out = self.rotation.out()
        return [error for error in errors if error.split(":", 1)[0] not in out]

    def _logged(self, serving: ModelServing) -> ModelServing:
        # The pipeline's configuration decides the model's request logging in every config sent, rollbacks included.
        return replace(serving, logging=self.options.request_logging)

    def _restore(self, previous: ModelServing) -> list[str]:
        """Send ``previous`` everywhere; an instance being restarted is waited for and sent it once it is back."""
        since = self.restarts.counts() if self.restarts else {}
        errors = self._configure(previous, timeout_s=self.options.rpc_timeout_s)
        try:
            back = self.restarts.wait_for_restarting(since, what="rollback") if errors and self.restarts else None
        except RestartTooLong as late:
            return [*errors, str(late)]
        if not back:
            return errors
        errors = [e for e in errors if e.split(":", 1)[0] not in back]
        send_to = [i for i in self.instances if i.name in back]
        return errors + reconfigure(
            self.store,
            self.model,
            self._logged(previous),
            all_instances=self.instances,
            send_to=send_to,
            timeout_s=self.options.rpc_timeout_s,
        )

    def fail(self, step: str, reason: str) -> RolloutFailed:
        """Put the previous config back everywhere, record why, and return the error to raise."""
        self.say(f"{step} failed: {reason}")
        journal = self.journal()
        restored = "nothing to restore"
        if journal.get("status") == "in_progress":
            previous = self._previous()
            errors = self._restore(previous)
            restored = f"stable back to version {previous.stable}" if previous.stable else "model removed again"
            if errors:
                restored += (
                    "; NOT reached, so the fleet may serve mixed versions until they restart and read "
                    "models.config again (check `runway fleet status`; `runway fleet up` restarts one that is "
                    "down): " + "; ".join(errors)
                )
            self._write_journal(status="rolled_back", failed_step=step, reason=reason, restored=restored)
            self.say(f"rolled back: {restored}")
        return RolloutFailed(f"rollout of {self.model} failed at step {step}: {reason}; {restored}")

    def _step(self, step: str, body: Callable[[], str]) -> str:
        restarts = self.restarts
        attempt = (lambda: restarts.ride_out(step, body)) if restarts else body
        try:
            outcome = self.rotation.without_fenced(step, attempt, say=self.say)
        except (RolloutFailed, CanaryFailed) as error:
            raise self.fail(step, str(error)) from None
        except (InstanceError, RestartTooLong, OSError) as error:
            raise self.fail(step, str(error)) from None
        self._write_journal(last_step=step)
        return outcome

    # -- the steps --------------------------------------------------------------------------------------------------

    def load(self, candidate: int) -> str:
        """Step 1. Returns what happened; raises NothingToRollOut when the candidate is already stable."""
        current = self.store.serving(self.model)
        journal = self.journal()
        if current.stable == candidate and current.canary is None:
            raise NothingToRollOut(f"version {candidate} of {self.model} is already stable on the fleet")
        if candidate not in self.store.versions_on_disk(self.model):
            raise RolloutFailed(
                f"version {candidate} of {self.model} is not in the model store "
                f"({self.store.version_path(self.model, candidate)} missing or incomplete)"
            )
        if journal.get("status") == "in_progress" and journal.get("candidate") == candidate:
            previous = self._previous()  # re-running a half-done rollout: the previous stable is the journal's
        elif journal.get("status") == "in_progress":
            # Another candidate's rollout never finished (its task was killed): put its previous state back first.
            self.fail("load", f"an unfinished rollout of version {journal.get('candidate')} was found")
            current = self.store.serving(self.model)
            previous = current
        else:
            previous = current.with_labels(canary=None)
        self._write_journal(
            status="in_progress",
            candidate=candidate,
            previous={"versions": list(previous.versions), "labels": previous.labels},
            started=time.time(),
            reason=None,
            failed_step=None,
        )
        keep = {candidate, *previous.versions}  # nothing unloaded before retire
        target = previous.with_versions(keep).with_labels(canary=None)
        return self._step(
            "load",
            lambda: self._apply(
                target, what=f"version {candidate} loaded next to stable {previous.stable} on every instance"
            ),
        )

    def wait_available(self) -> str:
        """Step 2: bounded wait until every instance reports the candidate AVAILABLE."""
        candidate = self.candidate()

        def body() -> str:
            deadline = time.monotonic() + self.options.available_timeout_s
            pending = {instance.name: "not asked yet" for instance in self.instances}
            while True:
                reachable = self.reachable()
                in_rotation = {instance.name for instance in reachable}
                pending = {name: state for name, state in pending.items() if name in in_rotation}
                for instance in reachable:
                    if instance.name not in pending:
                        continue
                    status = instance.model_status(self.model, timeout_s=self.options.rpc_timeout_s).get(candidate)
                    if status is None:
                        pending[instance.name] = "version unknown to the server"
                    elif status.state == "AVAILABLE":
                        del pending[instance.name]
                    elif status.state == "END" and status.error_code:
                        raise RolloutFailed(
                            f"{instance.name} failed to load version {candidate}: {status.error_message}"
                        )
                    else:
                        pending[instance.name] = status.state
                if not pending:
                    return f"version {candidate} AVAILABLE on {len(reachable)} instance(s) in rotation"
                if time.monotonic() > deadline:
                    waiting = ", ".join(f"{name} ({state})" for name, state in sorted(pending.items()))
                    raise RolloutFailed(
                        f"version {candidate} not AVAILABLE within {self.options.available_timeout_s:.0f} s on: "
                        f"{waiting}"
                    )
                time.sleep(0.5)

        return self._step("wait_available", body)

    def label_canary(self) -> str:
        """Step 3: ``canary`` names the candidate on every instance; ``stable`` does not move."""
        candidate = self.candidate()
        previous = self._previous()
        keep = {candidate, *previous.versions}  # nothing unloaded before retire
        target = previous.with_versions(keep).with_labels(canary=candidate)
        return self._step(
            "label_canary",
            lambda: self._apply(target, what=f"{CANARY_LABEL} is version {candidate} on every instance"),
        )

    def verify(self) -> str:
        """Step 4: real examples through REST and gRPC on every instance, against the exported model's answers."""
        candidate = self.candidate()

        def body() -> str:
            samples = load_samples(self.store, self.model, candidate)
            if samples is None:
                return "not verified: the version has no verification samples (pushed without them)"
            limits = Tolerances(
                tolerance=self.options.tolerance,
                latency_budget_ms=self.options.latency_budget_ms,
                rpc_timeout_s=self.options.rpc_timeout_s,
            )
            checked = self.reachable()
            report, failures = verify_fleet(checked, samples, model=self.model, limits=limits)
            self._write_journal(verification=report)
            if failures:
                raise RolloutFailed("verification failed: " + "; ".join(failures))
            worst = max(item["median_ms"] for item in report)
            return (
                f"{len(samples['rows'])} real examples answered as exported on {len(checked)} instance(s), "
                f"REST and gRPC; worst median latency {worst:.1f} ms (budget {self.options.latency_budget_ms:.0f} ms)"
            )

        return self._step("verify", body)

    def analyse_canary(self) -> str:
        """Step 4b (``serving.rollout: canary``): judged on mirrored live traffic against stable (``fleet.canary``)."""
        return self._step(CANARY_STEP, lambda: analyse(self, self.options.canary or CanaryConfig()))

    def promote(self) -> str:
        """Step 5: ``stable`` moves to the candidate; the previous stable stays loaded (instant rollback)."""
        candidate = self.candidate()
        previous = self._previous()
        keep = {candidate, *previous.versions}  # nothing unloaded before retire
        target = previous.with_versions(keep).with_labels(stable=candidate, canary=None)
        outcome = self._step(
            "promote",
            lambda: self._apply(
                target, what=f"{STABLE_LABEL} is version {candidate} (was {previous.stable}) on every instance"
            ),
        )
        self._write_journal(status="promoted", promoted=time.time())
        return outcome

    def retire(self) -> str:
        """Step 6: unload versions older than the previous stable; delete folders beyond retention."""
        journal = self.journal()
        if journal.get("status") not in ("promoted", "done"):
            raise RolloutFailed(f"nothing to retire: the rollout of {self.model} is {journal.get('status', 'none')}")
        current = self.store.serving(self.model)
        previous_stable = journal.get("previous", {}).get("labels", {}).get(STABLE_LABEL)
        keep = {v for v in (current.stable, previous_stable) if v}
        if set(current.versions) != keep:
            try:
                self._apply(current.with_versions(keep), what=f"serve only versions {sorted(keep)}")
            except (RolloutFailed, InstanceError) as error:
                # The new stable serves already; an old version left loaded costs memory only: report, don't undo.
                raise RolloutFailed(
                    f"retire: {error} (stable is version {current.stable}; nothing rolled back)"
                ) from None
        deleted = self.store.prune(self.model, self.options.retain_versions, current.with_versions(keep))
        self._write_journal(status="done", deleted=deleted)
        return (
            f"serving versions {sorted(keep)}; deleted {deleted or 'none'} (retention {self.options.retain_versions})"
        )

    def run(self, candidate: int) -> list[str]:
        """Every step in order (the CLI, and the manual serving DAG). Returns one line per step."""
        try:
            lines = [self.load(candidate)]
        except NothingToRollOut as nothing:
            return [str(nothing)]
        lines.append(self.wait_available())
        lines.append(self.label_canary())
        if self.options.verify:
            lines.append(self.verify())
        if self.options.canary:
            lines.append(self.analyse_canary())
        lines.append(self.promote())
        lines.append(self.retire())
        return lines

    def close(self) -> None:
        for instance in self.instances:
            instance.close()
