"""The closed loop of issue 20 as an operator runs it: a month trained and served with request logging on, real
months replayed through the load balancer, ``flights_monitoring`` run through Airflow, retraining asked for on
drift only.

One real stack for the module: a 10 % sample of January 2013 through the flights pipeline (Airflow, the runtime
environment, ML Metadata) onto a 2-instance fleet of runway's model server behind nginx, every request logged
(``configs/flights.yaml``'s ``serving.request_logging``). Then ``runway monitor``, as documented in
docs/monitoring.md: January again (like the training data), July (summer, to a winter model), and a window with no
traffic at all.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.orchestration.airflow_local import database_path
from pipeline_components.settings import Settings
from tests.fleet.fixtures import fleet_port_args
from tests.helpers import check, latest_summary, runway

pytestmark = pytest.mark.e2e

FAST = ["--set", "model.train_steps=150", "--set", "model.eval_steps=5", "--set", "evaluation.lower_bound=0.55",
        "--set", "validation.delivery.min_rows=500", "--param", "tflite_variants=int8"]  # fmt: skip
REPLAY = ["--count", "600", "--rate", "100"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """January trained, pushed and `stable` on the fleet, which logs every request; July prepared beside it."""
    settings = Settings.from_env({"RUNWAY_HOME": str(tmp_path_factory.mktemp("closed-loop-home"))})
    check(runway(settings, "data", "prepare", "flights", "--spans", "1", "--sample-fraction", "0.1"))
    check(runway(settings, "fleet", "up", "--instances", "2", *fleet_port_args(2)))
    try:
        check(runway(settings, "run", "flights", *FAST))
        assert latest_summary(settings, "flights")["metadata"]["push"]["pushed"] is True
        check(runway(settings, "data", "prepare", "flights", "--spans", "7", "--sample-fraction", "0.1"))
        yield settings
    finally:
        runway(settings, "fleet", "down")


def _monitor(settings: Settings, *args: str) -> tuple[str, dict[str, Any] | None]:
    """``runway monitor flights ARGS``: its output, and the window it judged (None when it judged none)."""
    before = set((settings.home / "reports" / "flights").glob("monitoring-*"))
    out = check(runway(settings, "monitor", "flights", *args))
    new = sorted(set((settings.home / "reports" / "flights").glob("monitoring-*")) - before)
    return out, json.loads((new[-1] / "result.json").read_text()) if new else None


def _crossed(result: dict[str, Any]) -> set[str]:
    return {m["feature"] for m in result["measurements"] if m["failed"]}


def _retraining_events(settings: Settings) -> list[dict[str, Any]]:
    with sqlite3.connect(database_path(settings)) as db:
        rows = db.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.name = 'flights_spans' AND e.source_dag_id = 'flights_monitoring' ORDER BY e.id"
        ).fetchall()
    return [json.loads(extra) for (extra,) in rows]


def test_a_month_like_the_training_data_raises_no_alert(served: Settings) -> None:
    out, result = _monitor(served, "--replay", "1", *REPLAY)

    assert result is not None
    # The replayed requests, and the rollout's verification requests before them: all answered by the version.
    assert result["rows"] >= 600 and len(result["rows_per_version"]) == 1
    assert result["alert"] is False, result["evidence"]
    assert "watch_traffic success, check_alert success, request_retraining skipped" in out
    assert "No threshold crossed" in out
    assert _retraining_events(served) == []
    page = served.home / "reports" / "flights" / Path(result["files"]["page"])
    assert "report.html" in out and page.name == "report.html"


def test_summer_traffic_to_a_winter_model_asks_for_retraining_with_the_evidence(served: Settings) -> None:
    out, result = _monitor(served, "--replay", "7", *REPLAY)

    assert result is not None and result["rows"] == 600
    assert result["alert"] is True
    assert {"temp", "dewp"} <= _crossed(result)  # the seasonal features, against January's statistics
    assert not {"carrier", "origin", "dest", "distance"} & _crossed(result)  # the routes did not change
    assert "ALERT: retraining requested" in out and "request_retraining success" in out
    (event,) = _retraining_events(served)  # the pipeline's Asset, which schedules flights_pipeline
    assert event["reason"] == "drift in served traffic"
    assert event["evidence"] == result["evidence"]
    assert any(line.startswith("skew of temp: Jensen-Shannon divergence") for line in event["evidence"])
    assert event["report"].startswith("/runway/reports/flights/monitoring-")
    assert "drift" in {m["check"] for m in result["measurements"]}  # against the January window before it


def test_a_window_without_traffic_is_skipped_not_failed(served: Settings) -> None:
    out, result = _monitor(served)

    assert result is None  # nothing judged, nothing written: the next window covers this time too
    assert "watch_traffic skipped" in out and "no logged traffic since the last window" in out
