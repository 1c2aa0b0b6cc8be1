"""A span's delivery profile (rows, calendar units covered, label counts) and how it is judged against history.

Pure Python and pandas: the executor reads the span's raw CSV into a ``Profile``, picks the previous spans'
profiles from ML Metadata, and ``judge`` returns one ``Check`` per rule, each with the line a person reads.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline_components.config import DeliveryConfig


@dataclass(frozen=True)
class Profile:
    """What one span delivered.

    Attributes:
        span: the span number.
        rows: data rows in the span's files.
        label_counts: label value (as text) -> rows with it.
        label_missing: rows without a label.
        calendar: the distinct values of the calendar column, sorted (None: not checked).
    """

    span: int
    rows: int
    label_counts: dict[str, int] = field(default_factory=dict)
    label_missing: int = 0
    calendar: list[Any] | None = None

    def share(self, value: str) -> float:
        """The share of labelled rows whose label is ``value``."""
        labelled = sum(self.label_counts.values())
        return self.label_counts.get(value, 0) / labelled if labelled else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


@dataclass(frozen=True)
class Check:
    """One rule applied to the span: what was observed, what was expected, and the line that says it."""

    check: str  # rows | calendar | label
    observed: str
    expected: str
    passed: bool
    line: str


def _plain(value: Any) -> Any:
    """1.0 (from a column pandas read as float because a value is missing) as 1; other values as they are."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _order(value: Any) -> tuple[bool, Any]:
    return isinstance(value, str), value  # numbers first, then text: mixed values still sort


def read_profile(files: Sequence[Path], *, span: int, label: str, calendar_column: str | None) -> Profile:
    """Profile the span's CSV files: only the label and calendar columns are read.

    Raises:
        KeyError: the label or the calendar column is not a column of the files (named in the message).
    """
    import pandas as pd

    wanted = [label, *([calendar_column] if calendar_column else [])]
    frames = []
    for path in files:
        header = list(pd.read_csv(path, nrows=0).columns)
        missing = [column for column in wanted if column not in header]
        if missing:
            raise KeyError(f"{path.name} has no column(s) {missing}")
        frames.append(pd.read_csv(path, usecols=wanted, low_memory=False))
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    labels = frame[label]
    counts: dict[str, int] = {}
    for value, count in labels.dropna().value_counts().items():
        key = str(_plain(value))
        counts[key] = counts.get(key, 0) + int(count)
    calendar = None
    if calendar_column:
        values = frame[calendar_column].dropna().unique().tolist()
        calendar = sorted((_plain(v) for v in values), key=_order)
    return Profile(
        span=span,
        rows=len(frame),
        label_counts=dict(sorted(counts.items())),
        label_missing=int(labels.isna().sum()),
        calendar=calendar,
    )


def _spans(history: Sequence[Profile]) -> str:
    numbers = sorted(p.span for p in history)
    return f"span {numbers[0]}" if len(numbers) == 1 else "spans " + ", ".join(str(n) for n in numbers)


def _compact(values: Sequence[Any]) -> str:
    """``[1, 2, 3, 7]`` -> ``1..3, 7``: runs of consecutive integers shortened, at most 8 items shown."""
    items: list[str] = []
    ints = all(isinstance(v, int) for v in values)
    run: list[Any] = []
    for value in [*values, None]:
        if ints and run and value is not None and value == run[-1] + 1:
            run.append(value)
            continue
        if run:
            items.append(f"{run[0]}..{run[-1]}" if len(run) > 2 else ", ".join(str(v) for v in run))
        run = [value] if value is not None else []
    shown = ", ".join(items[:8])
    return shown + (", ..." if len(items) > 8 else "")


def check_rows(profile: Profile, history: Sequence[Profile], config: DeliveryConfig) -> list[Check]:
    """The absolute bounds always; with history, the rows against the previous spans' median."""
    checks = []
    high = f"..{config.max_rows:,}" if config.max_rows is not None else " or more"
    within = profile.rows >= config.min_rows and (config.max_rows is None or profile.rows <= config.max_rows)
    checks.append(
        Check(
            "rows",
            f"{profile.rows:,}",
            f"{config.min_rows:,}{high} (validation.delivery)",
            within,
            f"rows: {profile.rows:,}, expected {config.min_rows:,}{high} (validation.delivery.min_rows/max_rows)",
        )
    )
    if history:
        median = statistics.median(p.rows for p in history)
        low, top = math.ceil(config.min_rows_ratio * median), math.floor(config.max_rows_ratio * median)
        ratio = profile.rows / median if median else math.inf
        expected = f"{low:,}..{top:,} ({config.min_rows_ratio:g}..{config.max_rows_ratio:g} x the median {median:,.0f})"
        checks.append(
            Check(
                "rows",
                f"{profile.rows:,} ({ratio:.2f} x)",
                f"{expected} of {_spans(history)}",
                low <= profile.rows <= top,
                f"rows: {profile.rows:,} is {ratio:.2f} x the previous spans' median {median:,.0f} "
                f"({_spans(history)}), expected {config.min_rows_ratio:g}..{config.max_rows_ratio:g} x: "
                + ("a partial delivery?" if profile.rows < low else "more than one span's data?"),
            )
        )
    return checks


def check_calendar(profile: Profile, history: Sequence[Profile], config: DeliveryConfig) -> list[Check]:
    """Distinct calendar values against the previous spans' fewest, less the tolerance."""
    column = config.calendar_column
    known = [p for p in history if p.calendar is not None]
    if not column or profile.calendar is None or not known:
        return []
    counts = [len(p.calendar or []) for p in known]
    needed = min(counts) - config.calendar_tolerance
    observed = len(profile.calendar)
    absent = sorted({v for p in known for v in (p.calendar or [])} - set(profile.calendar), key=_order)
    passed = observed >= needed
    line = (
        f"calendar: {observed} distinct `{column}` values ({_compact(profile.calendar)}), expected at least {needed} "
        f"(the previous spans had {min(counts)}..{max(counts)}, tolerance {config.calendar_tolerance}; "
        f"validation.delivery.calendar_tolerance)"
    )
    if absent:
        line += f"; absent: {_compact(absent)}"
    return [Check("calendar", str(observed), f">= {needed}", passed, line)]


def check_label(
    profile: Profile, history: Sequence[Profile], *, label: str, positive: str | None, max_share_change: float
) -> list[Check]:
    """Each class's share against the range of its shares in the previous spans, plus the tolerance; rows without
    a label always fail. A binary label (``positive``: its positive class) is judged by its positive rate."""
    checks = []
    if profile.label_missing:
        share = profile.label_missing / profile.rows if profile.rows else 1.0
        checks.append(
            Check(
                "label",
                f"{profile.label_missing:,} rows without a label",
                "every row labelled",
                False,
                f"label {label}: {profile.label_missing:,} rows ({100 * share:.2f} %) have no label",
            )
        )
    if not history:
        return checks
    values = sorted({*profile.label_counts, *(v for p in history for v in p.label_counts)})
    if positive is not None and len(values) <= 2:
        values = [positive]  # the positive rate says it all (the other share is its complement)
    for value in values:
        shares = [p.share(value) for p in history]
        low, high = min(shares), max(shares)
        observed = profile.share(value)
        outside = max(0.0, low - observed, observed - high)
        name = "positive rate" + ("" if value == "1" else f" ({value})") if value == positive else f"share of {value}"
        expected = f"{low:.4f}..{high:.4f} ± {max_share_change:g}"
        checks.append(
            Check(
                "label",
                f"{name} {observed:.4f}",
                f"{expected} ({_spans(history)})",
                outside <= max_share_change,
                f"label {label}: {name} {observed:.4f}, expected {low:.4f}..{high:.4f} from {_spans(history)} "
                f"± {max_share_change:g} (validation.label.max_share_change): {outside:.4f} outside",
            )
        )
    return checks
