"""The ``csv`` preparer: your own CSV data as spans ``span-<N>/data.csv``, with a manifest each.

The source (``data.source``) is either one CSV file, split into spans by the integer values of
``data.span_column`` (a year, a month such as 201403, a batch number; no span column: the whole file is span 1),
or a folder with one subfolder of CSV files per span, the span being the last number in the subfolder's name
(``2013/``, ``batch-07/``). Each span keeps the configuration's features and label in the source's column order;
rows with a missing value in one of them are left out and counted in the manifest (an empty CSV field is what
TFX reads as missing, and the served model takes every feature). ``runway data prepare NAME`` writes them again
from the source, e.g. after rows were appended; the ``<name>_data`` DAG writes the next span it finds there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from pipeline_components.config import PipelineConfig
from pipeline_components.data.spans import SpanReport, write_span
from pipeline_components.errors import DataError

FILE_NAME = "data.csv"
SPAN_PATTERN = "span-{SPAN}/*.csv"
_FOLDER_SPAN = re.compile(r"(\d+)(?!.*\d)")  # the last number in a folder's name


def read_csv(path: Path) -> pd.DataFrame:
    """One CSV file as TFX reads it: only an empty field is missing ("NA" or "None" are values)."""
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not a CSV file pandas can read: {err}") from None


def span_numbers(values: pd.Series, column: str) -> pd.Series:
    """The span column as integers (missing values stay missing).

    Raises:
        DataError: a value is not a non-negative integer, with examples and what to do.
    """
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values[values.notna() & (numbers.isna() | (numbers % 1 != 0) | (numbers < 0))]
    if len(bad):
        examples = ", ".join(repr(v) for v in bad.astype(str).unique()[:3])
        raise DataError(
            f"span column '{column}' must hold non-negative integers (a year, a month such as 201403, a batch "
            f"number); it holds {examples}. Add such a column to the CSV (e.g. the year of a date) and name it "
            "with --span-column"
        )
    return numbers.astype("Int64")


def read_source(source: Path, *, span_column: str | None) -> dict[int, pd.DataFrame]:
    """Span number -> its rows, from a CSV file (split by ``span_column``) or a folder of span folders.

    Raises:
        DataError: the source is missing or unreadable, the span column is absent or not integers, or two
            folders give the same span.
    """
    if source.is_dir():
        return _read_span_folders(source)
    if not source.is_file():
        raise DataError(f"the CSV source {source} does not exist (data.source, or runway init --csv)")
    frame = read_csv(source)
    if span_column is None:
        return {1: frame}
    if span_column not in frame.columns:
        raise DataError(f"{source} has no column '{span_column}' to number the spans; it has {list(frame.columns)}")
    numbers = span_numbers(frame[span_column], span_column)
    spans = {int(n): frame[numbers == n].drop(columns=[span_column]) for n in sorted(numbers.dropna().unique())}
    if not spans:
        raise DataError(f"span column '{span_column}' of {source} has no value in any row")
    return spans


def _read_span_folders(root: Path) -> dict[int, pd.DataFrame]:
    spans: dict[int, pd.DataFrame] = {}
    folders: dict[int, Path] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        match = _FOLDER_SPAN.search(folder.name)
        files = sorted(folder.glob("*.csv"))
        if match is None or not files:
            continue
        span = int(match.group(1))
        if span in folders:
            raise DataError(f"{folder} and {folders[span]} both give span {span}; rename one of them")
        frames = [read_csv(path) for path in files]
        headers = {tuple(f.columns) for f in frames}
        if len(headers) > 1:
            raise DataError(f"the CSV files in {folder} have different headers: {sorted(headers)}")
        folders[span] = folder
        spans[span] = pd.concat(frames, ignore_index=True)
    if not spans:
        raise DataError(
            f"{root} has no span folder: expected subfolders named with their span number (2013/, batch-07/ ...) "
            "holding CSV files"
        )
    return dict(sorted(spans.items()))


def source_spans(config: PipelineConfig) -> list[int]:
    """The spans the configuration's source holds, oldest first."""
    return list(_source(config))


def _source(config: PipelineConfig) -> dict[int, pd.DataFrame]:
    path = config.source_path
    if path is None:
        raise DataError(f"{config.name}: data.source names no CSV file or folder")
    return read_source(path, span_column=config.data.span_column)


def span_rows(frame: pd.DataFrame, wanted: list[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """One span's rows as the pipeline reads them: the ``wanted`` columns (features and label), complete rows only.

    Returns:
        The rows, in the source's column order, and what was dropped and why (for the manifest).

    Raises:
        DataError: a wanted column is not in the source.
    """
    missing = [name for name in wanted if name not in frame.columns]
    if missing:
        raise DataError(
            f"the source has no column(s) {missing} that the configuration names (features or label.column); "
            f"it has {list(frame.columns)}"
        )
    kept = frame[[name for name in frame.columns if name in wanted]]
    complete = kept.dropna()
    return complete, {"missing_values": len(kept) - len(complete)}


def prepare(out_dir: Path, *, config: PipelineConfig, spans: list[int] | None = None) -> list[SpanReport]:
    """Write ``out_dir/span-<N>/data.csv`` and its manifest for each span of the source (or only ``spans``).

    Raises:
        DataError: the source is unreadable, a column is missing, or an asked span is not in the source.
    """
    source = _source(config)
    unknown = sorted(set(spans or []) - set(source))
    if unknown:
        raise DataError(f"the source of {config.name} has no span(s) {unknown}; it has {sorted(source)}")
    reports = []
    for span, frame in source.items():
        if spans and span not in spans:
            continue
        rows, dropped = span_rows(frame, [*config.features.all, config.label.column])
        if rows.empty:
            raise DataError(f"span {span} of {config.name} has no complete row (every row misses a value)")
        reports.append(
            write_span(
                out_dir / f"span-{span}",
                FILE_NAME,
                rows,
                source_rows=len(frame),
                dropped=dropped,
                label=config.label.column,
                sample_fraction=1.0,
            )
        )
    return reports
