"""A temporary RUNWAY_HOME for component-level pipeline tests: real spans, compiled IR, nodes run with ``run_node``.

The tests that use it (``test_data_gate.py``, ``test_trusted_evaluation.py``) run the pipeline's own nodes as an
Airflow task would, one after the other, in one process; the model store is compared byte for byte.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline_components.config import load_pipeline_config
from pipeline_components.runtime.compile import compile_pipeline, write_ir
from pipeline_components.runtime.node import GateFailed, NodeSkipped, run_node
from pipeline_components.settings import Settings
from tests.conftest import CONFIGS


def flights_home(root: Path, frames: dict[int, pd.DataFrame], overrides: dict[str, Any]) -> tuple[Settings, Path]:
    """A RUNWAY_HOME whose flights spans are ``frames`` ({span: rows}), with the pipeline compiled with the test's
    configuration ``overrides``; returns the settings and the IR's path."""
    settings = Settings.from_env({"RUNWAY_HOME": str(root)})
    for span, frame in frames.items():
        write_span(settings, span, frame)
    config = load_pipeline_config(CONFIGS / "flights.yaml").with_overrides(overrides)
    path = settings.ir_path("flights")
    write_ir(compile_pipeline(config, settings), path, config_path=config.source)
    return settings, path


def write_span(settings: Settings, span: int, frame: pd.DataFrame) -> Path:
    """Write ``frame`` (without a kept ``arr_delay``) as flights span ``span``; a new month arrives."""
    folder = settings.data_dir / "flights" / f"span-2013-{span:02d}"
    folder.mkdir(parents=True)
    frame.drop(columns=["arr_delay"], errors="ignore").to_csv(folder / "flights.csv", index=False)
    return folder


def store_bytes(settings: Settings) -> dict[str, bytes]:
    """Every file of the model store (versions, models.config, anything hidden), by path."""
    return {
        str(p.relative_to(settings.model_store)): p.read_bytes()
        for p in sorted(settings.model_store.rglob("*"))
        if p.is_file()
    }


@contextlib.contextmanager
def home_env(ir: Path) -> Iterator[None]:
    """RUNWAY_HOME as an Airflow task would have it (executors file their report pages under it)."""
    saved = os.environ.get("RUNWAY_HOME")
    os.environ["RUNWAY_HOME"] = str(ir.parent.parent)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("RUNWAY_HOME", None)
        else:
            os.environ["RUNWAY_HOME"] = saved


def run_nodes(ir: Path, run_id: str, nodes: list[str], params: dict[str, Any]) -> dict[str, str | None]:
    """Run ``nodes`` of one run in order; node -> None (done), the gate's message, or ``skipped: <reason>``.

    Every node runs even after a gate refused (to see what each would say), except after a refused ingestion.
    """
    outcome: dict[str, str | None] = {}
    for node in nodes:
        try:
            with home_env(ir):
                run_node(ir, node, run_id, params)
            outcome[node] = None
        except GateFailed as gate:
            outcome[node] = str(gate)
            if node == "CsvExampleGen":
                break  # nothing was ingested: nothing downstream can run
        except NodeSkipped as skipped:
            outcome[node] = f"skipped: {skipped}"
    return outcome
