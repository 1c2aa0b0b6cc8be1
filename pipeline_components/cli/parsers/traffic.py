"""Parser of ``runway traffic replay``: real traffic for the fleet, its monitoring and demos."""

from __future__ import annotations

from typing import Any

from pipeline_components.cli.commands.traffic import cmd_replay
from pipeline_components.cli.parsers.command import add_command
from pipeline_components.client.client import PROTOCOLS
from pipeline_components.client.replay import DEFAULT_CONCURRENCY

REPLAY_DESCRIPTION = """\
    Send the real rows of a prepared span (flights: the flights of one month of 2013) to the served model
    through the fleet's load balancer, one row per request, at a steady rate (open loop, as real traffic
    arrives), over REST or gRPC, with the features exactly as a client sends them (serving_default).
    It stops after --count requests, after --duration seconds, or at the end of the span, whichever comes
    first; prints progress every 2 s, then a summary table: requests, answered, failed, p50 / p99 / max
    latency, the rate reached, and the versions that answered (gRPC names the version in each answer).
    Exit status 2 when a request failed, the span is not prepared, no fleet runs, or the model is not served.

    Examples:
      runway traffic replay flights --month 12 --rate 20 --count 1000
      runway traffic replay flights --month 7 --rate 50 --duration 60 --protocol grpc --json
      runway traffic replay flights --month 12 --rate 5 --count 100 --version 1795325924

    With serving.request_logging set (docs/serving.md), the fleet logs the replayed requests, which the
    monitoring compares with the training data.
"""


def add_parsers(sub: Any) -> None:
    """Register ``traffic replay`` on the ``runway`` subparsers."""
    traffic = add_command(sub, "traffic", help="real traffic for the serving fleet: replay a month of real rows")
    actions = traffic.add_subparsers(dest="traffic_command", required=True, metavar="ACTION")
    replay = add_command(
        actions,
        "replay",
        help="replay the real rows of a prepared span through the load balancer at a rate",
        description=REPLAY_DESCRIPTION,
        func=cmd_replay,
    )
    replay.add_argument("pipeline", help="pipeline whose prepared spans, features and model are used (e.g. flights)")
    replay.add_argument(
        "--month", "--span", dest="span", type=int, required=True, help="the span to replay (flights: month 1-12)"
    )
    replay.add_argument("--rate", type=float, default=10.0, help="requests per second (default 10)")
    replay.add_argument(
        "--count",
        type=int,
        help="send this many rows, taken evenly across the span in time order (default: every row of the span)",
    )
    replay.add_argument("--duration", type=float, help="stop sending after this many seconds (default: no bound)")
    replay.add_argument("--protocol", choices=PROTOCOLS, default="rest", help="rest (default) or grpc")
    which = replay.add_mutually_exclusive_group()
    which.add_argument("--label", help="version label to ask (default stable)")
    which.add_argument("--version", type=int, help="version number to ask instead of a label")
    replay.add_argument("--model", help="served model name (default: the pipeline's serving.model_name)")
    replay.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"requests in flight at most (default {DEFAULT_CONCURRENCY}); a slower fleet gets them late",
    )
    replay.add_argument("--rest-url", help="REST base URL (default: the running fleet's load balancer)")
    replay.add_argument("--grpc-target", help="gRPC address (default: the running fleet's load balancer)")
    replay.add_argument("--timeout", type=float, default=5.0, help="seconds per attempt (default 5)")
    replay.add_argument("--attempts", type=int, default=3, help="tries for transient failures, first included (3)")
    replay.add_argument("--json", action="store_true", help="the summary as JSON on stdout (progress on stderr)")
