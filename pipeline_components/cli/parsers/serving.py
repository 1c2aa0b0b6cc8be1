"""Parsers of ``runway serve``, ``runway query`` and ``runway fleet ...``."""

from __future__ import annotations

import textwrap
from typing import Any

from pipeline_components.cli.commands.fleet import (
    cmd_down,
    cmd_logging,
    cmd_promote,
    cmd_rollback,
    cmd_rollout,
    cmd_status,
    cmd_up,
)
from pipeline_components.cli.commands.serving import GRPC_TARGET_ENV, REST_URL_ENV, cmd_query, cmd_serve
from pipeline_components.cli.parsers.command import add_command
from pipeline_components.client.client import DEFAULT_GRPC_TARGET, DEFAULT_LABEL, DEFAULT_REST_URL, PROTOCOLS
from pipeline_components.fleet import DEFAULT_GRPC_PORT, DEFAULT_INSTANCES, DEFAULT_REST_PORT
from pipeline_components.fleet.local import DEFAULT_INSTANCE_BASE_PORT

QUERY_DESCRIPTION = textwrap.dedent(f"""\
    Ask the served model for predictions and print which version answered.

    Where: --rest-url / --grpc-target, else ${REST_URL_ENV} / ${GRPC_TARGET_ENV}, else the load balancer
    of the local fleet ($RUNWAY_HOME/fleet/fleet.json, written by `runway fleet up`), else
    {DEFAULT_REST_URL} and {DEFAULT_GRPC_TARGET} (e.g. `runway serve flights`).
    Which version: the label `{DEFAULT_LABEL}` unless --label, --version or --latest says otherwise.
    What: raw features as JSON (--json), or real rows of a prepared span (--example-from-span), through
    `serving_default` (predict), or the Classify API on `serving_classify` (--classify, tf.Examples).

    Transient failures (gRPC UNAVAILABLE, HTTP 502/503, connection refused or reset) are retried with
    backoff (--attempts); bad requests (400 / INVALID_ARGUMENT), unknown models or versions (404 / NOT_FOUND)
    and timeouts (--timeout) are not. Exit status 0 on success, 2 with the reason on stderr otherwise.

    Examples:
      runway query --example-from-span 12                       # a real December flight, label stable, REST
      runway query --example-from-span 12 --count 3 --protocol grpc
      runway query --version 1795299581 --json '{{"distance": 1617.0, "sched_dep_hour": 23, "sched_arr_hour": 4,
        "day_of_week": 6, "day": 1, "temp": 41.0, "dewp": 33.98, "humid": 75.88, "wind_speed": 4.6, "precip": 0.0,
        "pressure": 1016.8, "visib": 10.0, "plane_year": 2008, "plane_seats": 200, "weather_known": 1,
        "plane_known": 1, "carrier": "B6", "origin": "JFK", "dest": "PSE", "month_name": "dec"}}'
      runway query --label canary --json @rows.json --output json  # a file with one object or a list
      runway query --example-from-span 12 --classify --protocol grpc

    From Python (no TensorFlow needed): pipeline_components.client.ServingClient (docs/client.md).""")


FLEET_DESCRIPTION = textwrap.dedent("""\
    The serving fleet: N model servers on loopback behind nginx, and verified, fleet-wide rollouts.

      runway fleet up [--instances 3]       start the local fleet (nginx: REST 8501, gRPC 8500)
      runway fleet status                   what every instance serves, labels, processes, restarts
      runway fleet rollout flights          roll the newest pushed version out (if it is not stable yet)
      runway fleet promote flights 17953..  make version N stable through the same verified steps
      runway fleet rollback flights [N]     back to N, or to the newest version older than stable
      runway fleet down                     stop nginx and every instance
      runway fleet logging flights          apply the pipeline's serving.request_logging now (no rollout)

    A rollout loads the candidate next to stable on every instance, waits until every instance reports it
    AVAILABLE, labels it canary, verifies it over REST and gRPC with real examples against the exported
    model's own predictions, moves stable, and unloads old versions; any failure puts the previous stable
    back everywhere. Details: docs/fleet.md.""")


def add_parsers(sub: Any) -> None:
    """Register ``serve``, ``query`` and ``fleet`` on the ``runway`` subparsers."""
    serve = add_command(
        sub,
        "serve",
        help="serve a pipeline's pushed models (TF Serving's REST and gRPC APIs)",
        description="""\
            Serve <model store>/<serving.model_name> the way TensorFlow Serving does: tensorflow_model_server when
            it is on PATH, otherwise runway's TF Serving-compatible server (docs/serving.md). Then, for example:
              curl http://localhost:8501/v1/models/flights_delay
              curl -d '{"instances": [...]}' http://localhost:8501/v1/models/flights_delay:predict""",
    )
    serve.add_argument("pipeline")
    serve.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500)")
    serve.add_argument("--rest-port", type=int, default=8501, help="REST port (default 8501)")
    serve.add_argument("--runway-server", action="store_true", help="use runway's server even if TF Serving is here")
    serve.add_argument(
        "--bind-address",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)",
    )
    serve.set_defaults(func=cmd_serve)

    query = add_command(
        sub,
        "query",
        help="ask the serving fleet for predictions by label (default stable) or version, over REST or gRPC",
        description=QUERY_DESCRIPTION,
    )
    what = query.add_mutually_exclusive_group(required=True)
    what.add_argument("--json", metavar="JSON|@FILE", help="raw features: one object, or a list of objects")
    what.add_argument(
        "--example-from-span", type=int, metavar="N", help="send real rows of prepared span N (flights: the month)"
    )
    query.add_argument("--count", type=int, default=1, help="rows of the span to send as one batch (default 1)")
    query.add_argument(
        "--pipeline",
        default="flights",
        help="pipeline whose configuration names the model and features (default flights)",
    )
    query.add_argument("--model", help="served model name (default: the pipeline's serving.model_name)")
    which = query.add_mutually_exclusive_group()
    which.add_argument("--label", help=f"version label to ask (default {DEFAULT_LABEL})")
    which.add_argument("--version", type=int, help="version number to ask instead of a label")
    which.add_argument("--latest", action="store_true", help="no label, no version: the newest available version")
    query.add_argument("--protocol", choices=PROTOCOLS, default="rest", help="rest (default) or grpc")
    query.add_argument("--classify", action="store_true", help="use the Classify API (serving_classify, tf.Examples)")
    query.add_argument("--signature", help="signature name (default serving_default, or serving_classify)")
    query.add_argument("--rest-url", help="REST base URL, e.g. http://127.0.0.1:8501")
    query.add_argument("--grpc-target", help="gRPC address, e.g. 127.0.0.1:8500")
    query.add_argument("--timeout", type=float, default=5.0, help="seconds per attempt (default 5)")
    query.add_argument("--attempts", type=int, default=5, help="tries for transient failures, first included (5)")
    query.add_argument("--output", choices=("text", "json"), default="text", help="text (default) or json")
    query.set_defaults(func=cmd_query)

    fleet = add_command(
        sub,
        "fleet",
        help="the serving fleet: up/down/status, rollout, promote, rollback",
        description=FLEET_DESCRIPTION,
    )
    actions = fleet.add_subparsers(dest="fleet_command", required=True, metavar="ACTION")
    up = add_command(
        actions,
        "up",
        help="start N model servers behind nginx under a watchdog (on a running fleet: bring back what is down)",
    )
    up.add_argument("--instances", type=int, default=DEFAULT_INSTANCES, help="model servers (default 3)")
    up.add_argument("--rest-port", type=int, default=DEFAULT_REST_PORT, help="nginx's REST port (default 8501)")
    up.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT, help="nginx's gRPC port (default 8500)")
    up.add_argument(
        "--instance-base-port",
        type=int,
        default=DEFAULT_INSTANCE_BASE_PORT,
        help="instance i listens on gRPC BASE+10i and REST BASE+10i+1 (default 18500)",
    )
    up.add_argument("--server", help="server binary (default: tensorflow_model_server if on PATH, else runway's)")
    up.add_argument(
        "--bind-address",
        default="127.0.0.1",
        help="the address the model servers listen on (default 127.0.0.1: this machine only; nginx reaches them)",
    )
    up.set_defaults(func=cmd_up)
    down = add_command(actions, "down", help="stop the watchdog, nginx and every model server of the local fleet")
    down.set_defaults(func=cmd_down)
    status = add_command(actions, "status", help="processes, restarts, versions and labels of every instance")
    status.add_argument("--json", action="store_true", help="as JSON")
    status.set_defaults(func=cmd_status)
    for name, helptext, func in (
        ("rollout", "roll the newest pushed version (or --version N) out to the fleet", cmd_rollout),
        ("promote", "make VERSION stable through the verified rollout steps", cmd_promote),
        ("rollback", "go back to VERSION, or to the newest version older than stable", cmd_rollback),
    ):
        action = add_command(actions, name, help=helptext, description=helptext)
        action.add_argument("pipeline", help="pipeline name (its serving.model_name is the model)")
        if name == "promote":
            action.add_argument("version", type=int, help="version number (folder under the model store)")
        elif name == "rollback":
            action.add_argument("version", type=int, nargs="?", help="version to go back to (default: previous)")
        else:
            action.add_argument("--version", type=int, help="version to roll out (default: the newest pushed)")
        action.add_argument(
            "--no-verify", action="store_true", help="skip the REST/gRPC verification step (not recommended)"
        )
        action.set_defaults(func=func)
    logging = add_command(
        actions,
        "logging",
        help="apply the pipeline's serving.request_logging to the running fleet now, without a rollout",
        description="""\
            Give every instance the pipeline's serving.request_logging (sampling rate, folder) in a config reload:
            only the model's logging_config changes, the served versions and labels stay and keep answering.
            Without serving.request_logging in the configuration, logging is turned off. Rollouts apply it too.
            Files: <RUNWAY_HOME>/fleet/request_logs/<model>/<model>-*.tfrecord (docs/serving.md).""",
    )
    logging.add_argument("pipeline", help="pipeline name (its serving.model_name is the model)")
    logging.set_defaults(func=cmd_logging)
