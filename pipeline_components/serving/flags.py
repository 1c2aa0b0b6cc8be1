"""The model server's command line, with TF Serving's flag names, defaults and ``--flag=value`` syntax.

Flags are the ones of ``tensorflow_model_server`` (tensorflow_serving/model_servers/main.cc) that this server
implements. Any other flag, TF Serving's or not, is refused with a message naming it: a silently ignored flag
would make this server behave differently from the binary it stands in for.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from typing import Any

from pipeline_components.errors import ServerFlagError

# Flags of tensorflow_model_server this server does not implement; named in the refusal so it is clear that the
# flag is known, and why it is refused.
_UNSUPPORTED = frozenset(
    {
        "grpc_socket_path",
        "grpc_channel_arguments",
        "grpc_max_threads",
        "enable_batching",
        "allow_version_labels",
        "batching_parameters_file",
        "model_config_file_poll_wait_seconds_for_platform",
        "rest_api_num_threads",
        "rest_api_timeout_in_ms",
        "rest_api_enable_cors_support",
        "tensorflow_session_parallelism",
        "tensorflow_intra_op_parallelism",
        "tensorflow_inter_op_parallelism",
        "ssl_config_file",
        "platform_config_file",
        "per_process_gpu_memory_fraction",
        "saved_model_tags",
        "flush_filesystem_caches",
        "use_tflite_model",
        "num_request_iterations_for_warmup",
        "enable_signature_method_name_check",
        "xla_cpu_compilation_enabled",
        "enable_profiler",
        "thread_pool_factory_config_file",
        "mixed_precision",
        "remove_unused_fields_from_bundle_metagraph",
        "prefer_tflite_model",
        "tflite_num_interpreters_per_pool",
        "tflite_interpreter_pool_size",
        "skip_initialize_tpu",
        "rest_api_host",
        "tensorflow_session_config_file",
        "enable_grpc_healthcheck_service",
        "force_allow_any_version_labels_for_unavailable_models",
    }
)


@dataclass(frozen=True)
class ServerFlags:
    """Parsed command line; names and defaults are tensorflow_model_server's.

    Attributes:
        port: gRPC port (0 picks a free one and prints it).
        rest_api_port: REST port; 0 disables the REST API (as in TF Serving).
        model_name: name of the single model served with ``model_base_path``.
        model_base_path: base path of the single model (ignored with ``model_config_file``).
        model_config_file: text ``ModelServerConfig`` with a ``model_config_list``.
        model_config_file_poll_wait_seconds: re-read ``model_config_file`` this often; 0 reads it once.
        file_system_poll_wait_seconds: look for new versions this often; 0 looks once, at start.
        monitoring_config_file: text ``MonitoringConfig`` (the Prometheus endpoint).
        enable_model_warmup: replay ``assets.extra/tf_serving_warmup_requests`` before a version is available.
        max_num_load_retries: retries of a failed load before the version is given up (END with the error).
        load_retry_interval_micros: wait between load retries.
        allow_version_labels_for_unavailable_models: let a new label point at a version not yet available.
        runway_max_request_bytes: largest REST body or gRPC message accepted (this server's own flag).
    """

    port: int = 8500
    rest_api_port: int = 0
    model_name: str = "default"
    model_base_path: str = ""
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int = 1
    monitoring_config_file: str = ""
    enable_model_warmup: bool = True
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    allow_version_labels_for_unavailable_models: bool = False
    runway_max_request_bytes: int = field(default=64 * 1024 * 1024)


USAGE = "usage: runway-model-server --flag=value ...\n" + "\n".join(
    f"  --{f.name}={f.default!r}" for f in fields(ServerFlags)
)


def _convert(name: str, kind: Any, raw: str) -> Any:
    if kind in (bool, "bool"):
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise ServerFlagError(f"flag --{name} takes true or false, not {raw!r}")
    if kind in (int, "int"):
        try:
            return int(raw)
        except ValueError:
            raise ServerFlagError(f"flag --{name} takes an integer, not {raw!r}") from None
    return raw


def parse_flags(argv: list[str]) -> ServerFlags:
    """Parse tensorflow_model_server-style arguments.

    Accepts ``--name=value`` (and ``-name=value``), and ``--name`` alone for a boolean flag, as TensorFlow's flag
    parser does.

    Args:
        argv: the arguments, without the program name.

    Returns:
        The parsed flags.

    Raises:
        ServerFlagError: an unknown or unsupported flag, a positional argument, a bad value, or neither
            ``--model_base_path`` nor ``--model_config_file``.
    """
    known = {f.name: f.type for f in fields(ServerFlags)}
    values: dict[str, Any] = {}
    for arg in argv:
        if not arg.startswith("-"):
            raise ServerFlagError(f"unexpected argument {arg!r}: flags are written --name=value")
        body = arg.lstrip("-")
        name, has_value, raw = body.partition("=")
        if name in _UNSUPPORTED:
            raise ServerFlagError(
                f"flag --{name} of tensorflow_model_server is not supported by this server; "
                "remove it or run the real tensorflow_model_server"
            )
        if name not in known:
            raise ServerFlagError(f"unknown flag --{name}\n{USAGE}")
        kind = known[name]
        if not has_value:
            if kind not in (bool, "bool"):
                raise ServerFlagError(f"flag --{name} needs a value: --{name}=VALUE")
            raw = "true"
        values[name] = _convert(name, kind, raw)
    flags = ServerFlags(**values)
    if not flags.model_base_path and not flags.model_config_file:
        raise ServerFlagError("give --model_base_path (with --model_name) or --model_config_file")
    # With both, TF Serving reads the config file and leaves --model_base_path unused (server.cc); so does this
    # server (server.py logs that it does).
    return flags


def parse_command_line(args: list[str]) -> ServerFlags | int:
    """Parse the command line for ``main``: the flags, or the exit status after printing help or the error.

    Kept free of TensorFlow imports so that a bad command line is answered at once.
    """
    if args in (["--help"], ["-h"], ["--helpfull"]):
        print(USAGE)
        return 0
    try:
        return parse_flags(args)
    except ServerFlagError as error:
        print(f"runway-model-server: {error}", file=sys.stderr)
        return 2
