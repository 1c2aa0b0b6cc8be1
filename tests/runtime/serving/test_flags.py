"""The server's command line: TF Serving's names, defaults and --flag=value syntax; unknown flags refused."""

from __future__ import annotations

import re

import pytest

from pipeline_components.errors import ServerFlagError
from pipeline_components.serving.flags import channel_arguments, listen_address, parse_flags, usage


def test_tf_serving_flags_and_defaults() -> None:
    flags = parse_flags(
        [
            "--port=9000",
            "--rest_api_port=9001",
            "--model_name=m",
            "--model_base_path=/models/m",
            "--enable_model_warmup=false",
            "--file_system_poll_wait_seconds=5",
        ]
    )
    assert (flags.port, flags.rest_api_port, flags.model_name, flags.model_base_path) == (9000, 9001, "m", "/models/m")
    assert flags.enable_model_warmup is False
    assert flags.file_system_poll_wait_seconds == 5
    assert flags.model_config_file_poll_wait_seconds == 0
    assert parse_flags(["--model_base_path=/m"]).port == 8500


def test_secure_defaults_and_tf_serving_limits() -> None:
    flags = parse_flags(["--model_base_path=/m"])
    assert flags.bind_address == "127.0.0.1"  # loopback unless told otherwise
    assert flags.runway_max_request_bytes == 4 * 1024 * 1024
    assert flags.rest_api_timeout_in_ms == 30_000  # TF Serving's default
    assert flags.rest_api_num_threads == flags.grpc_max_threads >= 4  # TF Serving's: 4 per schedulable CPU
    chosen = parse_flags(
        [
            "--model_base_path=/m",
            "--bind_address=0.0.0.0",
            "--rest_api_num_threads=3",
            "--rest_api_timeout_in_ms=500",
            "--grpc_max_threads=5",
            "--grpc_channel_arguments=grpc.max_connection_age_ms=2000,grpc.primary_user_agent=x",
            "--runway_rest_max_connections=7",
            "--runway_max_request_bytes=1000",
        ]
    )
    assert (chosen.bind_address, chosen.rest_api_num_threads, chosen.rest_api_timeout_in_ms) == ("0.0.0.0", 3, 500)
    assert (chosen.grpc_max_threads, chosen.runway_rest_max_connections, chosen.runway_max_request_bytes) == (
        5,
        7,
        1000,
    )
    assert channel_arguments(chosen.grpc_channel_arguments) == [
        ("grpc.max_connection_age_ms", 2000),
        ("grpc.primary_user_agent", "x"),
    ]


def test_listen_address_brackets_ipv6() -> None:
    assert listen_address("127.0.0.1", 8500) == "127.0.0.1:8500"
    assert listen_address("::", 8500) == "[::]:8500"


def test_help_names_runways_own_flags() -> None:
    own = [line for line in usage().splitlines() if "runway's own flag" in line]
    assert len(own) == 6  # bind address, two limits, three of the request log
    assert "--bind_address='127.0.0.1'" in usage()


def test_a_bare_boolean_flag_means_true() -> None:
    assert parse_flags(
        ["--model_base_path=/m", "--allow_version_labels_for_unavailable_models"]
    ).allow_version_labels_for_unavailable_models


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--model_base_path=/m", "--nope=1"], "unknown flag --nope", id="unknown"),
        pytest.param(["--model_base_path=/m", "--enable_batching=true"], "not supported", id="unsupported"),
        pytest.param(["--model_base_path=/m", "--port", "8500"], "--port=VALUE", id="space-separated"),
        pytest.param(["--model_base_path=/m", "--port=http"], "integer", id="bad-int"),
        pytest.param(["--model_base_path=/m", "--enable_model_warmup=maybe"], "true or false", id="bad-bool"),
        pytest.param(["--port=8500"], "--model_base_path", id="no-model"),
        pytest.param(["--model_base_path=/m", "--bind_address=everywhere"], "IP address", id="bad-bind-address"),
        pytest.param(["--model_base_path=/m", "--grpc_max_threads=0"], "at least 1", id="no-grpc-threads"),
        pytest.param(["--model_base_path=/m", "--rest_api_timeout_in_ms=-1"], "0 (no limit)", id="negative-timeout"),
        pytest.param(["--model_base_path=/m", "--grpc_channel_arguments=novalue"], "key=value", id="bad-channel-arg"),
    ],
)
def test_refused(args: list[str], message: str) -> None:
    with pytest.raises(ServerFlagError, match=re.escape(message)):
        parse_flags(args)
