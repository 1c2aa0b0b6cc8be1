"""Readiness of the local fleet's model servers: an instance that stops answering leaves nginx's rotation, and
comes back only once it serves what ``models.config`` says.

Why. nginx's own checks are passive: a dead instance refuses connections and nginx moves the request on at once,
but an instance whose host is cut off (a pulled cable, a partition) or whose process hangs refuses nothing. A
request sent on a kept-alive connection then waits for nginx's upstream read timeout before it is retried, and
every ``fail_timeout`` nginx tries the instance again with a client's request. And a rollout that runs meanwhile
cannot reach the instance: without readiness it would wait out its deadline and roll back, and the instance, when
its host returns, would still serve whatever it had when it was cut off. Kubernetes has the same problem and the
same answer: a failing readiness probe takes a pod out of its Service's endpoints, and a rollout proceeds with the
ready pods.

What the watchdog (``fleet.watchdog``) does with this module, in a thread of its own:

- every ``period_s`` it GETs ``PROBE_PATH`` on each running instance's REST port (any HTTP answer, even 404,
  means the server answers) with a ``timeout_s`` deadline;
- a server that has not answered once since it started is starting (importing TensorFlow, loading models):
  that is the restart path's business, so only a server that answered before and then stops answering counts;
- after ``failures`` failed probes in a row the instance is **fenced**: marked ``down`` in nginx's configuration
  (nginx reloads; no new request reaches it) and recorded in ``instances/readiness.json`` with the reason. A
  rollout (``fleet.rollout``) leaves fenced instances out of its steps, and abandons a call to one that is fenced
  while it waits;
- when a fenced instance answers again it **catches up** before anything reaches it: it is sent the current
  ``models.config`` (under the store's lock, so no rollout interleaves), the versions that file names must be
  AVAILABLE on it, and only then does it go back in rotation. Whatever happened meanwhile (a rollout completed
  on the other instances, or rolled back) is what it serves when clients reach it again.

An instance that is not running (crashed, held down on purpose) is the watchdog's restart business, not this
module's: nginx skips it on the refused connection, and a restarted server reads ``models.config`` as it starts.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline_components.durable import atomic_write
from pipeline_components.errors import RunwayError
from pipeline_components.fleet import InstanceAddress, read_fleet_state
from pipeline_components.fleet.instances import Instance, InstanceError
from pipeline_components.fleet.nginx import reload, set_in_rotation
from pipeline_components.fleet.store import ModelServing, ModelStore
from pipeline_components.processes import pid_alive

READINESS_FILE = "readiness.json"  # under <fleet dir>/instances/: the fenced instances, with why and since when
PROBE_PATH = "/v1/models/_runway_readiness_probe"  # a model nobody serves: the server answers 404 at once


@dataclass(frozen=True, kw_only=True)
class ReadinessPolicy:
    """How often and how patiently instances are probed.

    The defaults fence a cut-off instance 6-9 s after the cut, and never a busy one that answers one probe in
    three within 2 s. Meanwhile nginx's per-try timeout (3 s, ``infra/nginx/fleet.conf.template``) retries a
    request stuck on it elsewhere, so a client sees a few requests slowed by the cut, none failed.
    """

    period_s: float = 1.0
    timeout_s: float = 2.0
    failures: int = 3
    catch_up_timeout_s: float = 120.0


def readiness_path(fleet_dir: Path) -> Path:
    return fleet_dir / "instances" / READINESS_FILE


def fenced(fleet_dir: Path) -> dict[str, dict[str, Any]]:
    """The instances out of rotation now: name -> ``{"since": wall clock, "reason": ...}`` (empty: none)."""
    try:
        return dict(json.loads(readiness_path(fleet_dir).read_text()).get("fenced", {}))
    except (OSError, ValueError):
        return {}


def probe(address: InstanceAddress, timeout_s: float) -> str | None:
    """None when the instance's REST server answers within ``timeout_s``, else why not."""
    try:
        with urllib.request.urlopen(address.rest_url.rstrip("/") + PROBE_PATH, timeout=timeout_s):
            return None
    except urllib.error.HTTPError:
        return None  # an answer, even an error status: the server is there
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"no answer within {timeout_s:g} s ({type(reason).__name__}: {reason})"


class Readiness:
    """The readiness of one local fleet's instances (``fleet_dir`` is ``$RUNWAY_HOME/fleet``).

    Args:
        fleet_dir: the fleet's folder (``fleet.json`` beside it, ``nginx/nginx.conf`` and ``instances/`` in it).
        running: the pid of an instance's supervised process while it runs, else None (only those are probed).
        say: where events go (the watchdog's log).
        policy: probe period, deadline and patience.
    """

    def __init__(
        self,
        fleet_dir: Path,
        *,
        running: Callable[[str], int | None],
        say: Callable[[str], None],
        policy: ReadinessPolicy | None = None,
    ) -> None:
        self.fleet_dir = fleet_dir
        self.running = running
        self.say = say
        self.policy = policy or ReadinessPolicy()
        self.failures: dict[str, int] = {}
        self.answered: dict[str, int] = {}  # instance -> the pid that answered a probe (it finished starting)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the loop ---------------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="readiness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)  # a catch-up in progress must not hold `fleet down` (a daemon thread)

    def _loop(self) -> None:
        while not self._stop.wait(self.policy.period_s):
            try:
                self.tick()
            except Exception as error:  # the watchdog's restarts must go on whatever happens here
                self.say(f"readiness: {type(error).__name__}: {error}")

    def tick(self) -> None:
        """Probe every running instance once; fence the ones that failed too often, bring back the ones that answer."""
        state = read_fleet_state(self.fleet_dir.parent)
        if state is None:
            return
        pids = {a.name: pid for a in state.instances if (pid := self.running(a.name))}
        watched = [a for a in state.instances if a.name in pids]
        with ThreadPoolExecutor(max_workers=max(1, len(watched))) as pool:
            answers = dict(zip(watched, pool.map(lambda a: probe(a, self.policy.timeout_s), watched), strict=True))
        out = fenced(self.fleet_dir)
        for address, problem in answers.items():
            if problem is None:
                self.failures[address.name] = 0
                self.answered[address.name] = pids[address.name]
                if address.name in out:
                    self.catch_up(address, store=ModelStore(Path(state.store)), nginx_pid=state.nginx_pid)
                continue
            if self.answered.get(address.name) != pids[address.name]:
                continue  # still starting
            self.failures[address.name] = self.failures.get(address.name, 0) + 1
            if self.failures[address.name] >= self.policy.failures and address.name not in out:
                self.fence(address, problem, nginx_pid=state.nginx_pid)

    # -- fencing and catching up ------------------------------------------------------------------------------------

    def fence(self, address: InstanceAddress, reason: str, *, nginx_pid: int | None) -> None:
        """Take ``address`` out of nginx's rotation and record it as fenced."""
        self._rotate(address, serving=False, nginx_pid=nginx_pid)
        self._record(address.name, {"since": time.time(), "reason": reason})
        self.say(
            f"{address.name} out of rotation: {self.policy.failures} readiness probes failed, the last with "
            f"{reason}; rollouts leave it out until it answers and has caught up"
        )

    def catch_up(self, address: InstanceAddress, *, store: ModelStore, nginx_pid: int | None) -> bool:
        """Bring a fenced instance to the current ``models.config``; back in rotation once it serves all of it.

        As in a rollout, a label may only name a version the server has loaded: the instance is first sent the
        file's versions with the labels it can take now, then, once every version is AVAILABLE on it, the whole
        file (under the store's lock, so no rollout writes it in between; if one did, again).

        Returns:
            True when the instance is back in rotation (False: it stays out, and the next probe tries again).
        """
        instance = Instance(address)
        try:
            for _ in range(3):
                models = store.read_config()
                loaded = {name: self._available(instance, name) for name in models}
                staged = {
                    name: replace(m, labels={k: v for k, v in m.labels.items() if v in loaded[name]})
                    for name, m in models.items()
                }
                self._send(instance, store, staged)
                missing = self._wait_available(instance, {name: m.versions for name, m in models.items()})
                if missing:
                    self.say(f"{address.name} answers again but {missing} are not AVAILABLE on it; it stays out")
                    return False
                with store.locked():  # a rollout's reconfigure holds it too
                    if store.read_config() != models:
                        continue  # a rollout moved on meanwhile: catch up with that
                    self._send(instance, store, models)
                    break
            else:
                return False
        except InstanceError as error:
            self.say(f"{address.name} answers again but did not take models.config: {error}; it stays out")
            return False
        finally:
            instance.close()
        self._rotate(address, serving=True, nginx_pid=nginx_pid)
        self._record(address.name, None)
        served = ", ".join(f"{name} {list(m.versions)} (stable {m.stable})" for name, m in models.items()) or "none"
        self.say(f"{address.name} caught up with models.config (serving {served}): back in rotation")
        return True

    def _send(self, instance: Instance, store: ModelStore, models: dict[str, ModelServing]) -> None:
        text = store.render_config(models, store_path=instance.address.store_path)
        instance.reload_config(text, timeout_s=self.policy.catch_up_timeout_s)

    def _available(self, instance: Instance, model: str) -> set[int]:
        states = instance.model_status(model, timeout_s=self.policy.catch_up_timeout_s)
        return {version for version, status in states.items() if status.state == "AVAILABLE"}

    def _wait_available(self, instance: Instance, wanted: dict[str, tuple[int, ...]]) -> list[str]:
        deadline = time.monotonic() + self.policy.catch_up_timeout_s
        while True:
            missing = [
                f"{model} {version}"
                for model, versions in wanted.items()
                for version in sorted(set(versions) - self._available(instance, model))
            ]
            if not missing or time.monotonic() > deadline:
                return missing
            time.sleep(0.5)

    def _rotate(self, address: InstanceAddress, *, serving: bool, nginx_pid: int | None) -> None:
        conf = self.fleet_dir / "nginx" / "nginx.conf"
        if set_in_rotation(conf, address, serving=serving) and nginx_pid and pid_alive(nginx_pid):
            # Without waiting for the old workers: those wait on the cut-off instance until nginx's upstream read
            # timeout retries their requests elsewhere, and the next probe must not wait on them.
            reload(nginx_pid, wait=False)

    def _record(self, name: str, entry: dict[str, Any] | None) -> None:
        out = fenced(self.fleet_dir)
        if entry is None:
            out.pop(name, None)
        else:
            out[name] = entry
        record = {"fenced": out, "updated": time.time()}
        atomic_write(readiness_path(self.fleet_dir), json.dumps(record, indent=2, sort_keys=True) + "\n")


# How long a failed rollout step waits to see whether readiness fences an instance it failed on.
_DEFAULT = ReadinessPolicy()
FENCE_WAIT_S = _DEFAULT.failures * (_DEFAULT.period_s + _DEFAULT.timeout_s) + 2.0


class Rotation:
    """The rotation as a rollout sees it: which instances are fenced, and steps re-run without those that fenced
    while the step ran. ``fleet_dir`` None (compose, Kubernetes: no watchdog here) means every instance is in."""

    def __init__(self, fleet_dir: Path | None, *, fence_wait_s: float = FENCE_WAIT_S) -> None:
        self.fleet_dir = fleet_dir
        self.fence_wait_s = fence_wait_s if fleet_dir else 0.0

    def out(self) -> set[str]:
        """The names of the fenced instances."""
        return set(fenced(self.fleet_dir)) if self.fleet_dir else set()

    def of(self, instances: list[Instance]) -> list[Instance]:
        """``instances`` less the fenced ones."""
        out = self.out()
        return [instance for instance in instances if instance.name not in out]

    def without_fenced(self, step: str, attempt: Callable[[], str], *, say: Callable[[str], None]) -> str:
        """Run ``attempt`` (an idempotent step); if it fails and an instance is fenced within ``fence_wait_s`` (it
        stopped answering: the likely cause), run it once more, which leaves that instance out."""
        before = self.out()
        try:
            return attempt()
        except (RunwayError, OSError) as error:
            left: set[str] = set()
            deadline = time.monotonic() + self.fence_wait_s
            while not left and time.monotonic() < deadline:
                time.sleep(0.2)
                left = self.out() - before
            if not left:
                raise
            say(f"{step}: {', '.join(sorted(left))} left the rotation ({error}); the step runs again without it")
            return attempt()
