"""TFX's span placeholders in a configuration's ``data.span_pattern``: ``{SPAN}`` and ``{SPAN:width}``."""

from __future__ import annotations

import re

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
