"""The model server process: flags, the model manager, the gRPC and REST endpoints, polling, shutdown."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from pipeline_components.errors import ServingError
from pipeline_components.serving import model_config
from pipeline_components.serving.core import ServingCore
from pipeline_components.serving.flags import ServerFlags, listen_address, parse_command_line
from pipeline_components.serving.grpc_api import make_grpc_server
from pipeline_components.serving.manager import LoadOptions, ModelManager
from pipeline_components.serving.metrics import Metrics
from pipeline_components.serving.request_log import RequestLogger, RequestLogOptions
from pipeline_components.serving.rest import RestServer
from pipeline_components.serving.rest_transport import Limits
from pipeline_components.serving.servable import Servable
from pipeline_components.serving.warmup import warmup

log = logging.getLogger("runway.model_server")


class ModelServer:
    """A running server built from parsed flags.

    Args:
        flags: the command line.
    """

    def __init__(self, flags: ServerFlags) -> None:
        self.flags = flags
        self.metrics = Metrics()
        self.request_log = RequestLogger(
            metrics=self.metrics,
            options=RequestLogOptions(
                queue_size=flags.runway_request_log_queue_size,
                max_file_bytes=flags.runway_request_log_max_file_bytes,
                max_file_seconds=flags.runway_request_log_max_file_seconds,
            ),
        )
        self.manager = ModelManager(
            loader=self._load,
            options=LoadOptions(
                max_num_load_retries=flags.max_num_load_retries,
                load_retry_interval_s=flags.load_retry_interval_micros / 1e6,
                allow_version_labels_for_unavailable_models=flags.allow_version_labels_for_unavailable_models,
            ),
            on_load=lambda name, version, path, ok, seconds: self.metrics.record_load(
                model_name=name, version=version, path=str(path), ok=ok, seconds=seconds
            ),
            config_listener=self.request_log,  # each model's logging_config, on every reload
        )
        self.core = ServingCore(self.manager, self.request_log)
        self._stopped = threading.Event()
        self._config_text: str | None = None
        self.grpc_port = 0
        self.rest_port = 0
        self._rest: RestServer | None = None

    def _load(self, name: str, version: int, path: Path) -> Servable:
        servable = Servable.load(name=name, version=version, path=path)
        if self.flags.enable_model_warmup:
            replayed = warmup(servable)
            if replayed:
                log.info(
                    "Finished reading warmup data for model at %s. Number of warmup records read: %d.", path, replayed
                )
        return servable

    def _initial_config(self) -> model_config.ModelServerConfig:
        if self.flags.model_config_file:
            if self.flags.model_base_path:
                log.warning("--model_config_file is given: --model_base_path is not used (as in TF Serving)")
            self._config_text = Path(self.flags.model_config_file).read_text()
            return model_config.read_model_server_config(self.flags.model_config_file)
        return model_config.single_model_config(self.flags.model_name, self.flags.model_base_path)

    def start(self) -> None:
        """Load the initial models, then open the gRPC and REST ports, then start polling.

        Raises:
            ServingError: the initial config is invalid or refused, or a port cannot be bound.
        """
        monitoring = (
            model_config.read_monitoring_config(self.flags.monitoring_config_file)
            if self.flags.monitoring_config_file
            else model_config.MonitoringConfig()
        )
        self.manager.reload_config(self._initial_config())
        flags = self.flags
        self._grpc, self.grpc_port = make_grpc_server(core=self.core, metrics=self.metrics, flags=flags)
        self._grpc.start()
        print(f"Running gRPC ModelServer at {listen_address(flags.bind_address, self.grpc_port)} ...", flush=True)
        if flags.rest_api_port:
            prometheus = monitoring.prometheus_config
            path = (prometheus.path or model_config.DEFAULT_PROMETHEUS_PATH) if prometheus.enable else None
            self._rest = RestServer(
                core=self.core,
                metrics=self.metrics,
                host=flags.bind_address,
                port=flags.rest_api_port,
                limits=Limits(
                    max_connections=flags.runway_rest_max_connections,
                    max_active_requests=flags.rest_api_num_threads,
                    timeout_s=flags.rest_api_timeout_in_ms / 1000 if flags.rest_api_timeout_in_ms else None,
                    max_body_bytes=flags.runway_max_request_bytes,
                ),
                prometheus_path=path,
                refresh_gauges=self._refresh_gauges,
            )
            self._rest.start()
            self.rest_port = self._rest.port
            print(f"Exporting HTTP/REST API at:{listen_address(flags.bind_address, self.rest_port)} ...", flush=True)
        self.manager.start_polling(self.flags.file_system_poll_wait_seconds)
        if self.flags.model_config_file and self.flags.model_config_file_poll_wait_seconds > 0:
            threading.Thread(target=self._poll_config_file, name="config-poller", daemon=True).start()

    def _refresh_gauges(self) -> None:
        counts: dict[str, int] = {}
        for servable in self.manager.available():
            counts[servable.name] = counts.get(servable.name, 0) + 1
        self.metrics.set_available_versions(counts)

    def _poll_config_file(self) -> None:
        while not self._stopped.wait(self.flags.model_config_file_poll_wait_seconds):
            try:
                text = Path(self.flags.model_config_file).read_text()
                if text == self._config_text:
                    continue
                self._config_text = text
                config = model_config.parse_model_server_config(text, source=self.flags.model_config_file)
                self.manager.reload_config(config)
                log.info("Reloaded model config file %s", self.flags.model_config_file)
            except (OSError, ServingError) as error:
                log.error("Reloading model config file %s failed: %s", self.flags.model_config_file, error)

    def wait(self) -> None:
        """Block until ``stop`` (SIGTERM or SIGINT in ``main``)."""
        self._stopped.wait()

    def stop(self) -> None:
        """Stop polling, drain both ports, close the request log's files, then unload the models.

        Like TF Serving on SIGTERM: new requests are refused at once (a client or load balancer retries them on
        another instance), requests already running finish (up to ``_DRAIN_SECONDS``), and only then are the
        servables unloaded, so no request that was accepted fails because the instance is going away.
        """
        self._stopped.set()
        grpc_server = getattr(self, "_grpc", None)
        drained = grpc_server.stop(grace=_DRAIN_SECONDS) if grpc_server is not None else None
        if self._rest is not None:
            self._rest.stop(_DRAIN_SECONDS)
        if drained is not None:
            drained.wait(_DRAIN_SECONDS + 1)
        self.request_log.stop()  # after the drain: the last answered requests are logged too
        self.manager.stop()


_DRAIN_SECONDS = 5.0


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGTERM/SIGINT.

    Args:
        argv: the arguments (``sys.argv[1:]`` when None).

    Returns:
        The exit status: 0 after a clean stop, 1 when the server cannot start, 2 for a bad command line.
    """
    flags = parse_command_line(sys.argv[1:] if argv is None else argv)
    if isinstance(flags, int):
        return flags
    return run(flags)


def run(flags: ServerFlags) -> int:
    """Start a server from parsed flags and serve until SIGTERM/SIGINT; the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = ModelServer(flags)
    try:
        server.start()
    except (ServingError, OSError) as error:
        print(f"runway-model-server: cannot start: {error}", file=sys.stderr)
        server.stop()
        return 1
    signal.signal(signal.SIGTERM, lambda *_: server._stopped.set())
    signal.signal(signal.SIGINT, lambda *_: server._stopped.set())
    server.wait()
    server.stop()
    return 0
