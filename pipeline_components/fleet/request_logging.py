"""The fleet's request logging, from the pipeline's ``serving.request_logging`` (docs/serving.md).

Every config the rollout sends carries the model's ``logging_config`` when the pipeline asks for logging, so every
instance logs a sampled share of its requests to one prefix per model on the shared storage:
``<directory>/<model>/<model>-<UTC time>-<host>-<pid>-<n>.tfrecord`` (``directory`` defaults to
``<RUNWAY_HOME>/fleet/request_logs``). Only runway's model server has a log collector: TF Serving's
``tensorflow_model_server`` refuses any ``logging_config`` (tensorflow/serving#408), so a fleet of it, or of the
official image (compose, Kubernetes), gets none, and the operator is told why.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline_components.config import PipelineConfig
from pipeline_components.fleet import FleetState, fleet_dir
from pipeline_components.fleet.store import RequestLogging

REQUEST_LOG_DIR = "request_logs"
TF_SERVING_BINARY = "tensorflow_model_server"


def request_log_prefix(*, home: Path, model: str, directory: str | Path | None = None) -> Path:
    """The ``filename_prefix`` of ``model``: ``<directory or RUNWAY_HOME/fleet/request_logs>/<model>/<model>``."""
    root = Path(directory) if directory else fleet_dir(home) / REQUEST_LOG_DIR
    return root / model / model


def cannot_log(fleet: FleetState) -> str | None:
    """Why the instances of ``fleet`` cannot take a ``logging_config`` (None: they can)."""
    if fleet.kind != "local":
        return (
            f"a {fleet.kind} fleet runs the official tensorflow/serving image, whose tensorflow_model_server refuses "
            "any logging_config (no log collector is registered); its path is a logging proxy at the load balancer "
            "(docs/serving.md, 'With the official tensorflow/serving image'), not built yet"
        )
    if Path(fleet.server).name == TF_SERVING_BINARY:
        return (
            f"this fleet runs {fleet.server}, which refuses any logging_config (no log collector is registered); "
            "to log requests, start the fleet with runway's model server: `runway fleet down`, then "
            "`runway fleet up --server scripts/runway-model-server`"
        )
    return None


def fleet_request_logging(
    config: PipelineConfig, *, home: Path, fleet: FleetState, say: Callable[[str], None]
) -> RequestLogging | None:
    """The ``logging_config`` the fleet's instances get for ``config``'s model (None: no logging).

    A pipeline that asks for logging on a fleet that cannot log gets none, and ``say`` tells the operator why; the
    rollout goes on (serving matters more than logging).
    """
    wanted = config.serving.request_logging
    if wanted is None:
        return None
    reason = cannot_log(fleet)
    if reason is not None:
        say(f"request logging of {config.serving.model_name} is configured but left off: {reason}")
        return None
    prefix = request_log_prefix(home=home, model=config.serving.model_name, directory=wanted.directory)
    return RequestLogging(filename_prefix=str(prefix), sampling_rate=wanted.sampling_rate)
