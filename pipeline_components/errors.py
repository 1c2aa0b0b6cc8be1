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
