"""The flights spans: counts against the source, the label, and no information from after departure."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline_components.config import load_pipeline_config
from pipeline_components.data import flights
from pipeline_components.data.spans import SpanReport
from pipeline_components.errors import DataError
from tests.conftest import CONFIGS

Spans = tuple[Path, list[SpanReport]]


def test_one_span_per_month_with_every_arrived_flight(flights_spans: Spans, flights_source) -> None:  # type: ignore[no-untyped-def]
    out, reports = flights_spans
    source = flights_source[0]
    assert [r.span for r in reports] == [f"span-2013-{m:02d}" for m in range(1, 13)]
    for month, report in enumerate(reports, start=1):
        in_month = source[source["month"] == month]
        frame = pd.read_csv(out / report.span / "flights.csv")
        assert report.source_rows == len(in_month)
        assert len(frame) == report.rows == in_month["arr_delay"].notna().sum()
        assert report.dropped == {"cancelled_or_diverted": int(in_month["arr_delay"].isna().sum())}
        manifest = json.loads((out / report.span / "_manifest.json").read_text())
        assert manifest["rows"] == report.rows
    assert sum(r.source_rows for r in reports) == 336_776


def test_label_is_arrival_delay_over_15_minutes(flights_spans: Spans, flights_source) -> None:  # type: ignore[no-untyped-def]
    _, reports = flights_spans
    source = flights_source[0]
    arrived = source[source["arr_delay"].notna()]
    delayed = int((arrived["arr_delay"] > 15).sum())
    assert sum(r.label_counts.get("1", 0) for r in reports) == delayed
    rate = delayed / len(arrived)
    assert 0.20 < rate < 0.25  # about 22 % of arrived flights, as in the source


@pytest.mark.parametrize(("column", "reason"), sorted(flights.LEAKAGE_COLUMNS.items()))
def test_leakage_columns_never_become_features(flights_spans: Spans, column: str, reason: str) -> None:
    """Each of these is known only at or after departure (the reason says why), so none may be a feature."""
    out, reports = flights_spans
    header = (out / reports[0].span / "flights.csv").read_text().splitlines()[0].split(",")
    config = load_pipeline_config(CONFIGS / "flights.yaml")
    assert column not in header, reason
    assert column not in config.features.all, reason
    assert reason  # every exclusion carries its reason


def test_every_configured_feature_is_a_prepared_column_and_nothing_else_leaks() -> None:
    config = load_pipeline_config(CONFIGS / "flights.yaml")
    assert set(config.features.all) == set(flights.FEATURES)
    assert set(flights.COLUMNS) == set(flights.FEATURES) | {flights.LABEL}
    known_after_departure = set(flights.LEAKAGE_COLUMNS)
    assert not known_after_departure & set(flights.COLUMNS)


def test_schedule_and_weather_come_from_before_departure(flights_source) -> None:  # type: ignore[no-untyped-def]
    """Weather is the observation of the *scheduled* departure hour at the origin, never a later one."""
    source, weather, planes = flights_source
    sample = source[source["arr_delay"].notna()].sample(400, random_state=1)
    rows = flights.build_rows(sample, weather, planes)
    assert (rows["sched_dep_hour"].to_numpy() == (sample["sched_dep_time"] // 100).to_numpy()).all()
    hourly = weather.drop_duplicates(subset=["origin", "time_hour"]).set_index(["origin", "time_hour"])
    for (_, flight), (_, row) in zip(sample.iterrows(), rows.iterrows(), strict=True):
        key = (flight["origin"], flight["time_hour"])
        if row["weather_known"]:
            assert row["temp"] == pytest.approx(hourly.loc[key, "temp"])
        else:
            assert key not in hourly.index or pd.isna(hourly.loc[key, "temp"])


def test_sampling_and_month_selection(tmp_path: Path) -> None:
    reports = flights.prepare(tmp_path, months=[3], sample_fraction=0.1)
    assert [r.span for r in reports] == ["span-2013-03"]
    assert 0.08 * 27_902 < reports[0].rows < 0.12 * 27_902
    with pytest.raises(DataError, match="months must be 1-12"):
        flights.prepare(tmp_path, months=[13])
    with pytest.raises(DataError, match="sample_fraction"):
        flights.prepare(tmp_path, sample_fraction=0)


def test_rewriting_a_span_replaces_it_atomically(tmp_path: Path) -> None:
    flights.prepare(tmp_path, months=[1], sample_fraction=0.05)
    first = (tmp_path / "span-2013-01" / "flights.csv").read_text()
    flights.prepare(tmp_path, months=[1], sample_fraction=0.1)
    second = (tmp_path / "span-2013-01" / "flights.csv").read_text()
    assert len(second) > len(first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["span-2013-01"]  # no staging folders left
