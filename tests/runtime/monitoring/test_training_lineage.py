"""The training statistics of a served version, through ML Metadata, and the command line a DAG task runs.

The store is a real ML Metadata SQLite file with what a pipeline run records (``conftest.LineageStore``): the version
must lead to the statistics of the spans its Trainer learned from (through Transform's window), never to the spans
its Evaluator was judged on. The same lookup found the three window spans of every version pushed by a real
twelve-month run of the flights pipeline (docs/monitoring.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline_components.errors import NoTrainingStatisticsError
from pipeline_components.metadata.reader import RunReader
from pipeline_components.monitoring import training_statistics
from pipeline_components.monitoring.__main__ import EXIT_NO_TRAFFIC, main
from pipeline_components.settings import Settings
from tests.runtime.monitoring.conftest import now

pytestmark = pytest.mark.runtime


def test_a_version_leads_to_the_statistics_of_its_training_window(
    tmp_path: Path, register_push: Callable[..., Any], months: dict[int, pd.DataFrame]
) -> None:
    january, july = months[1], months[7]
    lineage = register_push(tmp_path / "m.sqlite", version=3, trained_on={1: january}, judged_on={2: july})
    register_push(tmp_path / "m.sqlite", version=5, trained_on={1: january, 7: july}, judged_on={8: july})
    reader = RunReader(lineage.config, "flights")

    five = training_statistics(reader, 5)
    assert [s.span for s in five] == [7, 1]  # newest span first; span 8 was only evaluated on
    assert all(s.split_path("train").is_file() and "statistics-5-" in s.uri for s in five)
    assert [s.span for s in training_statistics(reader, 3)] == [1]

    with pytest.raises(NoTrainingStatisticsError, match="version 4 was not pushed by pipeline 'flights'"):
        training_statistics(reader, 4)


def test_a_push_without_a_trainer_upstream_says_its_lineage_is_incomplete(
    tmp_path: Path, register_push: Callable[..., Any]
) -> None:
    lineage = register_push(tmp_path / "m.sqlite", version=3, trained_on={}, judged_on={})
    pushed = lineage.artifact("PushedModel", str(tmp_path / "imported"), pushed=1, pushed_version=9)
    lineage.execution("Pusher", {}, {"pushed_model": [pushed]})
    with pytest.raises(NoTrainingStatisticsError, match="no Trainer execution upstream of version 9's push"):
        training_statistics(RunReader(lineage.config, "flights"), 9)
    with pytest.raises(NoTrainingStatisticsError, match="trained on spans that have no StatisticsGen statistics"):
        training_statistics(RunReader(lineage.config, "flights"), 3)


def test_the_command_line_writes_the_result_and_says_when_there_was_no_traffic(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    register_push: Callable[..., Any],
    log_served: Callable[..., Any],
    months: dict[int, pd.DataFrame],
) -> None:
    monkeypatch.setenv("RUNWAY_HOME", str(tmp_path / "home"))
    store = Settings.from_env().metadata_path("flights")
    store.parent.mkdir(parents=True)
    training = months[1].sample(frac=0.5, random_state=0)
    register_push(store, version=3, trained_on={1: training}, judged_on={})
    prefix = tmp_path / "logs" / "flights_delay"
    since = now()
    log_served(prefix, months[1].drop(training.index), version=3)
    args = ["--pipeline", "flights", "--log-prefix", str(prefix), "--out", str(tmp_path / "out")]

    assert main([*args, "--since", str(since), "--until", str(now() + 1)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["alert"] is False and printed["trained_on_spans"] == {"3": [1]}
    assert json.loads((tmp_path / "out" / "result.json").read_text())["rows"] == printed["rows"] > 0

    assert main([*args, "--since", "2026-01-01T00:00:00Z", "--until", "2026-01-02T00:00:00"]) == EXIT_NO_TRAFFIC
    assert "no traffic: no logged request of model 'flights_delay'" in capsys.readouterr().err

    # The next window starts where this one ended, and drifts from it: distance now sent in kilometres.
    deadline = time.monotonic() + 5
    while now() < printed["window"]["until"] and time.monotonic() < deadline:
        time.sleep(0.05)
    served = months[1].drop(training.index)
    log_served(prefix, served.assign(distance=served["distance"] * 1.609344), version=3)
    page = tmp_path / "home" / "reports" / "flights" / "monitoring-2"  # under RUNWAY_HOME: the result links it
    next_window = [*args[:-1], str(page), "--previous", str(tmp_path / "out"), "--until", str(now() + 1)]
    assert main(next_window) == 0
    following = json.loads(capsys.readouterr().out)
    assert following["report"] == "reports/flights/monitoring-2/report.html" and "report" not in printed
    assert following["window"]["since"] == printed["window"]["until"] and following["rows"] == len(served)
    assert {m["feature"] for m in following["measurements"] if m["check"] == "drift" and m["failed"]} == {"distance"}
