"""What an operator does to the fleet, the same from the ``runway fleet`` command and from Airflow's tasks.

A rollout of one version with the pipeline's serving settings (``roll_out``), the pipeline's request logging
applied without a rollout (``apply_request_logging``), the running fleet or a clear error (``running_fleet``),
and the notification of downstream consumers once a version is stable (``notify``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pipeline_components.config import PipelineConfig
from pipeline_components.errors import RunwayError
from pipeline_components.fleet import FleetState, read_fleet_state
from pipeline_components.fleet.local import pid_alive
from pipeline_components.fleet.reconfigure import reconfigure
from pipeline_components.fleet.request_logging import cannot_log, fleet_request_logging
from pipeline_components.fleet.rollout import Rollout, RolloutFailed, RolloutOptions
from pipeline_components.fleet.store import ModelStore, RequestLogging
from pipeline_components.settings import Settings


def options_for(
    config: PipelineConfig, *, verify: bool = True, request_logging: RequestLogging | None = None
) -> RolloutOptions:
    """The rollout's options from the pipeline's ``serving`` settings (``request_logging``: the fleet's own,
    ``fleet_request_logging``)."""
    serving = config.serving
    return RolloutOptions(
        retain_versions=serving.retain_versions,
        available_timeout_s=serving.rollout_timeout_s,
        tolerance=serving.verify_tolerance,
        latency_budget_ms=serving.verify_latency_ms,
        verify=verify,
        request_logging=request_logging,
        canary=serving.canary if serving.rollout == "canary" else None,
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
        options=options_for(
            config,
            verify=verify,
            request_logging=fleet_request_logging(config, home=settings.home, fleet=state, say=say),
        ),
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


def apply_request_logging(settings: Settings, config: PipelineConfig, *, say: Callable[[str], None]) -> str:
    """Give the running fleet the pipeline's ``serving.request_logging`` now, without a rollout.

    Only the model's ``logging_config`` changes: the versions and labels stay, so no version is loaded or unloaded
    and every instance keeps answering (TF Serving's reload changes only what differs).

    Raises:
        RunwayError: no fleet runs, the fleet cannot log while logging is asked for, the fleet serves no version
            of the model, a rollout of it is in progress, or an instance did not take the config.
    """
    state = running_fleet(settings)
    model = config.serving.model_name
    reason = cannot_log(state)
    if reason is not None and config.serving.request_logging is not None:
        raise RunwayError(f"cannot log the requests of {model}: {reason}")
    rollout = rollout_on(state, settings, config, say=say)
    logging = rollout.options.request_logging
    try:
        if rollout.journal().get("status") == "in_progress":
            raise RunwayError(
                f"a rollout of {model} is in progress (candidate {rollout.journal().get('candidate')}); each of its "
                "steps applies the request logging too: wait for it, or run this again once it ended"
            )
        serving = rollout.store.serving(model)
        if not serving.versions:
            raise RunwayError(
                f"the fleet serves no version of {model}; roll one out (`runway fleet rollout {config.name}`), "
                "which applies the request logging too"
            )
        errors = reconfigure(
            rollout.store,
            model,
            replace(serving, logging=logging),
            all_instances=rollout.instances,
            timeout_s=rollout.options.rpc_timeout_s,
        )
    finally:
        rollout.close()
    if errors:
        raise RunwayError(f"request logging of {model} not applied everywhere: " + "; ".join(errors))
    if logging is None:
        return f"request logging of {model} is off on {len(state.instances)} instance(s)"
    return (
        f"request logging of {model} is on at sampling rate {logging.sampling_rate:g} on {len(state.instances)} "
        f"instance(s): {logging.filename_prefix}-*.tfrecord"
    )


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
