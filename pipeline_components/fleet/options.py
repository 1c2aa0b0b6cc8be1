"""How a rollout runs: the options the pipeline's ``serving`` settings give it (``fleet.operations.options_for``)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline_components.config.serving import CanaryConfig
from pipeline_components.fleet.store import RequestLogging


@dataclass(frozen=True, kw_only=True)
class RolloutOptions:
    """How a rollout runs (the pipeline's ``serving`` settings; ``fleet.operations.options_for`` reads them).

    Attributes:
        retain_versions: version folders kept on disk by ``retire`` (labelled or loaded ones always are).
        available_timeout_s: the longest ``wait_available`` waits, and each reload's deadline.
        tolerance: relative difference allowed between an answer and the exported model's prediction.
        latency_budget_ms: the median latency ``verify`` accepts per instance and protocol.
        rpc_timeout_s: deadline of each status and predict call.
        verify: whether ``run`` includes the verify step.
        restart_wait_s: the longest a step waits for an instance the local fleet's watchdog is restarting.
        request_logging: the model's ``logging_config`` in every config the rollout sends (None: no logging);
            ``fleet.request_logging.fleet_request_logging`` derives it from the pipeline's configuration.
        canary: the canary analysis between ``verify`` and ``promote`` (``fleet.canary``); None: none.
    """

    retain_versions: int = 3
    available_timeout_s: float = 300.0
    tolerance: float = 1e-4
    latency_budget_ms: float = 1000.0
    rpc_timeout_s: float = 30.0
    verify: bool = True
    restart_wait_s: float = 120.0
    request_logging: RequestLogging | None = None
    canary: CanaryConfig | None = None
