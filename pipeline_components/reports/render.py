"""One template engine for every page: Jinja2 with autoescaping and strict undefined names.

Every value a template prints is escaped (a feature named ``<script>`` shows as text); only what the code marks
as ``Markup`` (the SVG of a chart) goes in as is. A name a template uses but the caller did not give is an error,
not an empty string.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).parent / "templates"
STYLESHEET = TEMPLATES / "report.css"


@dataclass(frozen=True)
class Verdict:
    """What a page says first: passed or failed (or just information), in one line, then why.

    Attributes:
        passed: True (green), False (red), None (neutral: a page with no verdict of its own).
        headline: the verdict in a few words (``blessed``, ``2 of 14 comparisons above threshold``).
        reasons: one line per failure or note, listed under the headline.
    """

    passed: bool | None
    headline: str
    reasons: tuple[str, ...] | list[str] = field(default_factory=tuple)

    @property
    def css(self) -> str:
        return "info" if self.passed is None else ("ok" if self.passed else "bad")

    @property
    def word(self) -> str:
        return "" if self.passed is None else ("passed" if self.passed else "failed")


def cell(text: Any, css: str = "") -> dict[str, Any]:
    """A table cell with a class (``ok``, ``bad``, ``num``) for the ``table`` macro."""
    return {"text": text, "css": css}


def status_cell(ok: bool, yes: str = "ok", no: str = "failed") -> dict[str, Any]:
    """A green ``yes`` or a red ``no`` cell."""
    return cell(yes if ok else no, "ok" if ok else "bad")


@functools.cache
def environment() -> jinja2.Environment:
    """The one Jinja2 environment (built on first use: no import-time work)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, /, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context``; the page carries the stylesheet inline.

    Args:
        template: the file name under ``templates/`` (``drift.html``).
        **context: the values the template prints; every page takes ``title`` and ``verdict`` (a ``Verdict``).

    Returns:
        The page: one self-contained HTML document.
    """
    return environment().get_template(template).render(**context)
