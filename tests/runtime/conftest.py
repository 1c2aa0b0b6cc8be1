"""Tests of runtime-side code (pandas, TensorFlow, TFX). Run in the pipeline runtime environment:

.venv-runtime/bin/python -m pytest tests/runtime
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline_components.data import flights
from pipeline_components.data.spans import SpanReport


@pytest.fixture(scope="session")
def flights_source() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return flights.load_source()


@pytest.fixture(scope="session")
def flights_spans(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SpanReport]]:
    out = tmp_path_factory.mktemp("data") / "flights"
    return out, flights.prepare(out)
