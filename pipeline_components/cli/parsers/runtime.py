"""Parsers of ``runway runtime start | stop | status`` and ``runway airflow ...``."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline_components.cli.commands.runtime import cmd_airflow, cmd_runtime
from pipeline_components.cli.parsers.command import add_command


def add_parsers(sub: Any) -> None:
    """Register ``runtime`` and ``airflow`` on the ``runway`` subparsers."""
    rt = add_command(
        sub,
        "runtime",
        help="the warm runtime service that runs local nodes without cold imports: start, stop, status",
        description="""\
            The warm runtime (docs/warm-runtime.md) imports TFX, TensorFlow, TFDV, TFMA and Beam once and runs
            each local node in a forked child, saving the 10-20 s of imports a cold process pays per node. The
            first local node starts it on its own; `start` does it ahead of time (e.g. with the Airflow stack).
            It stops by itself after RUNWAY_WARM_IDLE_TIMEOUT idle seconds. RUNWAY_WARM_RUNTIME=off disables it.
            Docker and Kubernetes backends do not use it: they run one container or pod per node.

              runway runtime start     start it now (returns once TFX is loaded)
              runway runtime status    pid, preloaded modules, nodes running and waiting
              runway runtime stop      stop it (running nodes are killed)""",
    )
    rt.add_argument("action", choices=["start", "stop", "status"])
    rt.set_defaults(func=cmd_runtime)

    # Everything after `airflow` is Airflow's own command line, --help included.
    af = sub.add_parser(
        "airflow",
        help="any airflow command with this project's settings (the UI binds 127.0.0.1 unless AIRFLOW__API__HOST)",
        add_help=False,
    )
    af.add_argument("airflow_args", nargs=argparse.REMAINDER)
    af.set_defaults(func=cmd_airflow)
