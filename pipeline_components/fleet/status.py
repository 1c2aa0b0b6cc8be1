"""What a fleet is doing: its processes' liveness and what each instance reports for each configured model.

``runway fleet status`` prints this; ``--json`` prints it as it is returned here.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline_components.fleet import FleetState
from pipeline_components.fleet.instances import Instance, InstanceError
from pipeline_components.fleet.store import ModelStore
from pipeline_components.processes import pid_alive


def fleet_status(
    state: FleetState | None,
    store: ModelStore,
    *,
    timeout_s: float = 2.0,
    watchdog: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A report of ``state``: ``running``, the addresses, nginx's pid, ``models`` as ``models.config`` has them,
    and per instance its pid, liveness and each model's versions with their states (or the error it gave).

    Args:
        state: the fleet (None: no fleet is described, the report is ``{"running": False}``).
        store: the model store whose ``models.config`` the fleet serves.
        timeout_s: how long to wait for each instance's answer.
        watchdog: the local fleet's watchdog report (``fleet.restarts.watchdog_report``): adds ``watchdog`` (its
            pid and whether it runs) and, to nginx and each instance, ``restarts``, ``last_exit`` and
            ``supervision`` (running, backoff, held); to each instance ``rotation`` ("in", or why it is out).
    """
    if state is None:
        return {"running": False}
    models = store.read_config()
    report: dict[str, Any] = {
        "running": pid_alive(state.nginx_pid),
        "rest_url": state.rest_url,
        "grpc_target": state.grpc_target,
        "server": state.server,
        "nginx": {"pid": state.nginx_pid, "alive": pid_alive(state.nginx_pid)},
        "models": {name: {"versions": list(m.versions), "labels": m.labels} for name, m in models.items()},
        "instances": [],
    }
    supervised = (watchdog or {}).get("processes", {})
    if watchdog is not None:
        report["watchdog"] = {"pid": watchdog.get("pid"), "alive": bool(watchdog.get("alive"))}
        report["nginx"].update(_supervision(supervised.get("nginx")))
    for address in state.instances:
        entry: dict[str, Any] = {"name": address.name, "pid": address.pid, "alive": pid_alive(address.pid)}
        if watchdog is not None:
            entry.update(_supervision(supervised.get(address.name)))
            out = (watchdog.get("fenced") or {}).get(address.name)
            entry["rotation"] = f"out of rotation since {_clock(out['since'])}: {out['reason']}" if out else "in"
        instance = Instance(address)
        try:
            for model in models:
                try:
                    versions = instance.model_status(model, timeout_s=timeout_s)
                except InstanceError as error:
                    entry["error"] = str(error)
                    break
                entry.setdefault("models", {})[model] = {str(v): s.state for v, s in sorted(versions.items())}
        finally:
            instance.close()
        report["instances"].append(entry)
    return report


def _supervision(entry: dict[str, Any] | None) -> dict[str, Any]:
    entry = entry or {}
    return {
        "restarts": int(entry.get("restarts", 0)),
        "last_exit": entry.get("last_exit"),
        "supervision": entry.get("state", "unsupervised"),
    }


def _clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))
