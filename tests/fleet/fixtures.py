"""A real 3-instance local fleet behind nginx, with tiny models, for tests (importable by other test packages).

    from tests.fleet.fixtures import TinyModels, start_fleet

``tiny_models(dir)`` builds the SavedModels once (runtime environment, ~15 s); ``start_fleet`` starts the fleet on
free loopback ports under a temporary RUNWAY_HOME (~30 s: each instance imports TensorFlow) and returns a
``RunningFleet`` whose ``stop()`` leaves no process behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline_components.fleet import FleetState
from pipeline_components.fleet.local import FleetSpec, LocalFleet
from pipeline_components.fleet.rollout import Rollout, RolloutOptions
from pipeline_components.fleet.store import ModelStore
from pipeline_components.ports import free_base_port, free_ports
from pipeline_components.settings import CHECKOUT, Settings

TINY_KINDS = ("good_a", "good_b", "differs", "corrupt", "flights_shaped", "flights_good", "flights_slow",
              "flights_failing", "flights_shifted")  # fmt: skip

__all__ = ["AccessLog", "RunningFleet", "fleet_port_args", "free_ports", "start_fleet", "tiny_models"]


def fleet_port_args(instances: int = 2) -> list[str]:
    """``runway fleet up``'s port options for ``instances`` instances, every port free and apart from the others:
    instance i on ``base + 10 i`` (gRPC) and ``base + 10 i + 1`` (REST), nginx on ``base + 2`` and ``base + 3``."""
    base = free_base_port([2, 3, *(10 * i + k for i in range(instances) for k in (0, 1))])
    return ["--rest-port", str(base + 2), "--grpc-port", str(base + 3), "--instance-base-port", str(base)]


def tiny_models(out: Path) -> Path:
    """Build the tiny SavedModels of ``tests/fleet/tiny_models.py`` into ``out`` (once)."""
    if all((out / kind / "saved_model.pb").is_file() for kind in TINY_KINDS):
        return out
    settings = Settings.from_env()
    subprocess.run(
        [str(settings.runtime_python), str(CHECKOUT / "tests" / "fleet" / "tiny_models.py"), str(out)],
        check=True,
        env={**os.environ, "PYTHONPATH": str(CHECKOUT), "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=subprocess.DEVNULL,
    )
    return out


@dataclass
class RunningFleet:
    settings: Settings
    fleet: LocalFleet
    state: FleetState
    store: ModelStore
    replica: Path  # serving-2 sees the store through this folder (to break one instance's copy on purpose)
    models: Path

    def publish(self, model: str, version: int, kind: str, *, broken_on_replica: bool = False) -> None:
        """Write a tiny model into the store as ``version`` (and into serving-2's view of the store)."""
        self.store.write_version(model, version, self.models / kind)
        replica_model = self.replica / model
        replica_model.mkdir(parents=True, exist_ok=True)
        target = replica_model / str(version)
        if broken_on_replica:
            shutil.copytree(self.models / "corrupt", target)
        else:
            target.symlink_to(self.store.version_path(model, version), target_is_directory=True)

    def rollout(self, model: str, **options: object) -> Rollout:
        return Rollout(
            store=self.store,
            fleet=self.fleet.state() or self.state,
            model=model,
            home=self.settings.home,
            options=RolloutOptions(**{"available_timeout_s": 120.0, **options}),  # type: ignore[arg-type]
            say=print,
        )

    def stop(self) -> None:
        self.fleet.down()

    def access_log(self) -> AccessLog:
        return AccessLog(self.fleet.log_dir / "nginx-access.log")


class AccessLog:
    """nginx's access log of the fleet: one line per request it answered, with the instance that served it
    (``upstream=127.0.0.1:PORT``; infra/nginx/fleet.conf.template). Tests wait on it instead of sleeping: "the load
    has sent N more requests", "this instance answers again"."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        """Where the log ends now; ``since(mark)`` is what nginx answered after this moment."""
        return self.path.stat().st_size if self.path.exists() else 0

    def since(self, mark: int) -> list[str]:
        with self.path.open("rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace").splitlines()

    def wait(self, mark: int, what: str, done: Callable[[list[str]], bool], *, timeout_s: float = 120.0) -> None:
        """Poll until ``done(lines since mark)``; fail with ``what`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not done(self.since(mark)):
            assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s: {what}"
            time.sleep(0.1)

    def wait_answered(self, mark: int, count: int, *, by: str | None = None, timeout_s: float = 120.0) -> None:
        """Wait until nginx has answered ``count`` requests with 200 since ``mark`` (only by upstream ``by``)."""

        def answered(lines: list[str]) -> bool:
            ok = [line for line in lines if '" 200 ' in line]
            if by is not None:
                ok = [line for line in ok if f"upstream={by} " in line]
            return len(ok) >= count

        where = f" by {by}" if by else ""
        self.wait(mark, f"{count} requests answered{where} (see {self.path})", answered, timeout_s=timeout_s)


DECEMBER_SAMPLE = Path(__file__).parent / "data" / "flights_span_12_sample.csv"  # 40 real flights of span 12


def prepare_december_sample(settings: Settings) -> Path:
    """Write the 40 real December flights as the prepared span 12 of flights (as ``runway data prepare`` does)."""
    span = settings.data_dir / "flights" / "span-2013-12"
    span.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(DECEMBER_SAMPLE, span / "flights.csv"))


def start_fleet(
    home: Path,
    models: Path,
    *,
    instances: int = 3,
    server: str | None = None,
    extra_server_flags: tuple[str, ...] = (),
) -> RunningFleet:
    settings = Settings.from_env(
        {"RUNWAY_HOME": str(home), "RUNWAY_RUNTIME_PYTHON": str(Settings.from_env().runtime_python)}
    )
    replica = home / "replica"
    replica.mkdir(parents=True, exist_ok=True)
    ports = free_ports(2 + 2 * instances)
    spec = FleetSpec(
        instances=instances,
        rest_port=ports[0],
        grpc_port=ports[1],
        instance_ports=[(ports[2 + 2 * i], ports[3 + 2 * i]) for i in range(instances)],
        store_paths={f"serving-{instances - 1}": str(replica)},
        server=server,
        extra_server_flags=extra_server_flags,
    )
    fleet = LocalFleet(settings, say=print)
    state = fleet.up(spec)
    return RunningFleet(settings, fleet, state, ModelStore(settings.model_store), replica, models)
