"""Refuse a span's CSV files that TFX's CsvExampleGen would choke on, with a message that names the problem.

CsvExampleGen reads the header of the first file and decodes every line inside a Beam pipeline: an empty file, a
header without rows, a binary or truncated file, or files with different headers end in a Beam stack trace (or,
worse, in silently misaligned columns). These checks read each file once before the launcher starts.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pipeline_components.errors import DataError


def _fix(path: Path) -> str:
    return f"fix or re-deliver {path.parent.name}/{path.name} (never edit a span in place: write it again)"


def check_csv_file(path: Path) -> list[str]:
    """Check one CSV file; return its header. Raises DataError naming the file, the line and what is wrong."""
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path} is empty ({len(raw)} bytes): the span has no header and no rows; {_fix(path)}")
    if (nul := raw.find(b"\x00")) >= 0:
        raise DataError(f"{path} is not a text CSV file (NUL byte at offset {nul}); {_fix(path)}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not UTF-8 text (byte {err.start}): garbage or a binary file; {_fix(path)}"
        ) from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except csv.Error as err:
        raise DataError(f"{path}: the header line is not CSV ({err}); {_fix(path)}") from None
    blank = [i for i, name in enumerate(header) if not name.strip()]
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if blank or duplicates:
        problem = f"unnamed column(s) at position {blank}" if blank else f"duplicated column name(s) {duplicates}"
        raise DataError(f"{path}: the header has {problem}: {header[:8]}...; {_fix(path)}")
    rows = 0
    try:
        for row in reader:
            if not row:
                continue
            rows += 1
            if len(row) != len(header):
                line = reader.line_num
                last = line >= len(text.rstrip("\n").split("\n"))
                hint = " (the last line: the file looks truncated)" if last else ""
                raise DataError(
                    f"{path}: line {line} has {len(row)} fields, the header has {len(header)}{hint}; {_fix(path)}"
                )
    except csv.Error as err:
        raise DataError(f"{path}: line {reader.line_num} is not valid CSV ({err}); {_fix(path)}") from None
    if rows == 0:
        raise DataError(f"{path} has a header but no rows: the span is empty; {_fix(path)}")
    return header


def check_csv_files(files: list[Path]) -> None:
    """Check every file of one span; all files of a span must share one header (CsvExampleGen reads the first)."""
    headers = {path: check_csv_file(path) for path in sorted(files)}
    first_path, first = next(iter(headers.items()))
    for path, header in headers.items():
        if header != first:
            raise DataError(
                f"{path} and {first_path} have different headers (CsvExampleGen would read every file with the "
                f"first one's): {header} vs {first}; write the span's files with one header"
            )
