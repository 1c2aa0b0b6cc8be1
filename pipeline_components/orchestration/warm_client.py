"""The warm runtime's client, by its old name: the service's start and stop (``warm_service``) and the node
runner (``warm_runner``). The CLI and ``orchestration/operators.py`` import these names from here.
"""

from __future__ import annotations

from pipeline_components.orchestration.warm_runner import (
    EXIT_SERVICE_LOST,
    WarmNodeRunner,
    node_runner,
    runtime_module,
)
from pipeline_components.orchestration.warm_service import (
    SERVICE_MODULE,
    ServicePaths,
    WarmSettings,
    ensure_service,
    ping,
    start_in_background,
    stop_service,
)
from pipeline_components.warm_protocol import EXIT_MARKER, UnsafeRuntimeFolderError, WarmRuntimeUnavailable

__all__ = [
    "EXIT_MARKER",
    "EXIT_SERVICE_LOST",
    "SERVICE_MODULE",
    "ServicePaths",
    "UnsafeRuntimeFolderError",
    "WarmNodeRunner",
    "WarmRuntimeUnavailable",
    "WarmSettings",
    "ensure_service",
    "node_runner",
    "ping",
    "runtime_module",
    "start_in_background",
    "stop_service",
]
