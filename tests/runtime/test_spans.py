"""A span is replaced as a whole: readers see the old folder or the new one, and nothing is left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline_components.data.spans import write_span

pytestmark = pytest.mark.runtime


def _write(folder: Path, rows: int) -> None:
    frame = pd.DataFrame({"x": range(rows), "label": [i % 2 for i in range(rows)]})
    write_span(folder, "part.csv", frame, source_rows=rows, dropped={}, label="label", sample_fraction=1.0)


def test_rewriting_a_span_swaps_it_whole(tmp_path: Path) -> None:
    span = tmp_path / "span-3"
    _write(span, 4)
    _write(span, 6)
    assert len(pd.read_csv(span / "part.csv")) == 6
    assert json.loads((span / "_manifest.json").read_text())["rows"] == 6
    assert [p.name for p in tmp_path.iterdir()] == ["span-3"]  # no staging or retired folder left
