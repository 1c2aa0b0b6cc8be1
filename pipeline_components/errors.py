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
