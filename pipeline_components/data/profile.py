"""What ``runway init`` decides from your data: each column's role (numeric, categorical, left out) and the label.

Every decision carries its reason, written beside it in the configuration so that a person can disagree and move
a column by hand. The rules are deliberately plain:

- text is categorical (a vocabulary, then an embedding), unless nearly every row has its own value (an identifier);
- integers with at most ``MAX_CODES`` distinct values are categorical (codes, flags, weekdays), other numbers are
  numeric (scaled to z-scores);
- a column with one value, or missing in more than ``MAX_MISSING`` of the rows, is left out (rows that miss a value
  of a kept column are dropped when the spans are written: the served model takes every feature);
- the label has two values (binary) or a few (multiclass); text values become ``values: name`` with the classes
  listed, integers 0/1 (or 0..K-1) stay indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from pipeline_components.errors import DataError

MAX_CODES = 12  # integer columns with at most this many values read as codes (months, weekdays, flags)
MAX_MISSING = 0.05  # a column missing in more rows than this is left out (else its rows would be dropped)
ID_SHARE = 0.5  # text with more distinct values than this share of the rows names rows, it does not describe them
MAX_CLASSES = 50  # more label values than this is not a classification
# Binary labels whose positive class is obvious from the names (else the rarer value is the positive class).
_POSITIVE = {"yes", "y", "true", "t", "1", "positive", "pos"}

Role = Literal["numeric", "categorical", "left_out"]


@dataclass(frozen=True)
class ColumnChoice:
    name: str
    role: Role
    reason: str
    dtype: str  # as the CSV holds it: integer, float, text


@dataclass(frozen=True)
class LabelChoice:
    column: str
    kind: Literal["binary", "multiclass"]
    values: Literal["index", "name"]
    classes: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    reason: str = ""


def _dtype(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "text"  # True/False in a CSV are words
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_float_dtype(series):
        whole = series.dropna()
        return "integer" if len(whole) and bool((whole % 1 == 0).all()) else "float"
    return "text"


def _examples(values: Sequence[object], count: int = 4) -> str:
    shown = ", ".join(str(v) for v in values[:count])
    return shown + (", ..." if len(values) > count else "")


def choose_columns(
    frame: pd.DataFrame, *, label: str, span_column: str | None = None, exclude: tuple[str, ...] = ()
) -> list[ColumnChoice]:
    """A role and its reason for every column of ``frame``, in the file's order.

    Raises:
        DataError: a column named in ``exclude`` does not exist, or no column is left to learn from.
    """
    unknown = sorted(set(exclude) - set(frame.columns))
    if unknown:
        raise DataError(f"--exclude names no column of the CSV: {unknown}; it has {list(frame.columns)}")
    choices = []
    for name in frame.columns:
        series = frame[name]
        kind = _dtype(series)
        missing = float(series.isna().mean())
        distinct = series.dropna().unique().tolist()
        if name == label:
            continue
        if name == span_column:
            choices.append(ColumnChoice(name, "left_out", "the span column: it numbers the spans", kind))
        elif name in exclude:
            choices.append(ColumnChoice(name, "left_out", "left out on request (--exclude)", kind))
        elif missing > MAX_MISSING:
            choices.append(
                ColumnChoice(
                    name,
                    "left_out",
                    f"missing in {100 * missing:.1f} % of rows (more than {100 * MAX_MISSING:.0f} %): fill it "
                    "upstream to use it",
                    kind,
                )
            )
        elif len(distinct) <= 1:
            choices.append(ColumnChoice(name, "left_out", f"one value in every row ({_examples(distinct)})", kind))
        elif kind == "text" and len(distinct) > max(100, ID_SHARE * len(series)):
            choices.append(
                ColumnChoice(
                    name, "left_out", f"text with {len(distinct)} distinct values: names rows (an identifier)", kind
                )
            )
        elif kind == "text":
            reason = f"text, {len(distinct)} values ({_examples(sorted(map(str, distinct)))})"
            choices.append(ColumnChoice(name, "categorical", reason, kind))
        elif kind == "integer" and len(distinct) <= MAX_CODES:
            reason = f"integer codes, {len(distinct)} values ({_examples(sorted(distinct))}); numeric if they count"
            choices.append(ColumnChoice(name, "categorical", reason, kind))
        else:
            low, high = series.min(), series.max()
            reason = f"{kind}, {len(distinct)} values from {low:g} to {high:g}"
            choices.append(ColumnChoice(name, "numeric", reason, kind))
    if not any(choice.role != "left_out" for choice in choices):
        raise DataError("no column is left to learn from: every column besides the label was left out")
    return choices


def choose_label(frame: pd.DataFrame, column: str, *, positive: str | None = None) -> LabelChoice:
    """The label's kind, what its column holds (indices or names) and the classes in index order.

    Args:
        frame: the rows.
        column: the label column.
        positive: a binary label's positive class (default: yes/true/1/positive when present, else the rarer).

    Raises:
        DataError: the column is missing, empty, has one value, too many, or ``positive`` is not one of them.
    """
    if column not in frame.columns:
        raise DataError(f"the CSV has no label column '{column}'; it has {list(frame.columns)}")
    kind_of_values = _dtype(frame[column])
    series = frame[column].dropna()
    if kind_of_values == "integer":
        series = series.astype("int64")  # a column with an empty cell reads as floats: 1.0 is the class 1
    counts = {str(k): int(v) for k, v in series.astype(str).value_counts().items()}
    if len(counts) < 2:
        raise DataError(f"label '{column}' has {len(counts)} distinct value(s) ({list(counts)}): nothing to learn")
    if kind_of_values == "float" or len(counts) > MAX_CLASSES:
        raise DataError(
            f"label '{column}' has {len(counts)} distinct {kind_of_values} values: runway trains classifiers "
            f"(at most {MAX_CLASSES} classes); bin a numeric target into classes first"
        )
    names = sorted(counts, key=lambda v: (int(v) if kind_of_values == "integer" else 0, v))
    if positive is not None and positive not in counts:
        raise DataError(f"--positive {positive!r} is not a value of label '{column}' ({list(counts)})")
    if len(names) == 2:
        if names == ["0", "1"] and positive in (None, "1"):
            return LabelChoice(column, "binary", "index", [], counts, "two values, 0 and 1 (1 is the positive class)")
        known = [name for name in names if name.lower() in _POSITIVE]
        chosen = positive or (known[0] if len(known) == 1 else min(names, key=lambda n: (counts[n], n)))
        why = "as asked (--positive)" if positive else ("by its name" if len(known) == 1 else "the rarer value")
        negative = next(name for name in names if name != chosen)
        return LabelChoice(
            column,
            "binary",
            "name",
            [negative, chosen],
            counts,
            f"two values; '{chosen}' is the positive class ({why}): the model answers P({column} = {chosen})",
        )
    if kind_of_values == "integer" and names == [str(i) for i in range(len(names))]:
        return LabelChoice(
            column, "multiclass", "index", names, counts, f"{len(names)} class indices 0..{len(names) - 1}"
        )
    return LabelChoice(column, "multiclass", "name", names, counts, f"{len(names)} classes, by name")
