"""Bad inputs for the data gate, each derived from a real month by corrupting a COPY (never the source data).

``write_case(name, folder, source)`` writes the corrupted span into ``folder`` (a span folder under a temporary
data directory). ``CASES`` names each case with the error the gate must give (a regular expression over the
GateFailed message) and the node that must give it.

The label's corruptions are the ways an upstream system computes it wrongly: inverted, with another delay threshold
(from the month's real arrival delays, ``month_with_delays``), flipped at random for a share of rows, left empty,
or the delay in minutes instead of 0/1. Partial deliveries keep a few days, or one origin airport, of the month.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SOURCE = Path("flights.csv")


DELAY = "arr_delay"  # kept beside a sample for the label's corruptions; never written to a span


def sample_month(source_csv: Path, rows: int, seed: int) -> pd.DataFrame:
    """A reproducible sample of a real month (a copy in memory)."""
    frame = pd.read_csv(source_csv)
    return frame.sample(n=min(rows, len(frame)), random_state=seed).reset_index(drop=True)


def month_with_delays(source: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], month: int, rows: int) -> pd.DataFrame:
    """A reproducible sample of a real month as the preparer writes it, with each flight's arrival delay."""
    from pipeline_components.data import flights

    flights_table, weather, planes = source
    arrived = flights_table[flights_table[DELAY].notna()]
    built = flights.build_rows(flights_table, weather, planes)  # the arrived flights, in the same order
    built[DELAY] = arrived[DELAY].to_numpy()
    frame = built[built["month"] == month].drop(columns=["month"])
    assert (frame[flights.LABEL] == (frame[DELAY] > flights.DELAY_THRESHOLD_MINUTES)).all()
    return frame.sample(n=min(rows, len(frame)), random_state=month).reset_index(drop=True)


def _write(frame: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "flights.csv"
    frame.drop(columns=[DELAY], errors="ignore").to_csv(path, index=False)
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


def label_inverted(frame: pd.DataFrame, folder: Path) -> None:
    _write(frame.assign(is_delayed=1 - frame["is_delayed"]), folder)  # 0 <-> 1: "on time" computed as "late"


def label_threshold(minutes: int) -> Callable[[pd.DataFrame, Path], None]:
    """The label computed with another delay threshold (``minutes`` instead of 15)."""

    def build(frame: pd.DataFrame, folder: Path) -> None:
        _write(frame.assign(is_delayed=(frame[DELAY] > minutes).astype("int64")), folder)

    build.__name__ = f"label_threshold_{minutes}"
    return build


def label_shuffled(frame: pd.DataFrame, folder: Path) -> None:
    """Half the rows' labels shuffled among them (a join on the wrong key): the positive rate does not move."""
    rng = np.random.default_rng(3)
    rows = rng.choice(len(frame), size=len(frame) // 2, replace=False)
    labels = frame["is_delayed"].to_numpy().copy()
    labels[rows] = rng.permutation(labels[rows])
    _write(frame.assign(is_delayed=labels), folder)


def label_flipped(frame: pd.DataFrame, folder: Path) -> None:
    rng = np.random.default_rng(5)
    flip = rng.random(len(frame)) < 0.3  # 30 % of the rows' labels flipped at random
    _write(frame.assign(is_delayed=np.where(flip, 1 - frame["is_delayed"], frame["is_delayed"])), folder)


def label_in_minutes(frame: pd.DataFrame, folder: Path) -> None:
    _write(frame.assign(is_delayed=frame[DELAY].astype("int64")), folder)  # the delay itself, not 0/1


def _label_missing(frame: pd.DataFrame, folder: Path) -> None:
    broken = frame.astype({"is_delayed": "Int64"})
    broken.loc[broken.index[::8], "is_delayed"] = pd.NA  # the label's feed lost every eighth row
    _write(broken, folder)


def first_days(frame: pd.DataFrame, folder: Path) -> None:
    _write(frame[frame["day"] <= 3], folder)  # the delivery stopped after three days


def one_origin(frame: pd.DataFrame, folder: Path) -> None:
    _write(frame[frame["origin"] == "EWR"], folder)  # only Newark's flights were exported


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
    # The label is data too: its distribution against the previous spans (span 1: positive rate about 0.23).
    Case(
        "label_inverted",
        label_inverted,
        "DeliveryValidator",
        r"label is_delayed: positive rate 0\.7\d{3}, expected 0\.2\d{3}\.\.0\.2\d{3} from span 1 ± 0\.1 "
        r"\(validation\.label\.max_share_change\): 0\.5\d{3} outside",
    ),
    Case(
        "label_threshold_60",
        label_threshold(60),
        "DeliveryValidator",
        r"label is_delayed: positive rate 0\.0\d{3}, expected 0\.2\d{3}\.\.0\.2\d{3} from span 1 ± 0\.1 .*: "
        r"0\.1\d{3} outside",
    ),
    Case(
        "label_flipped_30pct",
        label_flipped,
        "DeliveryValidator",
        r"label is_delayed: positive rate 0\.3\d{3}, expected 0\.2\d{3}\.\.0\.2\d{3} from span 1",
    ),
    Case(
        "label_missing",
        _label_missing,
        "DeliveryValidator",
        r"label is_delayed: 313 rows \(12\.52 %\) have no label",
        (("GreatExpectationsValidator", r"is_delayed: 313 nulls"),),
    ),
    # ... and its schema: the committed schema's bool_domain and the suite's allowed set {0, 1}.
    Case(
        "label_in_minutes",
        label_in_minutes,
        "ExampleValidator",
        r"is_delayed: .*(Out-of-range|[Nn]on-boolean|Unexpected)",
        (("GreatExpectationsValidator", r"is_delayed: \d+ values .* not in the allowed set"),),
    ),
    # Partial deliveries: expected volume and calendar coverage from the previous spans.
    Case(
        "first_three_days",
        first_days,
        "DeliveryValidator",
        r"calendar: 3 distinct `day` values \(1\.\.3\), expected at least 28 \(the previous spans had 31\.\.31, "
        r"tolerance 3.*absent: 4\.\.31",
        (("DeliveryValidator", r"rows: \d+ is 0\.\d\d x the previous spans' median 2,500 \(span 1\).*a partial"),),
    ),
    Case(
        "one_origin_airport",
        one_origin,
        "DeliveryValidator",
        r"rows: \d+ is 0\.[34]\d x the previous spans' median 2,500 \(span 1\), expected 0\.8\.\.1\.25 x: a partial",
        (("DriftSkewValidator", r"drift of origin: L-infinity distance 0\.6\d+ > threshold 0\.1"),),
    ),
]


def write_case(case: Case, folder: Path, frame: pd.DataFrame, *, original: Path) -> None:
    if case.build is _duplicated_span:
        _duplicated_span(frame, folder, original=original)
    else:
        case.build(frame, folder)
