"""The server's command line: TF Serving's names, defaults and --flag=value syntax; unknown flags refused."""

from __future__ import annotations

import pytest

from pipeline_components.errors import ServerFlagError
from pipeline_components.serving.flags import parse_flags


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
    ],
)
def test_refused(args: list[str], message: str) -> None:
    with pytest.raises(ServerFlagError, match=message.replace("-", r"\-").replace(".", r"\.")):
        parse_flags(args)
