"""Fixtures: tiny models and one running local fleet per test module (see fixtures.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_components.fleet.nginx import find_nginx
from pipeline_components.settings import Settings
from tests.fleet.fixtures import RunningFleet, start_fleet, tiny_models
from tests.helpers import missing


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Settings.from_env().runtime_python.exists():
        missing("the runtime environment is missing (make setup)")
    return tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="module")
def local_fleet(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[RunningFleet]:
    """A 3-instance local fleet behind nginx on free loopback ports; stopped (no orphans) after the module."""
    try:
        find_nginx()
    except Exception as error:
        missing(str(error))
    home = tmp_path_factory.mktemp("fleet-home")
    running = start_fleet(home, tiny_model_dir)
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(home / "replica", ignore_errors=True)
