"""TFX's span placeholders in a configuration's ``data.span_pattern``: ``{SPAN}`` and ``{SPAN:width}``."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline_components.errors import DataError

SPAN_PLACEHOLDER = re.compile(r"\{SPAN(?::(\d+))?\}")


def fill_span(pattern: str, span: int | None = None) -> str:
    """A span pattern with TFX's ``{SPAN}`` / ``{SPAN:width}`` filled in, or ``*`` for every span."""

    def fill(match: re.Match[str]) -> str:
        if span is None:
            return "*"
        return f"{span:0{int(match.group(1))}d}" if match.group(1) else str(span)

    return SPAN_PLACEHOLDER.sub(fill, pattern)


def span_folder_regex(pattern: str) -> re.Pattern[str]:
    """Matches a span folder name of ``pattern`` (its first path part), capturing the span number as ``span``."""
    folder = pattern.split("/")[0]
    parts = SPAN_PLACEHOLDER.split(folder)  # literal, width, literal, ...
    literals = [re.escape(part) for part in parts[::2]]
    return re.compile("^" + r"(?P<span>\d+)".join(literals) + "$")


def span_files(input_base: str | Path, span_pattern: str, span: int) -> list[Path]:
    """The files of span ``span`` under ``input_base`` (what ExampleGen ingested), sorted.

    Raises:
        DataError: no file matches.
    """
    files = sorted(Path(input_base).glob(fill_span(span_pattern, span)))
    if not files:
        raise DataError(f"no files match {Path(input_base) / fill_span(span_pattern, span)}")
    return files
