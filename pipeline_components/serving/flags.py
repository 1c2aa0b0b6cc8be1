"""The model server's command line, with TF Serving's flag names, defaults and ``--flag=value`` syntax.

Flags are the ones of ``tensorflow_model_server`` (tensorflow_serving/model_servers/main.cc) that this server
implements, plus runway's own where TF Serving has none (``--bind_address``,
``--runway_rest_max_connections``, ``--runway_max_request_bytes``, the request log's ``--runway_request_log_*``;
``--help`` marks them). Any other flag, TF
Serving's or not, is refused with a message naming it: a silently ignored flag would make this server behave
differently from the binary it stands in for.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from pipeline_components.errors import ServerFlagError

# Flags of tensorflow_model_server this server does not implement; named in the refusal so it is clear that the
# flag is known, and why it is refused.
_UNSUPPORTED = frozenset(
    {
        "grpc_socket_path",
        "enable_batching",
        "allow_version_labels",
        "batching_parameters_file",
        "model_config_file_poll_wait_seconds_for_platform",
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


_RUNWAY_OWN = " [runway's own flag: tensorflow_model_server has none and refuses it]"


def _flag(default: Any, help: str, *, own: bool = False) -> Any:
    """A flag's default (a callable: computed when parsing) and its ``--help`` line; ``own``: runway's own flag."""
    metadata = {"help": help + (_RUNWAY_OWN if own else "")}
    if callable(default):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


def _four_per_cpu() -> int:
    # TF Serving sizes its REST and gRPC thread pools as 4 x NumSchedulableCPUs() (server.h): the CPUs this process
    # may run on, not the machine's.
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 4 * cpus


@dataclass(frozen=True)
class ServerFlags:
    """Parsed command line: tensorflow_model_server's names and defaults, and runway's own flags.

    Each field is the flag of the same name; its ``--help`` line (``usage()``) says what it does.
    """

    port: int = _flag(8500, "gRPC port (0: a free one, printed)")
    rest_api_port: int = _flag(0, "REST port (0: no REST API, as in TF Serving)")
    model_name: str = _flag("default", "the one model's name (with --model_base_path)")
    model_base_path: str = _flag("", "the one model's base path (version folders below it)")
    model_config_file: str = _flag("", "text ModelServerConfig (model_config_list); wins over --model_base_path")
    model_config_file_poll_wait_seconds: int = _flag(0, "re-read --model_config_file this often (0: once)")
    file_system_poll_wait_seconds: int = _flag(1, "look for new versions this often (0: once, at start)")
    monitoring_config_file: str = _flag("", "text MonitoringConfig (the Prometheus endpoint on the REST port)")
    enable_model_warmup: bool = _flag(True, "replay assets.extra/tf_serving_warmup_requests before a version serves")
    max_num_load_retries: int = _flag(5, "retries of a failed load before the version is given up")
    load_retry_interval_micros: int = _flag(60_000_000, "wait between load retries")
    allow_version_labels_for_unavailable_models: bool = _flag(
        False, "let a new label name a version that is not available yet"
    )
    rest_api_num_threads: int = _flag(
        _four_per_cpu, "REST requests processed at once; more wait up to --rest_api_timeout_in_ms, then get 503"
    )
    rest_api_timeout_in_ms: int = _flag(
        30_000,
        "a REST client must send its whole request within this time, and an idle connection is closed after it "
        "(TF Serving bounds the inference with it too; this server does not); 0: no limit",
    )
    grpc_max_threads: int = _flag(_four_per_cpu, "gRPC calls served at once; more are refused (RESOURCE_EXHAUSTED)")
    grpc_channel_arguments: str = _flag(
        "", "gRPC server channel arguments, key=value,... (e.g. grpc.max_connection_age_ms=60000)"
    )
    bind_address: str = _flag(
        "127.0.0.1", "the address both ports listen on; 0.0.0.0 (or ::) for every interface", own=True
    )
    runway_rest_max_connections: int = _flag(256, "open REST connections at once; more get 503 at once", own=True)
    runway_max_request_bytes: int = _flag(
        4 * 1024 * 1024, "largest REST body (else 413) or gRPC message (else RESOURCE_EXHAUSTED)", own=True
    )
    runway_request_log_queue_size: int = _flag(
        1024, "sampled requests waiting to be written to the request log at most; more are dropped", own=True
    )
    runway_request_log_max_file_bytes: int = _flag(
        64 * 1024 * 1024, "a request log file is closed (and renamed *.tfrecord) at this size", own=True
    )
    runway_request_log_max_file_seconds: int = _flag(
        60, "a request log file is closed (and renamed *.tfrecord) this long after it was opened", own=True
    )


def usage() -> str:
    """The ``--help`` text: every flag with its default and what it does."""
    lines = ["usage: runway-model-server --flag=value ..."]
    for f in fields(ServerFlags):
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[operator]
        lines.append(f"  --{f.name}={default!r}\n      {f.metadata['help']}")
    return "\n".join(lines)


def channel_arguments(text: str) -> list[tuple[str, int | str]]:
    """``--grpc_channel_arguments`` as gRPC takes them: an integer value as an integer, any other as a string.

    Args:
        text: ``key=value`` pairs separated by commas (tensorflow_model_server's syntax); empty for none.

    Returns:
        The (key, value) pairs in order.

    Raises:
        ServerFlagError: a pair without ``=`` or without a key.
    """
    pairs: list[tuple[str, int | str]] = []
    for item in filter(None, text.split(",")):
        key, has_value, value = item.partition("=")
        if not has_value or not key.strip():
            raise ServerFlagError(f"--grpc_channel_arguments takes key=value,... ; {item!r} is not key=value")
        try:
            pairs.append((key.strip(), int(value)))
        except ValueError:
            pairs.append((key.strip(), value))
    return pairs


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
            raise ServerFlagError(f"unknown flag --{name}\n{usage()}")
        kind = known[name]
        if not has_value:
            if kind not in (bool, "bool"):
                raise ServerFlagError(f"flag --{name} needs a value: --{name}=VALUE")
            raw = "true"
        values[name] = _convert(name, kind, raw)
    flags = ServerFlags(**values)
    if not flags.model_base_path and not flags.model_config_file:
        raise ServerFlagError("give --model_base_path (with --model_name) or --model_config_file")
    _check_limits(flags)
    # With both, TF Serving reads the config file and leaves --model_base_path unused (server.cc); so does this
    # server (server.py logs that it does).
    return flags


def _check_limits(flags: ServerFlags) -> None:
    try:
        ipaddress.ip_address(flags.bind_address)
    except ValueError:
        raise ServerFlagError(
            f"--bind_address takes an IP address (127.0.0.1, 0.0.0.0 for every interface, ::1, ::), "
            f"not {flags.bind_address!r}"
        ) from None
    for name in (
        "rest_api_num_threads",
        "grpc_max_threads",
        "runway_rest_max_connections",
        "runway_max_request_bytes",
        "runway_request_log_queue_size",
        "runway_request_log_max_file_bytes",
        "runway_request_log_max_file_seconds",
    ):
        if getattr(flags, name) < 1:
            raise ServerFlagError(f"--{name} must be at least 1, not {getattr(flags, name)}")
    if flags.rest_api_timeout_in_ms < 0:
        raise ServerFlagError(
            f"--rest_api_timeout_in_ms must be 0 (no limit) or more, not {flags.rest_api_timeout_in_ms}"
        )
    channel_arguments(flags.grpc_channel_arguments)


def listen_address(host: str, port: int) -> str:
    """``host:port`` as gRPC and log lines write it: an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_command_line(args: list[str]) -> ServerFlags | int:
    """Parse the command line for ``main``: the flags, or the exit status after printing help or the error.

    Kept free of TensorFlow imports so that a bad command line is answered at once.
    """
    if args in (["--help"], ["-h"], ["--helpfull"]):
        print(usage())
        return 0
    try:
        return parse_flags(args)
    except ServerFlagError as error:
        print(f"runway-model-server: {error}", file=sys.stderr)
        return 2
