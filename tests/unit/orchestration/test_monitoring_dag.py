"""The monitoring DAG's shape and its windows: each logged request judged once, windows filed where the plugin
serves them, retraining asked for through the pipeline's Asset only when a threshold was crossed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.config import PipelineConfig, load_pipeline_config
from pipeline_components.orchestration.dag_factory import spans_asset
from pipeline_components.orchestration.monitoring_dag import (
    WATCH_TASK,
    build_monitoring_dag,
    drift_in,
    window_arguments,
)
from pipeline_components.orchestration.monitoring_windows import judged_until
from pipeline_components.settings import Settings
from tests.conftest import CONFIGS


@pytest.fixture
def flights() -> PipelineConfig:
    return load_pipeline_config(CONFIGS / "flights.yaml").with_overrides(
        {"serving.request_logging": {"sampling_rate": 1.0}, "monitoring.schedule": "0 * * * *"}
    )


def _options(arguments: list[str]) -> dict[str, str]:
    return dict(zip(arguments[::2], arguments[1::2], strict=True))


def test_watch_then_short_circuit_then_the_asset(flights: PipelineConfig, isolated_settings: Settings) -> None:
    dag = build_monitoring_dag(config=flights, settings=isolated_settings)

    assert dag.dag_id == "flights_monitoring"
    assert dag.task_dict["check_alert"].upstream_task_ids == {WATCH_TASK}
    assert dag.task_dict["request_retraining"].upstream_task_ids == {"check_alert"}
    # The event the pipeline DAG is scheduled on when schedule.on_new_span is set: retraining follows.
    assert dag.task_dict["request_retraining"].outlets == [spans_asset(flights, isolated_settings)]
    assert dag.max_active_runs == 1
    assert dag.timetable.expression == "0 * * * *"  # monitoring.schedule


class _Ti:
    def __init__(self, result: Any) -> None:
        self.result = result

    def xcom_pull(self, task_ids: str) -> Any:
        assert task_ids == WATCH_TASK
        return self.result


def test_only_a_crossed_threshold_lets_retraining_be_requested() -> None:
    assert drift_in(_Ti({"alert": True, "evidence": ["skew of distance: ..."]})) is True
    assert drift_in(_Ti({"alert": False, "evidence": []})) is False
    assert drift_in(_Ti(None)) is False  # the watch was skipped (no traffic): nothing to request


def test_each_window_starts_where_the_last_one_ended(flights: PipelineConfig, isolated_settings: Settings) -> None:
    first = _options(window_arguments(flights, isolated_settings, until=1_800_000_000))

    assert first["--since"] == "0"  # every request logged so far
    assert "--previous" not in first
    assert first["--pipeline"] == "flights"
    prefix = isolated_settings.home / "fleet" / "request_logs" / "flights_delay" / "flights_delay"
    assert first["--log-prefix"] == str(prefix)  # where the fleet's instances log (fleet/request_logging.py)
    out = Path(first["--out"])
    assert out.parent == isolated_settings.home / "reports" / "flights"  # served by the plugin under /runway
    assert out.name == "monitoring-20270115T075958Z"  # 2 s before now: requests still in the writer's queue
    assert first["--until"] == "1799999998"

    # A window that found no traffic writes nothing: the next one covers its time too.
    assert _options(window_arguments(flights, isolated_settings, until=1_800_000_600))["--since"] == "0"

    out.mkdir(parents=True)
    (out / "result.json").write_text(json.dumps({"window": {"since": 0, "until": 1_800_000_000}}))
    second = _options(window_arguments(flights, isolated_settings, until=1_800_003_600))
    assert second["--since"] == "1800000000"
    assert second["--previous"] == str(out)  # its statistics are the drift baseline


def test_the_log_prefix_follows_the_configured_directory(flights: PipelineConfig, isolated_settings: Settings) -> None:
    moved = flights.with_overrides({"serving.request_logging": {"sampling_rate": 0.1, "directory": "/srv/logs"}})
    arguments = _options(window_arguments(moved, isolated_settings, until=1_800_000_000))
    assert arguments["--log-prefix"] == "/srv/logs/flights_delay/flights_delay"


def test_a_window_ends_before_the_oldest_file_the_servers_still_write(tmp_path: Path) -> None:
    prefix = tmp_path / "flights_delay" / "flights_delay"
    prefix.parent.mkdir()
    now = 1_800_000_000  # 2027-01-15T08:00:00Z
    assert judged_until(prefix, now) == now - 2  # nothing open: only the writer queue's margin
    (prefix.parent / "flights_delay-20270115T075500Z-host-11-000001.tfrecord").touch()  # closed: readable
    (prefix.parent / "flights_delay-20270115T075800Z-host-12-000002.tfrecord.partial").touch()  # still written
    (prefix.parent / "flights_delay-20270115T075900Z-host-13-000003.tfrecord.partial").touch()
    (prefix.parent / "other_model-20270115T070000Z-host-14-000004.tfrecord.partial").touch()  # not this model
    # Requests answered since 07:58:00 may sit in an open file: the window stops before them, the next takes them.
    assert judged_until(prefix, now) == now - 120 - 2
