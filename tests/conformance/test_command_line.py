"""tensorflow_model_server's command line: ``--flag=value``; an unknown flag stops the server with a message."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conformance.harness import ServerProcess


def _run(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False)


def test_unknown_flag_is_refused(server_bin: str, shared_base: Path) -> None:
    result = _run(
        server_bin, "--port=0", "--no_such_flag=1", "--model_name=penguins", f"--model_base_path={shared_base}"
    )
    assert result.returncode != 0
    assert "no_such_flag" in result.stdout + result.stderr


def test_unsupported_tf_serving_flag_is_refused_not_ignored(
    server_bin: str, is_runway: bool, shared_base: Path
) -> None:
    if not is_runway:
        pytest.skip("tensorflow_model_server implements --enable_batching")
    result = _run(server_bin, "--enable_batching=true", "--model_name=penguins", f"--model_base_path={shared_base}")
    assert result.returncode == 2
    assert "--enable_batching" in result.stderr and "not supported" in result.stderr


def test_space_separated_value_is_refused(server_bin: str, is_runway: bool, shared_base: Path) -> None:
    if not is_runway:
        pytest.skip("checked for runway's server only")
    result = _run(server_bin, "--port", "8500", f"--model_base_path={shared_base}")
    assert result.returncode == 2
    assert "--port=VALUE" in result.stderr


def test_single_model_flags_serve_the_model(server_bin: str, shared_base: Path, tmp_path: Path) -> None:
    server = ServerProcess(
        server_bin, tmp_path, ["--model_name=solo", f"--model_base_path={shared_base}", "--enable_model_warmup=false"]
    )
    server.start()
    try:
        server.wait_available("solo", versions={2})
        assert set(server.status("solo")) == {2}  # the default version policy: the latest one
    finally:
        server.stop()
