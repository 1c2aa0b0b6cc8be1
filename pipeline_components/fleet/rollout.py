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
reached fails the rollout the same way (fail safe: the fleet keeps the old stable; re-run the rollout when the
instance is back). Each step is idempotent, so re-running a rollout, or one step of it, is harmless: the state
between steps lives in a journal file, ``$RUNWAY_HOME/fleet/rollouts/<model>.json``.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_components.errors import RunwayError
from pipeline_components.fleet import (
    CANARY_LABEL,
    STABLE_LABEL,
    FleetState,
    fleet_dir,
    protos,
)
from pipeline_components.fleet.instances import Instance, InstanceError
from pipeline_components.fleet.store import ModelServing, ModelStore, atomic_write

log = logging.getLogger("runway.fleet.rollout")

STEPS = ("load", "wait_available", "label_canary", "verify", "promote", "retire")


class RolloutFailed(RunwayError):
    """A rollout step failed; the fleet was put back on the previous stable version."""


class NothingToRollOut(RunwayError):
    """There is no candidate to roll out (nothing pushed, or it is already stable)."""


@dataclass(frozen=True, kw_only=True)
class RolloutOptions:
    retain_versions: int = 3
    available_timeout_s: float = 300.0
    tolerance: float = 1e-4
    latency_budget_ms: float = 1000.0
    rpc_timeout_s: float = 30.0
    verify: bool = True


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
        self.model = model
        self.options = options or RolloutOptions()
        self.journal_path = fleet_dir(home) / "rollouts" / f"{model}.json"
        self.instances = [Instance(address) for address in fleet.instances]
        self._say = say or (lambda line: log.info("%s", line))

    def say(self, line: str) -> None:
        self._say(f"[{self.model}] {line}")

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

    def _apply(self, serving: ModelServing, *, what: str, instances: Iterable[Instance] | None = None) -> str:
        """Write ``models.config`` with ``serving`` for this model and reload it on every instance, in parallel."""
        with self.store.locked():
            models = self.store.read_config()
            if serving.versions:
                models[self.model] = serving
            else:
                models.pop(self.model, None)
            self.store.write_config(models)
            texts = {
                instance.name: self.store.render_config(models, store_path=instance.address.store_path)
                for instance in self.instances
            }
            # Sent under the lock too: two rollouts (of different models) must not reach an instance out of order.
            targets = list(instances or self.instances)
            errors = self._parallel(
                targets, lambda i: i.reload_config(texts[i.name], timeout_s=self.options.available_timeout_s)
            )
        if errors:
            raise RolloutFailed(f"{what}: " + "; ".join(errors))
        self.say(f"{what}: applied on {len(targets)} instance(s)")
        return what

    def _parallel(self, instances: list[Instance], action: Callable[[Instance], Any]) -> list[str]:
        def run(instance: Instance) -> str | None:
            try:
                action(instance)
            except InstanceError as error:
                return str(error)
            except Exception as error:  # a bug or an unexpected answer must still roll back
                return f"{instance.name}: {type(error).__name__}: {error}"
            return None

        with ThreadPoolExecutor(max_workers=max(1, len(instances))) as pool:
            return [error for error in pool.map(run, instances) if error]

    def _fail(self, step: str, reason: str) -> RolloutFailed:
        """Put the previous config back everywhere, record why, and return the error to raise."""
        self.say(f"{step} failed: {reason}")
        journal = self.journal()
        restored = "nothing to restore"
        if journal.get("status") == "in_progress":
            previous = self._previous()
            with self.store.locked():
                models = self.store.read_config()
                if previous.versions:
                    models[self.model] = previous
                else:
                    models.pop(self.model, None)
                self.store.write_config(models)
                texts = {
                    i.name: self.store.render_config(models, store_path=i.address.store_path) for i in self.instances
                }
                errors = self._parallel(
                    self.instances, lambda i: i.reload_config(texts[i.name], timeout_s=self.options.rpc_timeout_s)
                )
            restored = f"stable back to version {previous.stable}" if previous.stable else "model removed again"
            if errors:
                restored += "; not reached (they read models.config again when they restart): " + "; ".join(errors)
            self._write_journal(status="rolled_back", failed_step=step, reason=reason, restored=restored)
            self.say(f"rolled back: {restored}")
        return RolloutFailed(f"rollout of {self.model} failed at step {step}: {reason}; {restored}")

    def _step(self, step: str, body: Callable[[], str]) -> str:
        try:
            outcome = body()
        except RolloutFailed as error:
            raise self._fail(step, str(error)) from None
        except (InstanceError, OSError) as error:
            raise self._fail(step, str(error)) from None
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
            self._fail("load", f"an unfinished rollout of version {journal.get('candidate')} was found")
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
                for instance in self.instances:
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
                    return f"version {candidate} AVAILABLE on {len(self.instances)} instance(s)"
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
            samples = self._samples(candidate)
            if samples is None:
                return "not verified: the version has no verification samples (pushed without them)"
            failures = []
            report = []
            for instance in self.instances:
                for protocol in ("rest", "grpc"):
                    try:
                        outcome = self._verify_one(instance, protocol, samples)
                    except InstanceError as error:
                        failures.append(str(error))
                        continue
                    report.append(outcome)
                    if outcome["failure"]:
                        failures.append(outcome["failure"])
            self._write_journal(verification=report)
            if failures:
                raise RolloutFailed("verification failed: " + "; ".join(failures))
            worst = max(item["median_ms"] for item in report)
            return (
                f"{len(samples['rows'])} real examples answered as exported on {len(self.instances)} instance(s), "
                f"REST and gRPC; worst median latency {worst:.1f} ms (budget {self.options.latency_budget_ms:.0f} ms)"
            )

        return self._step("verify", body)

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
        lines.append(self.promote())
        lines.append(self.retire())
        return lines

    def close(self) -> None:
        for instance in self.instances:
            instance.close()

    # -- verification -----------------------------------------------------------------------------------------------

    def _samples(self, version: int) -> dict[str, Any] | None:
        path = self.store.verification_path(self.model, version)
        if not path.is_file():
            return None
        return dict(json.loads(path.read_text()))

    def _verify_one(self, instance: Instance, protocol: str, samples: dict[str, Any]) -> dict[str, Any]:
        rows: list[dict[str, Any]] = samples["rows"]
        expected: dict[str, list[list[float]]] = samples["expected"]
        signature = samples.get("signature_name", "serving_default")
        latencies = []
        answers: list[dict[str, list[float]]] = []
        for row in rows:  # one request per example: latency as a client sees it
            if protocol == "rest":
                body = {"signature_name": signature, "instances": [row]}
                answer, seconds = instance.predict_rest(
                    f"/v1/models/{self.model}/labels/{CANARY_LABEL}:predict", body, self.options.rpc_timeout_s
                )
                answers.append(_rest_outputs(answer, list(expected)))
            else:
                dtypes = {name: int(dtype) for name, dtype in samples.get("dtypes", {}).items()}
                request = protos.predict_request(
                    self.model,
                    {name: [value] for name, value in row.items()},
                    dtypes,
                    label=CANARY_LABEL,
                    signature_name=signature,
                )
                outputs, seconds = instance.predict_grpc(request, self.options.rpc_timeout_s)
                answers.append({name: [float(v) for v in values] for name, values in outputs.items()})
            latencies.append(seconds * 1000)
        worst_diff, where = 0.0, ""
        failure = ""
        for index, answer in enumerate(answers):
            for name, want in expected.items():
                got = answer.get(name)
                if got is None or len(got) != len(want[index]):
                    failure = (
                        f"{instance.name} {protocol}: output {name} of example {index} is {got}, expected {want[index]}"
                    )
                    break
                for g, w in zip(got, want[index], strict=True):
                    diff = abs(g - w)
                    if not math.isfinite(g) or diff > self.options.tolerance * max(1.0, abs(w)):
                        failure = (
                            f"{instance.name} {protocol}: example {index} output {name} is {g:.6g}, "
                            f"the exported model says {w:.6g} (tolerance {self.options.tolerance:g})"
                        )
                    if diff > worst_diff:
                        worst_diff, where = diff, f"example {index} {name}"
                if failure:
                    break
            if failure:
                break
        median = statistics.median(latencies)
        if not failure and median > self.options.latency_budget_ms:
            failure = (
                f"{instance.name} {protocol}: median latency {median:.1f} ms is over the budget of "
                f"{self.options.latency_budget_ms:.0f} ms"
            )
        return {
            "instance": instance.name,
            "protocol": protocol,
            "examples": len(rows),
            "median_ms": round(median, 2),
            "max_ms": round(max(latencies), 2),
            "max_abs_diff": worst_diff,
            "max_diff_at": where,
            "failure": failure,
        }


def _rest_outputs(answer: Any, names: list[str]) -> dict[str, list[float]]:
    """A one-example REST ``predictions`` answer as output name -> flat values."""
    prediction = answer["predictions"][0]
    if isinstance(prediction, dict):
        return {name: _flat(value) for name, value in prediction.items()}
    return {names[0]: _flat(prediction)} if len(names) == 1 else {}


def _flat(value: Any) -> list[float]:
    if isinstance(value, list):
        return [x for item in value for x in _flat(item)]
    return [float(value)]


def promote_or_rollback_target(store: ModelStore, model: str, version: int | None) -> int:
    """The version ``runway fleet rollback`` goes back to: ``version``, or the newest one older than stable."""
    if version is not None:
        return version
    current = store.serving(model)
    if current.stable is None:
        raise RolloutFailed(f"{model} has no stable version on the fleet: nothing to roll back from")
    older = [v for v in store.versions_on_disk(model) if v < current.stable]
    if not older:
        raise RolloutFailed(f"no version of {model} older than stable {current.stable} is in the store")
    return older[-1]
