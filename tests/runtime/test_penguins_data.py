from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline_components.config import load_pipeline_config
from pipeline_components.data import penguins
from tests.conftest import CONFIGS


def test_one_span_per_year_with_the_class_index_as_label(tmp_path: Path) -> None:
    reports = penguins.prepare(tmp_path)
    assert [r.span for r in reports] == ["span-2007", "span-2008", "span-2009"]
    assert sum(r.source_rows for r in reports) == 344
    assert sum(r.rows for r in reports) == 333  # 11 rows with a missing measurement or sex
    frame = pd.read_csv(tmp_path / "span-2008" / "penguins.csv")
    assert set(frame["species"]) == {0, 1, 2}
    config = load_pipeline_config(CONFIGS / "penguins.yaml")
    assert config.label.classes == list(penguins.SPECIES)
    assert set(config.features.all) | {config.label.column} == set(frame.columns)
