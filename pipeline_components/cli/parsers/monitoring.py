"""Parser of ``runway monitor``: the monitoring of served traffic, by hand (docs/monitoring.md)."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline_components.cli.commands.monitoring import cmd_monitor
from pipeline_components.cli.parsers import traffic
from pipeline_components.cli.parsers.command import add_command

MONITOR_DESCRIPTION = """\
    Run the pipeline's monitoring DAG (<name>_monitoring) once through Airflow and print its verdict: the
    traffic the fleet logged since the last window, compared with TFDV against the training statistics of the
    version that answered (skew) and against the previous window (drift), per feature, with the thresholds of
    the configuration's `monitoring` section (L-infinity for categorical features, Jensen-Shannon for numeric
    ones). A crossed threshold is an alert: the DAG emits the pipeline's Asset, which starts retraining where
    `schedule.on_new_span` is set, and its data gate judges the data on its own.

    With --replay MONTH, real flights of that month are first sent through the fleet's load balancer
    (`runway traffic replay`, spread evenly over the month), so that the window has traffic to judge.
    The pipeline must log its requests (serving.request_logging) on a fleet of runway's model server.

    Prints the window (requests per version), ALERT or not, the features closest to or over their threshold,
    and the report page (also linked from the watch_traffic task in Airflow and served under /runway).

    Examples:
      runway monitor flights --replay 1 --count 2000      # a month like the training data: no alert expected
      runway monitor flights --replay 7 --count 2000      # July against a winter model: seasonal skew
      runway monitor flights                              # whatever the fleet logged since the last window
"""


def add_parsers(sub: Any) -> None:
    """Register ``monitor`` on the ``runway`` subparsers."""
    monitor = add_command(
        sub,
        "monitor",
        help="judge the served traffic against the training data (skew, drift); retraining on an alert",
        description=MONITOR_DESCRIPTION,
        func=cmd_monitor,
    )
    monitor.add_argument("pipeline", help="the pipeline whose served model is watched (e.g. flights)")
    monitor.add_argument("--replay", type=int, metavar="MONTH", help="first replay this prepared span's real rows")
    monitor.add_argument("--rate", type=float, default=50.0, help="replay: requests per second (default 50)")
    monitor.add_argument("--count", type=int, default=2000, help="replay: requests in all (default 2000)")
    monitor.set_defaults(replay_arguments=replay_arguments)


def replay_arguments(pipeline: str, *, month: int, rate: float, count: int) -> argparse.Namespace:
    """``runway traffic replay PIPELINE --month M --rate R --count N``, parsed by its own parser (its defaults)."""
    parser = argparse.ArgumentParser(prog="runway")
    traffic.add_parsers(parser.add_subparsers(dest="command"))
    argv = ["traffic", "replay", pipeline, "--month", str(month), "--rate", str(rate), "--count", str(count)]
    return parser.parse_args(argv)
