"""Errors a user can hit, each saying what is wrong and what to do."""

from __future__ import annotations


class RunwayError(Exception):
    """Base class of every error the project raises on purpose."""


class ConfigError(RunwayError):
    """A pipeline configuration file is missing, malformed or inconsistent."""


class DataError(RunwayError):
    """Input data is missing or does not have the expected shape."""


class NotCompiledError(RunwayError):
    """A pipeline's TFX IR has not been compiled yet."""


class RuntimeEnvironmentError(RunwayError):
    """The pipeline runtime environment is missing or broken."""


class NetworkNamespaceError(RuntimeEnvironmentError):
    """The hosts of a deployment (network namespaces, ``deploy/hosts.py``) cannot be made here: not root, no
    iproute2, or the kernel refuses namespaces or links; the message says what to do."""


class NodeFailedError(RunwayError):
    """A TFX node exited with an error."""


class ServerFlagError(RunwayError):
    """The model server's command line has an unknown or unsupported flag, or a flag with a bad value."""


class ServingError(RunwayError):
    """A model server request or lifecycle operation failed, with TF Serving's status code.

    ``code`` is the canonical (gRPC) status code name TF Serving would answer with, e.g. ``NOT_FOUND`` or
    ``INVALID_ARGUMENT``; the REST API maps it to an HTTP status the way TF Serving does.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # (model, API, version) when a loaded version failed it (``serving.inference``): the metrics count it there.
        self.served: tuple[str, str, int] | None = None


class ModelInspectionError(RunwayError):
    """A SavedModel folder is missing or does not parse, so it cannot be inspected."""


class ServingClientError(ServingError):
    """A request of runway's serving client (``pipeline_components.client``) failed.

    ``code`` is the canonical gRPC status name (for REST, derived from the HTTP status the way TF Serving maps it);
    ``http_status`` is the HTTP status of a REST answer (None for gRPC or when no answer came); ``attempts`` counts
    the tries made, retries included; ``target`` is the URL or gRPC address asked.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        target: str = "",
        protocol: str = "",
        http_status: int | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(code, message)
        self.target = target
        self.protocol = protocol
        self.http_status = http_status
        self.attempts = attempts


class ServingUnavailableError(ServingClientError):
    """The server or load balancer could not answer (UNAVAILABLE, HTTP 502/503, connection refused or reset),
    still after the client's retries: the fleet is down or restarting; check ``runway fleet status``."""


class ServingTimeoutError(ServingClientError):
    """No answer within the client's timeout (DEADLINE_EXCEEDED, HTTP 504); not retried, the server may be busy."""


class ModelNotFoundError(ServingClientError):
    """The model or version is not served (NOT_FOUND, HTTP 404); not retried."""


class InvalidRequestError(ServingClientError):
    """The server refused the request itself (INVALID_ARGUMENT, FAILED_PRECONDITION, HTTP 400, e.g. a missing
    feature, a wrong type or an unknown label); not retried: fix the request."""


class TrainingStrategyError(RunwayError):
    """The configured tf.distribute strategy cannot run here (devices missing, TensorFlow already initialized, a
    cluster that would not start); the message names the ``training.*`` key to change (docs/training.md)."""


class TPUUnavailableError(TrainingStrategyError):
    """Strategy ``tpu`` was chosen but no TPU answered at ``training.tpu`` within ``training.tpu_timeout_s``."""


class TrainingWorkerError(TrainingStrategyError):
    """A process of a multi-process training cluster (worker, parameter server) died or timed out; every other
    process was stopped. ``role``/``index`` name it and ``log_tail`` holds the end of its log."""

    def __init__(self, message: str, *, role: str = "", index: int = -1, log_tail: str = "") -> None:
        super().__init__(message)
        self.role = role
        self.index = index
        self.log_tail = log_tail


class MonitoringError(RunwayError):
    """Served traffic cannot be compared (``pipeline_components.monitoring``)."""


class NoTrafficError(MonitoringError):
    """The request log holds no row in the window: nothing was served (or logged), which is not an alert."""


class NoTrainingStatisticsError(MonitoringError):
    """ML Metadata has no training statistics for the version that answered (not pushed by this pipeline, or its
    lineage lost)."""
