"""Parsers of ``runway data prepare | schema | compile | run | params | report | predict``."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline_components.cli.commands.pipelines import (
    cmd_compile,
    cmd_data_prepare,
    cmd_params,
    cmd_predict,
    cmd_report,
    cmd_run,
    cmd_schema,
)
from pipeline_components.cli.parsers.command import add_command
from pipeline_components.orchestration import airflow_local

SET_HELP = "override a configuration value for this compile, e.g. --set model.train_steps=200 (repeatable)"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give at least 1 (or --serial)")
    return value


SET_HELP = "override a configuration value for this compile, e.g. --set model.train_steps=200 (repeatable)"


def add_parsers(sub: Any) -> None:
    """Register the pipeline commands on the ``runway`` subparsers."""
    data = add_command(sub, "data", help="prepare datasets into spans", description="Prepare datasets into spans.")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    prepare = add_command(
        data_sub,
        "prepare",
        help="write a pipeline's spans from its real dataset",
        description="""\
            Write a pipeline's spans from its real dataset, one folder per span, each with a CSV file and a
            _manifest.json (rows, rows dropped and why, label counts). A span is replaced atomically.

            Examples:
              runway data prepare flights                  all twelve months of 2013
              runway data prepare flights --spans 1,2,3    January to March only
              runway data prepare flights --spans 4        "April arrives": the next run ingests it
              runway data prepare penguins                 study years 2007-2009""",
    )
    prepare.add_argument("pipeline", help="pipeline name (configs/NAME.yaml) or a configuration file")
    prepare.add_argument("--spans", help="comma-separated span numbers (months for flights, years for penguins)")
    prepare.add_argument("--sample-fraction", type=float, help="keep this fraction of each span (fast tests)")
    prepare.set_defaults(func=cmd_data_prepare)

    schema = add_command(
        sub,
        "schema",
        help="regenerate a pipeline's committed TFDV schema, on purpose",
        description="Infer the schema from every prepared span and overwrite the committed schema file.\n"
        "The pipeline itself never re-infers it (ImportSchemaGen). Review `git diff` before committing.",
    )
    schema.add_argument("pipeline")
    schema.set_defaults(func=cmd_schema)

    comp = add_command(
        sub,
        "compile",
        help="compile pipelines to TFX IR (what the DAGs read)",
        description="Compile pipeline configurations to TFX IR JSON under $RUNWAY_IR_DIR (default var/ir).\n"
        "The Airflow DAG of each pipeline is built from this file.",
    )
    comp.add_argument("pipelines", nargs="*", help="pipeline names (default: every configs/*.yaml)")
    comp.add_argument("--set", action="append", metavar="KEY=VALUE", help=SET_HELP)
    comp.set_defaults(func=cmd_compile)

    run = add_command(
        sub,
        "run",
        help="run a pipeline end to end through Airflow and print a summary",
        description="""\
            Run a pipeline's DAG through Airflow 3 and print each task as it starts and ends, then each task's
            state and duration, the evaluation metrics against the baseline, and the pushed version.

            The run is a real DAG run in Airflow's database (`airflow dags test --use-executor`): the
            LocalExecutor runs ready tasks side by side (independent branches such as the three data validators,
            or the Evaluator, InfraValidator, ModelInspector and TFLiteVariants after the Trainer), reporting to
            Airflow's Execution API, which runs on a loopback port for the length of the run. TFX nodes run in
            the warm runtime (`runway runtime status`), started in the background as the command begins.

            Prepares the data if no span exists and recompiles the IR if the configuration or schema changed.

            Before any node, `check_params` checks the run parameters, then the configuration against the span
            the run ingests (a missing feature, a new column, a label of text where indices are expected, a
            schema or suite that does not fit): a mistake fails there in seconds, naming the column or key. Such
            failures, and refused gates, are never retried; the summary gives each failed task's reason and where
            its full report is.

            A run ingests one span (the newest, or --param span=N) and trains on the newest data.window_spans
            spans ingested so far. On a first run, --history takes the older spans in first.""",
    )
    run.add_argument("pipeline", help="a pipeline configuration under configs/ (flights, penguins)")
    run.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="a run parameter for this run only, no recompile (e.g. --param train_steps=200 --param dry_run=true); "
        "`runway params PIPELINE` lists them",
    )
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help=SET_HELP)
    run.add_argument("--recompile", action="store_true", help="compile even if the IR looks up to date")
    run.add_argument(
        "--history",
        action="store_true",
        help="first take in, oldest first, every older span on disk that no run has ingested yet (one "
        "ingest-only run each: ingested and validated, nothing trained), so that this run trains on the whole "
        "window; the summary says which spans it used and which it left",
    )
    width = run.add_mutually_exclusive_group()
    width.add_argument(
        "--parallel",
        type=_positive_int,
        metavar="N",
        help="tasks at once (default: twice the CPUs, here "
        f"{airflow_local.default_parallelism()}); nodes beyond the warm runtime's limit wait inside it",
    )
    width.add_argument(
        "--serial",
        action="store_true",
        help="one task at a time, inside the `airflow dags test` process (Airflow's debugging mode: one "
        "readable log, no Execution API)",
    )
    run.add_argument(
        "--serve",
        action="store_true",
        help="start the local serving fleet first (unless running), so the run's rollout makes the new version "
        "stable on it; end with ready-to-paste REST and gRPC queries (what `make run` does)",
    )
    run.set_defaults(func=cmd_run)

    prm = add_command(sub, "params", help="list a pipeline's run parameters: type, default, description")
    prm.add_argument("pipeline")
    prm.set_defaults(func=cmd_params)

    report = add_command(sub, "report", help="what a run did: task states, metrics, baseline, push, lineage")
    report.add_argument("pipeline")
    report.add_argument("--run-id", help="Airflow run id (default: the latest `runway run`)")
    report.add_argument("--json", action="store_true", help="print everything as JSON, lineage included")
    report.set_defaults(func=cmd_report)

    predict = add_command(sub, "predict", help="query the pushed model with real rows of the newest span")
    predict.add_argument("pipeline")
    predict.add_argument("--count", type=int, default=5)
    predict.add_argument("--version", help="model version (default: the newest in the model store)")
    predict.set_defaults(func=cmd_predict)
