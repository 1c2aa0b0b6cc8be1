"""Shared fixtures. Tests run in two environments:

- the orchestrator environment (``.venv``): ``tests/unit``, ``tests/dags``, ``tests/e2e``;
- the pipeline runtime environment (``.venv-runtime``): ``tests/runtime`` (TensorFlow, pandas, TFX).

``make test`` runs both; see the Makefile.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pipeline_components.settings import CHECKOUT, Settings

CONFIGS = CHECKOUT / "configs"

# Each environment collects only the tests it can import.
if importlib.util.find_spec("tensorflow") is None:
    collect_ignore = ["runtime"]
elif importlib.util.find_spec("airflow") is None:
    collect_ignore = ["unit/orchestration", "dags", "e2e", "browser"]


@pytest.fixture
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose every writable location is under a temporary folder."""
    monkeypatch.setenv("RUNWAY_HOME", str(tmp_path / "home"))
    for name in (
        "RUNWAY_DATA_DIR",
        "RUNWAY_PIPELINES_DIR",
        "RUNWAY_METADATA_DIR",
        "RUNWAY_IR_DIR",
        "RUNWAY_MODEL_STORE",
        "RUNWAY_CONFIG_DIR",
        "RUNWAY_METADATA_URL",
        "RUNWAY_METADATA_PASSWORD_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    return Settings.from_env()
