"""The serving fleet: model store and its ``models.config``, the local fleet behind nginx, the fleet-wide rollout.

Orchestrator side (no TensorFlow). The small public API the other parts of the product rely on:

- **labels**: ``STABLE_LABEL`` (``"stable"``: what clients get by default) and ``CANARY_LABEL`` (``"canary"``:
  the candidate while it is verified);
- **the model config file** TF Serving reads (``--model_config_file``): ``model_config_path(store)`` =
  ``<model store>/models.config``, a text ``ModelServerConfig`` with one ``model_config_list`` entry per model,
  ``version_policy { specific { versions: ... } }`` and ``version_labels``; written atomically by the rollout only;
- **where the fleet is**: ``fleet_state_path(home)`` = ``$RUNWAY_HOME/fleet/fleet.json``, written by
  ``runway fleet up`` (or by any deployment that wants the rollout to drive it), read with ``read_fleet_state``:
  the load balancer's REST URL and gRPC target, and each instance's REST URL, gRPC target, the model store path
  as that instance sees it, and pid (local fleet only).

Example::

    from pipeline_components.fleet import read_fleet_state
    state = read_fleet_state()            # None when no fleet is described
    state.rest_url                         # "http://127.0.0.1:8501"  (nginx)
    state.grpc_target                      # "127.0.0.1:8500"         (nginx, grpc_pass)
    [i.rest_url for i in state.instances]  # each model server, bypassing the load balancer
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline_components.durable import atomic_write

STABLE_LABEL = "stable"
CANARY_LABEL = "canary"
LABELS = (STABLE_LABEL, CANARY_LABEL)

MODEL_CONFIG_FILE = "models.config"
FLEET_DIR = "fleet"
FLEET_STATE_FILE = "fleet.json"
# A JSON file of real examples and the exported model's own predictions for them, stored inside each pushed
# version (TF Serving ignores assets.extra/ apart from warmup records); the rollout's verify step replays it.
VERIFICATION_FILE = Path("assets.extra") / "runway_verification.json"

DEFAULT_REST_PORT = 8501
DEFAULT_GRPC_PORT = 8500
DEFAULT_INSTANCES = 3


def model_config_path(store: Path) -> Path:
    """The ``--model_config_file`` of every instance: ``<store>/models.config``."""
    return Path(store) / MODEL_CONFIG_FILE


def fleet_dir(home: Path) -> Path:
    """``$RUNWAY_HOME/fleet``: the fleet description, the local fleet's configs, pid files and logs."""
    return Path(home) / FLEET_DIR


def fleet_state_path(home: Path) -> Path:
    """``$RUNWAY_HOME/fleet/fleet.json``."""
    return fleet_dir(home) / FLEET_STATE_FILE


@dataclass(frozen=True, kw_only=True)
class InstanceAddress:
    """One model server of the fleet."""

    name: str
    rest_url: str  # http://127.0.0.1:18501
    grpc_target: str  # 127.0.0.1:18500
    # The model store as this instance sees it (a container mounts it elsewhere, e.g. /models); base paths in the
    # config sent to this instance are rewritten from the orchestrator's store path to this one.
    store_path: str
    pid: int | None = None


@dataclass(frozen=True, kw_only=True)
class FleetState:
    """A running fleet, as ``fleet.json`` describes it."""

    rest_url: str
    grpc_target: str
    store: str  # the model store as the orchestrator sees it
    model_config_file: str
    instances: list[InstanceAddress]
    kind: str = "local"  # local | compose | kubernetes
    server: str = ""  # the server binary of a local fleet
    nginx_pid: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FleetState:
        raw = json.loads(text)
        raw["instances"] = [InstanceAddress(**item) for item in raw.get("instances", [])]
        return cls(**raw)


def read_fleet_state(home: Path | None = None) -> FleetState | None:
    """The fleet described under ``home`` (default: the settings' ``RUNWAY_HOME``), or None when there is none."""
    if home is None:
        from pipeline_components.settings import Settings

        home = Settings.from_env().home
    path = fleet_state_path(home)
    if not path.is_file():
        return None
    return FleetState.from_json(path.read_text())


def write_fleet_state(home: Path, state: FleetState) -> Path:
    """Write ``fleet.json`` durably: readers see the old description or the new one, also after a crash."""
    return atomic_write(fleet_state_path(home), state.to_json() + "\n")


__all__ = [
    "CANARY_LABEL",
    "DEFAULT_GRPC_PORT",
    "DEFAULT_INSTANCES",
    "DEFAULT_REST_PORT",
    "LABELS",
    "MODEL_CONFIG_FILE",
    "STABLE_LABEL",
    "VERIFICATION_FILE",
    "FleetState",
    "InstanceAddress",
    "fleet_dir",
    "fleet_state_path",
    "model_config_path",
    "read_fleet_state",
    "write_fleet_state",
]
