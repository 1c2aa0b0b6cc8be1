"""A node that cannot succeed on a retry says so with its exit code (boundary.EXIT_NOT_RETRYABLE), read by Airflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline_components.boundary import EXIT_NOT_RETRYABLE, RESULT_PREFIX, error_message
from pipeline_components.config import load_pipeline_config
from pipeline_components.runtime.__main__ import main
from pipeline_components.runtime.compile import compile_pipeline, write_ir
from pipeline_components.settings import Settings
from tests.conftest import CONFIGS

pytestmark = pytest.mark.runtime


def test_a_configuration_error_in_run_node_exits_not_retryable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNWAY_HOME", str(tmp_path))
    settings = Settings.from_env()
    config = load_pipeline_config(CONFIGS / "penguins.yaml")
    ir = settings.ir_path("penguins")
    write_ir(compile_pipeline(config, settings), ir, config_path=config.source)
    code = main(["run-node", "--ir", str(ir), "--node", "Evaluatr", "--run-id", "manual__1"])
    captured = capsys.readouterr()
    assert code == EXIT_NOT_RETRYABLE
    message = error_message(captured.err.splitlines())
    assert message is not None and message.startswith("node 'Evaluatr' is not in pipeline 'penguins'")
    result = json.loads(next(line for line in captured.out.splitlines() if line.startswith(RESULT_PREFIX))[14:])
    assert result["status"] == "failed" and result["reason"] == message
