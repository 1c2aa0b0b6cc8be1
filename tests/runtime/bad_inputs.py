"""Bad inputs for the data gate, each derived from a real month by corrupting a COPY (never the source data).

``write_case(name, folder, source)`` writes the corrupted span into ``folder`` (a span folder under a temporary
data directory). ``CASES`` names each case with the error the gate must give (a regular expression over the
GateFailed message) and the node that must give it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SOURCE = Path("flights.csv")


def sample_month(source_csv: Path, rows: int, seed: int) -> pd.DataFrame:
    """A reproducible sample of a real month (a copy in memory)."""
    frame = pd.read_csv(source_csv)
    return frame.sample(n=min(rows, len(frame)), random_state=seed).reset_index(drop=True)


def _write(frame: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "flights.csv"
    frame.to_csv(path, index=False)
    return path


def _missing_column(frame: pd.DataFrame, folder: Path) -> None:
    _write(frame.drop(columns=["carrier"]), folder)


def _wrong_type(frame: pd.DataFrame, folder: Path) -> None:
    broken = frame.astype({"distance": object})
    broken.loc[broken.index[::10], "distance"] = "unknown"  # text in a numeric column
    _write(broken, folder)


def _out_of_range(frame: pd.DataFrame, folder: Path) -> None:
    broken = frame.copy()
    broken.loc[broken.index[:40], "sched_dep_hour"] = 27  # hours past midnight: no such hour
    _write(broken, folder)


def _unseen_carrier(frame: pd.DataFrame, folder: Path) -> None:
    broken = frame.copy()
    broken.loc[broken.index[:100], "carrier"] = "ZZ"
    _write(broken, folder)


def _null_spike(frame: pd.DataFrame, folder: Path) -> None:
    broken = frame.copy()
    rng = np.random.default_rng(7)
    broken.loc[rng.random(len(broken)) < 0.3, "temp"] = np.nan  # the weather feed dropped 30 % of rows
    _write(broken, folder)


def _empty_span(frame: pd.DataFrame, folder: Path) -> None:
    _write(frame.iloc[:0], folder)  # the header, no rows


def _truncated(frame: pd.DataFrame, folder: Path) -> None:
    path = _write(frame, folder)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3 + 7])  # the transfer stopped mid-line


def _garbage(frame: pd.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    (folder / "flights.csv").write_bytes(rng.integers(0, 256, size=50_000, dtype=np.uint8).tobytes())


def _header_order(frame: pd.DataFrame, folder: Path) -> None:
    columns = list(frame.columns)
    columns[0], columns[5] = columns[5], columns[0]  # distance <-> temp: the values move with their names
    _write(frame[columns], folder)


def _duplicated_span(frame: pd.DataFrame, folder: Path, *, original: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(original, folder / "flights.csv")  # last month's file delivered again as this month


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[..., None]
    node: str  # the gate node that must refuse it (ExampleGen's pre-check refuses before ingestion)
    message: str  # regular expression over that node's GateFailed message
    also: tuple[tuple[str, str], ...] = ()  # other gate nodes that must name it too: (node, regex)


CASES = [
    Case(
        "missing_column",
        _missing_column,
        "GreatExpectationsValidator",
        r"missing column\(s\) \['carrier'\]",
        (("ExampleValidator", r"carrier: Column dropped"),),
    ),
    Case(
        "wrong_type",
        _wrong_type,
        "GreatExpectationsValidator",
        r"distance: \d+ values \(.*\) are not of type \['int64', 'float64'\], e\.g\. 'unknown'",
        (("ExampleValidator", r"distance: .*(type|FLOAT|BYTES)"),),
    ),
    Case(
        "out_of_range",
        _out_of_range,
        "GreatExpectationsValidator",
        r"sched_dep_hour: 40 values \(.*\) outside \[0, 23\], e\.g\. 27",
    ),
    Case(
        "unseen_carrier",
        _unseen_carrier,
        "GreatExpectationsValidator",
        r"carrier: 100 values .* not in the allowed set.*'ZZ'",
        (("ExampleValidator", r"carrier: Unexpected string values.*ZZ"),),
    ),
    Case(
        "null_spike",
        _null_spike,
        "GreatExpectationsValidator",
        r"temp: \d+ nulls \([23]\d\.\d+ % of rows\)",
        (("ExampleValidator", r"temp: (Feature shape dropped|Column dropped)"),),
    ),
    Case("empty_span", _empty_span, "CsvExampleGen", r"has a header but no rows: the span is empty"),
    Case("truncated_csv", _truncated, "CsvExampleGen", r"line \d+ has \d+ fields, the header has 21 \(the last line"),
    Case("garbage_csv", _garbage, "CsvExampleGen", r"is not (a text CSV file|UTF-8 text)"),
    Case(
        "header_order",
        _header_order,
        "GreatExpectationsValidator",
        r"header order differs from the suite at position 0: found `temp`, expected `distance`",
    ),
    Case(
        "duplicated_span",
        _duplicated_span,
        "GreatExpectationsValidator",
        r"same data as span-2013-01 \(identical bytes\): a duplicated span",
    ),
]


def write_case(case: Case, folder: Path, frame: pd.DataFrame, *, original: Path) -> None:
    if case.build is _duplicated_span:
        _duplicated_span(frame, folder, original=original)
    else:
        case.build(frame, folder)
