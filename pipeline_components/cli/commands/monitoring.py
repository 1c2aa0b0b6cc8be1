"""``runway monitor``: one run of ``<name>_monitoring`` (optionally after replaying a month of real traffic) and
the window's verdict as a table."""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline_components.cli.commands import pipeline_config
from pipeline_components.cli.output import say
from pipeline_components.config import PipelineConfig
from pipeline_components.errors import RunwayError
from pipeline_components.fleet.request_logging import request_log_prefix
from pipeline_components.orchestration import airflow_local, monitoring_dag_id_for
from pipeline_components.orchestration.monitoring_windows import PARTIAL_GLOB, QUEUE_MARGIN_S, last_window
from pipeline_components.settings import Settings

CLOSE_WAIT_S = 90.0  # the model servers close a file --runway_request_log_max_file_seconds (60) after opening it


def cmd_monitor(args: argparse.Namespace, settings: Settings) -> None:
    config = pipeline_config(settings, args.pipeline)
    logging = config.serving.request_logging
    if logging is None:
        raise RunwayError(
            f"{config.name} does not log the requests its model answers, so there is nothing to monitor: set "
            f"serving.request_logging.sampling_rate in {config.source} (docs/serving.md), run `runway compile "
            f"{config.name}`, and turn it on in the running fleet (`runway fleet logging {config.name}`)"
        )
    if not settings.ir_path(config.name).is_file():
        raise RunwayError(f"{config.name} is not compiled, so Airflow has no {monitoring_dag_id_for(config.name)}: "
                          f"run `runway compile {config.name}` first")  # fmt: skip
    if args.replay is not None:
        _replay(args, settings)
    prefix = request_log_prefix(home=settings.home, model=config.serving.model_name, directory=logging.directory)
    _wait_for_closed_logs(prefix)
    dag_id = monitoring_dag_id_for(config.name)
    say(f"running {dag_id} through Airflow ...")
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    result = airflow_local.dags_test(
        settings, dag_id, conf=None, log_path=settings.home / "logs" / f"{dag_id}-{stamp}.log", progress=say
    )
    if result.run_id is None or result.returncode != 0:
        raise RunwayError(f"the run of {dag_id} failed; see {result.log_path}")
    states = {task["task_id"]: task["state"] for task in airflow_local.task_states(settings, dag_id, result.run_id)}
    say(f"\nRun {result.run_id} of {dag_id}: " + ", ".join(f"{task} {state}" for task, state in states.items()))
    if states.get("watch_traffic") == "skipped":
        say(f"no logged traffic since the last window under {prefix}: replay some (`--replay MONTH`) and run again")
        return
    window = _newest_window(settings, config)
    print_window(json.loads((window / "result.json").read_text()), window, settings)


def _replay(args: argparse.Namespace, settings: Settings) -> None:
    """``runway traffic replay`` with this command's replay options (its own progress and summary)."""
    replay = args.replay_arguments(args.pipeline, month=args.replay, rate=args.rate, count=args.count)
    replay.func(replay, settings)


def _wait_for_closed_logs(prefix: Path) -> None:
    """Wait until the model servers have closed the request log files they were writing (only closed files are
    read), so that the window holds every request answered so far."""
    folder = prefix.parent
    time.sleep(QUEUE_MARGIN_S)  # the last requests answered reach their file (the servers' writer queue)
    deadline = time.monotonic() + CLOSE_WAIT_S
    if list(folder.glob(PARTIAL_GLOB)):
        say(f"waiting for the model servers to close their request log files in {folder} (<= {CLOSE_WAIT_S:.0f} s)")
    while list(folder.glob(PARTIAL_GLOB)):
        if time.monotonic() > deadline:
            say("  some files are still open: their requests go to the next window")
            return
        time.sleep(1.0)


def _newest_window(settings: Settings, config: PipelineConfig) -> Path:
    window = last_window(settings.home, config.name)
    if window is None:
        raise RunwayError(f"the monitoring run wrote no window under {settings.home / 'reports' / config.name}")
    return window


def print_window(result: dict[str, Any], window: Path, settings: Settings) -> None:
    """The window's verdict, the features that crossed (or came closest to) their threshold, and its files."""
    span = result["window"]
    versions = ", ".join(f"version {v}: {n} rows" for v, n in result.get("rows_per_version", {}).items())
    say(f"Window {span['since_utc']} .. {span['until_utc']}: {result['rows']} requests ({versions})")
    say("ALERT: retraining requested (the pipeline's Asset)" if result["alert"] else "No threshold crossed")
    # A threshold of 1.0 switches a feature off (no distance exceeds 1): those come last.
    measurements = sorted(
        result.get("measurements", []), key=lambda m: (m["threshold"] >= 1, -(m.get("observed") or 0) / m["threshold"])
    )
    say(f"  {'check':<6} {'feature':<16} {'comparator':<28} {'observed':>8} {'threshold':>9}  compared")
    for m in measurements[:12]:
        flag = "  CROSSED" if m.get("failed") else ""
        say(
            f"  {m['check']:<6} {m['feature']:<16} {m['comparator']:<28} {m.get('observed') or 0:>8.4f} "
            f"{m['threshold']:>9.4f}  {m['compared']}{flag}"
        )
    for note in result.get("notes", []):
        say(f"  note: {note}")
    say(f"Report: {window / 'report.html'} (in Airflow: /runway/{(window / 'report.html').relative_to(settings.home)})")
