"""Prepare the palmerpenguins data as one CSV span per study year: ``span-2007`` ... ``span-2009``.

A small multi-class example (species from body measurements) that proves the pipeline factory is not
flights-specific. Rows with a missing measurement or sex (11 of 344) are left out and counted in the manifest.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from pipeline_components.data.spans import SpanReport, write_span
from pipeline_components.errors import DataError

LABEL = "species"
# The label column holds the class index; configs/penguins.yaml lists the names in this order.
SPECIES = ("Adelie", "Chinstrap", "Gentoo")
NUMERIC_FEATURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
CATEGORICAL_FEATURES = ("island", "sex")
COLUMNS = (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES, LABEL)
YEARS = (2007, 2008, 2009)


def load_source() -> pd.DataFrame:
    spec = importlib.util.find_spec("palmerpenguins")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the palmerpenguins package is not installed in this environment; run `make setup`")
    return pd.read_csv(Path(next(iter(spec.submodule_search_locations))) / "data" / "penguins.csv")


def prepare(out_dir: Path, *, years: list[int] | None = None) -> list[SpanReport]:
    """Write ``out_dir/span-YYYY/penguins.csv`` for each study year."""
    years = years or list(YEARS)
    bad = [y for y in years if y not in YEARS]
    if bad:
        raise DataError(f"palmerpenguins covers {list(YEARS)}; got {bad}")
    source = load_source()
    reports = []
    for year in years:
        rows = source[source["year"] == year]
        complete = rows.dropna(subset=list(COLUMNS))
        frame = complete[list(COLUMNS)].copy()
        frame[LABEL] = frame[LABEL].map(SPECIES.index).astype("int64")
        for column in NUMERIC_FEATURES:
            frame[column] = frame[column].astype("float64")
        reports.append(
            write_span(
                out_dir / f"span-{year}",
                "penguins.csv",
                frame,
                source_rows=len(rows),
                dropped={"missing_values": len(rows) - len(complete)},
                label=LABEL,
                sample_fraction=1.0,
            )
        )
    return reports
