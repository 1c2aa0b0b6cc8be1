"""The pages' charts, drawn with matplotlib and inlined into the page as SVG.

No pyplot and no display: each chart is a ``matplotlib.figure.Figure`` rendered straight to SVG, so nothing global
changes and it works in a worker without a screen. The output is deterministic (fixed ``svg.hashsalt``, no date in
the metadata): the same result gives the same bytes. Text stays text (``svg.fonttype: none``), so a page can be
searched for a feature's name, and matplotlib escapes it as XML.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

OK, BAD, INFO, MUTED = "#1e8449", "#b03a2e", "#2e86c1", "#7f8c8d"  # the colours of reports/templates/report.css

_STYLE: dict[Any, Any] = {  # matplotlib types its keys as a Literal of every rc name
    "svg.hashsalt": "runway",  # element ids from a fixed salt, not from a random one: identical bytes each time
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#5d6d7e",
    "axes.titlesize": 11,
}


@dataclass(frozen=True)
class Bar:
    """One bar of ``threshold_bars``: ``value`` is observed / threshold (above ``limit`` fails)."""

    label: str
    value: float


@dataclass(frozen=True)
class Point:
    """One point of ``tradeoff_scatter``."""

    label: str
    x: float
    y: float
    accepted: bool


@contextmanager
def _figure(width: float, height: float) -> Iterator[Any]:
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_STYLE):
        yield Figure(figsize=(width, height), layout="constrained")


def figure_of(width: float, height: float) -> AbstractContextManager[Any]:
    """A figure (inches) in the pages' style, for a chart drawn elsewhere (the model console's)."""
    return _figure(width, height)


def _svg(figure: Any) -> Markup:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    # Inline SVG in HTML: the XML declaration and DOCTYPE are for a standalone file only.
    return Markup(text[text.index("<svg") :])


def threshold_bars(bars: Sequence[Bar], *, xlabel: str, limit: float = 1.0) -> Markup:
    """Horizontal bars of observed / threshold, failing bars (above ``limit``) red, a dashed line at ``limit``.

    Args:
        bars: one per comparison, drawn top to bottom.
        xlabel: what the value is.
        limit: where failing starts.

    Returns:
        The chart as inline SVG; empty without bars.
    """
    if not bars:
        return Markup("")
    with _figure(8.5, 0.9 + 0.26 * len(bars)) as figure:
        axes = figure.add_subplot()
        rows = list(range(len(bars)))[::-1]
        colours = [BAD if bar.value > limit else OK for bar in bars]
        drawn = axes.barh(rows, [bar.value for bar in bars], color=colours, height=0.7)
        for index, patch in enumerate(drawn.patches):
            patch.set_gid(f"bar-{index}-{'fail' if bars[index].value > limit else 'ok'}")
        axes.set_yticks(rows, [bar.label for bar in bars])
        axes.axvline(limit, color="black", linestyle=(0, (4, 3)), linewidth=1)
        axes.bar_label(drawn, labels=[f"{bar.value:.2f}" for bar in bars], padding=3, fontsize=8)
        axes.set_xlim(0, max(2 * limit, *(bar.value for bar in bars)) * 1.12)
        axes.set_xlabel(xlabel)
        return _svg(figure)


def tradeoff_scatter(
    points: Sequence[Point],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    reference: tuple[str, float] | None = None,
    floors: dict[str, float] | None = None,
) -> Markup:
    """Each point's size (log x) against its quality (y): accepted green, rejected red; a reference line and the
    floors below which a point is rejected, dashed.

    Args:
        points: the variants, each with its label.
        title: the chart's title.
        xlabel: the x axis (log scale).
        ylabel: the y axis.
        reference: (label, y) of what the points are compared with.
        floors: label -> y of each budget's floor.

    Returns:
        The chart as inline SVG.
    """
    with _figure(8.5, 4.8) as figure:
        axes = figure.add_subplot()
        axes.set_xscale("log")
        from matplotlib.ticker import FuncFormatter

        plain = FuncFormatter(lambda value, _: f"{value:g}")  # 30, 100: not 3x10^1
        axes.xaxis.set_major_formatter(plain)
        axes.xaxis.set_minor_formatter(plain)
        for index, point in enumerate(points):
            colour = OK if point.accepted else BAD
            marker = axes.scatter([point.x], [point.y], s=36, color=colour, marker="o" if point.accepted else "X")
            marker.set_gid(f"variant-{index}-{'accepted' if point.accepted else 'rejected'}")
        if reference is not None:
            axes.axhline(reference[1], color=INFO, linewidth=1.2)
            axes.annotate(
                reference[0], (1.0, reference[1]), xycoords=("axes fraction", "data"), xytext=(4, 0),
                textcoords="offset points", color=INFO, va="center",
            )  # fmt: skip
        for label, floor in sorted((floors or {}).items()):
            axes.axhline(floor, color=MUTED, linestyle=(0, (4, 3)), linewidth=1)
            axes.annotate(
                label, (1.0, floor), xycoords=("axes fraction", "data"), xytext=(4, 0), textcoords="offset points",
                color=MUTED, va="center",
            )  # fmt: skip
        axes.scatter([], [], color=OK, marker="o", label="accepted")
        axes.scatter([], [], color=BAD, marker="X", label="rejected")
        axes.legend(loc="lower left", bbox_to_anchor=(1.0, 0.0), frameon=False)  # outside: never over a point
        axes.margins(x=0.12, y=0.15)
        axes.autoscale_view()
        for point, offset in zip(points, _label_offsets(axes, points), strict=True):
            colour = OK if point.accepted else BAD
            axes.annotate(point.label, (point.x, point.y), xytext=offset, textcoords="offset points", color=colour)
        axes.grid(True, which="major", color="#eaeded", linewidth=0.8)
        axes.set_axisbelow(True)
        axes.set_title(title)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        return _svg(figure)


def _label_offsets(axes: Any, points: Sequence[Point]) -> list[tuple[float, float]]:
    """Where each point's label goes (points from the point): right of it, moved up or down until it overlaps no
    label already placed (variants of the same size and nearly the same metric sit on top of each other)."""
    scale = 72 / axes.figure.dpi  # display pixels -> points
    placed: list[tuple[float, float, float]] = []  # left, bottom, width of each label, in points
    offsets = []
    for point in points:
        x, y = (value * scale for value in axes.transData.transform((point.x, point.y)))
        width = 6.2 * len(point.label)
        for dy in (4, -14, 14, -24, 24, -34, 34, -44):
            left, bottom = x + 6, y + dy
            if not any(abs(bottom - b) < 11 and left < x0 + w and x0 < left + width for x0, b, w in placed):
                break
        placed.append((left, bottom, width))
        offsets.append((6.0, float(bottom - y)))
    return offsets
