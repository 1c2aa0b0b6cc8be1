"""What an operator does to the fleet, the same from the ``runway fleet`` command and from Airflow's tasks.

A rollout of one version with the pipeline's serving settings (``roll_out``), the running fleet or a clear
error (``running_fleet``), and the notification of downstream consumers once a version is stable (``notify``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline_components.config import PipelineConfig
from pipeline_components.errors import RunwayError
from pipeline_components.fleet import FleetState, read_fleet_state
from pipeline_components.fleet.local import pid_alive
from pipeline_components.fleet.rollout import Rollout, RolloutOptions
from pipeline_components.fleet.store import ModelStore
from pipeline_components.settings import Settings


def options_for(config: PipelineConfig, *, verify: bool = True) -> RolloutOptions:
    """The rollout's options from the pipeline's ``serving`` settings."""
    serving = config.serving
    return RolloutOptions(
        retain_versions=serving.retain_versions,
        available_timeout_s=serving.rollout_timeout_s,
        tolerance=serving.verify_tolerance,
        latency_budget_ms=serving.verify_latency_ms,
        verify=verify,
    )


def running_fleet(settings: Settings) -> FleetState:
    """The fleet described under ``$RUNWAY_HOME``.

    Raises:
        RunwayError: no fleet is running (``runway fleet up`` starts one).
    """
    state = read_fleet_state(settings.home)
    if state is None or (state.kind == "local" and not pid_alive(state.nginx_pid)):
        raise RunwayError("no serving fleet is running; start one with `runway fleet up`")
    return state


def rollout_on(
    state: FleetState, settings: Settings, config: PipelineConfig, *, say: Callable[[str], None], verify: bool = True
) -> Rollout:
    """The rollout of ``config``'s model on the fleet ``state`` describes, with the pipeline's serving settings."""
    return Rollout(
        store=ModelStore(settings.model_store),
        fleet=state,
        model=config.serving.model_name,
        home=settings.home,
        options=options_for(config, verify=verify),
        say=say,
    )


def fleet_rollout(config: PipelineConfig, settings: Settings, *, say: Callable[[str], None]) -> Rollout | None:
    """The rollout of ``config``'s model on the running fleet (Airflow's tasks); None when no fleet runs."""
    state = read_fleet_state(settings.home)
    if state is None or (state.kind == "local" and not pid_alive(state.nginx_pid)):
        return None
    return rollout_on(state, settings, config, say=say)


def roll_out(
    settings: Settings, config: PipelineConfig, version: int, *, say: Callable[[str], None], verify: bool = True
) -> list[str]:
    """A whole rollout of ``version`` (every step), then the notification that it is stable."""
    state = running_fleet(settings)
    rollout = rollout_on(state, settings, config, say=say, verify=verify)
    store = rollout.store
    previous = store.serving(config.serving.model_name).stable
    try:
        lines = rollout.run(version)
    finally:
        rollout.close()
    if store.serving(config.serving.model_name).stable == version and previous != version:
        notify(config.serving.model_name, version, previous, state)
    return lines


def notify(model: str, version: int, previous: int | None, state: FleetState, context: Any = None) -> None:
    """Tell downstream consumers (webhook; Asset event inside Airflow): best effort, never raises."""
    from pipeline_components.client.notify import notify_stable

    notify_stable(
        model,
        version,
        previous_version=previous,
        rest_url=state.rest_url,
        grpc_target=state.grpc_target,
        run_id=(context or {}).get("run_id"),
        outlet_events=(context or {}).get("outlet_events"),
    )
