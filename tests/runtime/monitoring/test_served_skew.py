"""Skew and drift of served traffic on real flights: what ``monitor_window`` reports, per feature, with evidence.

The served version (3) was trained on a real January: half of a 10 % sample of the month is its training split
(its statistics registered in ML Metadata as a pipeline run records them, ``conftest.py``); the traffic it then
answers is logged by the model server's own request logger. Figures seen here with the default thresholds (0.1 for
every feature; L-infinity for categorical, Jensen-Shannon for numeric):

- the other half of January: no alert (largest: origin 0.039, sched_dep_hour 0.031, carrier 0.030);
- July: alert on the seasonal features (month_name 1.0 is measured, never news), temp 0.996, dewp 0.934, precip
  0.546, pressure 0.176, humid 0.106 (wind_speed 0.08 and visib 0.07 stay under); the route and schedule features
  stay under 0.04;
- January with ``distance`` sent in kilometres: alert on distance alone, Jensen-Shannon 0.117 (just over 0.1: the
  metric compares histograms, and a scaled axis moves a distribution's mass only partly out of its buckets);
- January with the carriers sent as ICAO codes (UAL for UA, ...): alert on carrier alone, L-infinity = the largest
  carrier's share.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import tensorflow_data_validation as tfdv

from pipeline_components.config import PipelineConfig
from pipeline_components.errors import NoTrafficError
from pipeline_components.metadata.reader import RunReader
from pipeline_components.monitoring import Window, monitor_window
from tests.runtime.monitoring.conftest import now

pytestmark = pytest.mark.runtime

VERSION = 3
SUMMER = 5  # a version trained on July
# IATA -> ICAO codes of the carriers out of New York in 2013: an upstream system switching code lists.
ICAO = {
    "UA": "UAL",
    "B6": "JBU",
    "EV": "ASQ",
    "DL": "DAL",
    "AA": "AAL",
    "MQ": "ENY",
    "US": "AWE",
    "9E": "EDV",
    "WN": "SWA",
    "VX": "VRD",
    "FL": "TRS",
    "AS": "ASA",
    "F9": "FFT",
    "YV": "ASH",
    "HA": "HAL",
    "OO": "SKW",
}


@pytest.fixture(scope="module")
def january(months: dict[int, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """January's training split and the January traffic served afterwards."""
    training = months[1].sample(frac=0.5, random_state=0)
    return training, months[1].drop(training.index)


@pytest.fixture(scope="module")
def reader(
    tmp_path_factory: pytest.TempPathFactory,
    register_push: Callable[..., Any],
    months: dict[int, pd.DataFrame],
    january: tuple[pd.DataFrame, pd.DataFrame],
) -> RunReader:
    path = tmp_path_factory.mktemp("metadata") / "flights.sqlite"
    lineage = register_push(path, version=VERSION, trained_on={1: january[0]}, judged_on={7: months[7]})
    register_push(path, version=SUMMER, trained_on={7: months[7].sample(frac=0.5, random_state=0)}, judged_on={})
    return RunReader(lineage.config, "flights")


@pytest.fixture(scope="module")
def serve(
    tmp_path_factory: pytest.TempPathFactory, config: PipelineConfig, reader: RunReader, log_served: Callable[..., Any]
) -> Callable[..., dict[str, Any]]:
    """``serve(name, frame, previous=None)``: log ``frame`` as served traffic, monitor its window; the result."""
    root = tmp_path_factory.mktemp("windows")

    def run(
        name: str, frame: pd.DataFrame, previous: Path | None = None, also: dict[int, pd.DataFrame] | None = None
    ) -> dict[str, Any]:
        since = now()
        probabilities = log_served(root / name / "log" / "flights_delay", frame, version=VERSION, also=also)
        result = monitor_window(
            config=config,
            reader=reader,
            log_prefix=root / name / "log" / "flights_delay",
            window=Window(since, now() + 1),
            out_dir=root / name / "out",
            previous_dir=previous,
        )
        return {**result, "out": root / name / "out", "given": probabilities}

    return run


@pytest.fixture(scope="module")
def served_january(serve: Callable[..., dict[str, Any]], january: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, Any]:
    return serve("january", january[1])


def crossed(result: dict[str, Any], check: str = "skew") -> set[str]:
    return {m["feature"] for m in result["measurements"] if m["check"] == check and m["failed"]}


def figures(result: dict[str, Any], check: str = "skew") -> dict[str, float]:
    return {m["feature"]: round(m["observed"], 3) for m in result["measurements"] if m["check"] == check}


def test_the_same_month_raises_no_alert(served_january: dict[str, Any], january: Any) -> None:
    result = served_january
    assert result["rows"] == len(january[1]) and result["rows_per_version"] == {str(VERSION): len(january[1])}
    assert result["trained_on_spans"] == {str(VERSION): [1]}
    assert result["alert"] is False, result["evidence"]
    assert crossed(result) == set()
    assert len(figures(result)) == 20  # every feature measured, none absent
    assert "drift: no previous window's statistics (the first window): nothing to compare" in result["notes"]


def test_a_distant_month_raises_skew_on_the_seasonal_features(
    serve: Callable[..., dict[str, Any]], months: dict[int, pd.DataFrame]
) -> None:
    result = serve("july", months[7])
    print("July vs January training statistics:", figures(result))
    assert result["alert"] is True
    assert {"temp", "dewp"} <= crossed(result)
    assert not {"carrier", "origin", "dest", "distance", "sched_dep_hour"} & crossed(result)
    # A month the training window does not name is measured (1.0) but not news (configs/flights.yaml: 1.0).
    assert figures(result)["month_name"] == 1.0 and "month_name" not in crossed(result)
    evidence = " | ".join(result["evidence"])
    assert "skew of temp: Jensen-Shannon divergence" in evidence
    assert f"served version {VERSION}" in evidence and "training span 1" in evidence


def test_each_version_is_compared_with_its_own_training_statistics(
    serve: Callable[..., dict[str, Any]], january: Any, months: dict[int, pd.DataFrame]
) -> None:
    """January answered by the January version and July by the July version, in one window: none of the seasonal
    skew that July shows against January's training statistics.

    Seen here: one false alarm, precip 0.326 between two halves of the same July sample (Jensen-Shannon on a
    feature that is 0 in most hours; docs/monitoring.md); everything else under 0.07."""
    july = months[7].drop(months[7].sample(frac=0.5, random_state=0).index)
    result = serve("two_versions", january[1], also={SUMMER: july})
    assert result["rows_per_version"] == {str(VERSION): len(january[1]), str(SUMMER): len(july)}
    assert result["trained_on_spans"] == {str(VERSION): [1], str(SUMMER): [7]}
    print("two versions, crossed:", result["evidence"])
    assert not {"month_name", "temp", "dewp", "pressure", "humid"} & crossed(result)
    assert crossed(result) <= {"precip"}, result["evidence"]
    compared = {m["compared"].split(" (")[0] for m in result["measurements"]}
    assert compared == {f"served version {VERSION}", f"served version {SUMMER}"}


def test_distance_in_kilometres_alerts_on_distance(
    serve: Callable[..., dict[str, Any]], january: Any, served_january: dict[str, Any]
) -> None:
    frame = january[1].assign(distance=january[1]["distance"] * 1.609344)
    result = serve("kilometres", frame, previous=served_january["out"])
    print("distance in km:", figures(result)["distance"], "drift", figures(result, "drift")["distance"])
    assert result["alert"] is True
    assert crossed(result) == {"distance"}
    # The previous window (January in miles) is the drift baseline: the same change, seen as drift.
    assert crossed(result, "drift") == {"distance"}
    assert any(line.startswith("drift of distance: Jensen-Shannon divergence") for line in result["evidence"])
    page = (result["out"] / "report.html").read_text()
    assert "2 of 40 comparisons above threshold" in page and "drift of distance: Jensen-Shannon divergence" in page


def test_renamed_carrier_codes_alert_on_carrier(serve: Callable[..., dict[str, Any]], january: Any) -> None:
    frame = january[1].assign(carrier=january[1]["carrier"].map(ICAO))
    assert frame["carrier"].notna().all()
    result = serve("icao", frame)
    largest_share = january[0]["carrier"].value_counts(normalize=True).max()
    assert result["alert"] is True
    assert crossed(result) == {"carrier"}
    assert figures(result)["carrier"] == pytest.approx(largest_share, abs=0.05)


def test_outputs_and_the_distribution_of_predictions(served_january: dict[str, Any]) -> None:
    out, given = served_january["out"], served_january["given"]
    written = json.loads((out / "result.json").read_text())
    assert written["alert"] is False and written["measurements"] == json.loads(
        json.dumps(served_january["measurements"])
    )
    predictions = written["predictions"]
    assert predictions["count"] == len(given)
    assert predictions["quantiles"]["0.5"] == pytest.approx(np.quantile(given.astype("float32"), 0.5), abs=1e-6)
    assert sum(predictions["histogram"]["counts"]) == len(given)
    report = (out / "report.md").read_text()
    assert report.startswith("# Served traffic of flights_delay (flights): no alert")
    assert "| skew | distance | Jensen-Shannon divergence |" in report
    page = (out / "report.html").read_text()
    assert "served traffic within thresholds (20 comparisons" in page and ">distance<" in page
    assert (out / "monitoring.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    statistics = tfdv.load_stats_binary(str(out / "statistics.pb"))
    assert statistics.datasets[0].num_examples == served_january["rows"]


def test_a_window_without_traffic_is_no_alert_but_an_error(
    config: PipelineConfig, reader: RunReader, served_january: dict[str, Any], tmp_path: Path
) -> None:
    prefix = served_january["out"].parent / "log" / "flights_delay"
    window = Window(served_january["window"]["since"] - 3600, served_january["window"]["since"])  # the hour before
    with pytest.raises(NoTrafficError, match="no logged request of model 'flights_delay' answered in") as error:
        monitor_window(config=config, reader=reader, log_prefix=prefix, window=window, out_dir=tmp_path / "out")
    assert "not an alert" in str(error.value)
    assert not (tmp_path / "out").exists()
