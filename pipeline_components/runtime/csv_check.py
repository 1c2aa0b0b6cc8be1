"""Refuse a span's CSV files that TFX's CsvExampleGen would choke on, with a message that names the problem.

CsvExampleGen reads the header of the first file and decodes every line inside a Beam pipeline: an empty file, a
header without rows, a binary or truncated file, or files with different headers end in a Beam stack trace (or,
worse, in silently misaligned columns). These checks read each file once before the launcher starts
(``check_example_gen_input``: the files an ExampleGen node is about to ingest).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from pipeline_components.config import fill_span, span_folder_regex
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


def check_example_gen_input(parameters: Any) -> None:
    """Refuse an ExampleGen node's missing or broken input before TFX reads it, saying what to do.

    Args:
        parameters: the node's IR parameters (``node.parameters.parameters``); a node without ``input_base`` and
            ``input_config`` is not a file-based ExampleGen and passes.

    Raises:
        DataError: no file matches the span's pattern, or a file TFX would read is not CSV it can decode.
    """
    if "input_base" not in parameters or "input_config" not in parameters:
        return
    base = Path(parameters["input_base"].field_value.string_value)
    config = json.loads(parameters["input_config"].field_value.string_value)
    range_config = (
        json.loads(parameters["range_config"].field_value.string_value) if "range_config" in parameters else {}
    )
    span = range_config.get("static_range", {}).get("start_span_number")
    for split in config.get("splits", []):
        pattern = fill_span(split["pattern"], span)
        files = list(base.glob(pattern))
        if not files:
            raise DataError(
                f"no input files match {base / pattern}: the span is missing or has no CSV file; "
                f"prepare it (`runway data prepare`) or pick another span"
            )
        try:  # the files TFX will read (the newest span's when none is pinned) must be CSV it can decode
            check_csv_files(_newest_span_files(base, split["pattern"], files) if span is None else files)
        except DataError as err:
            raise DataError(f"span input refused before ingestion: {err}") from None


def _newest_span_files(base: Path, pattern: str, files: list[Path]) -> list[Path]:
    """Of every span's files, those of the newest span (what ExampleGen ingests when no span is pinned)."""
    regex = span_folder_regex(pattern)
    by_span: dict[int, list[Path]] = {}
    for path in files:
        match = regex.match(path.relative_to(base).parts[0])
        if match:
            by_span.setdefault(int(match.group("span")), []).append(path)
    return by_span[max(by_span)] if by_span else files
