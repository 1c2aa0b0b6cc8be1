"""``runway init``: a pipeline from your own CSV data (the work runs in the runtime environment)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pipeline_components.cli.bridge import runtime
from pipeline_components.cli.output import say
from pipeline_components.errors import ConfigError
from pipeline_components.settings import Settings


def cmd_init(args: argparse.Namespace, settings: Settings) -> None:
    if args.span_column and not args.csv:
        raise ConfigError("--span-column splits one CSV file (--csv); span folders are numbered by their names")
    source = Path(args.csv or args.spans_from_folders).expanduser().resolve()
    argv = ["init", args.name, "--source", str(source), "--label", args.label]
    argv += ["--span-column", args.span_column] if args.span_column else []
    argv += [item for column in args.exclude or () for item in ("--exclude", column)]
    argv += ["--positive", args.positive] if args.positive else []
    argv += ["--force"] if args.force else []
    say(f"reading {source} ...")
    print_scaffold(runtime(settings, *argv))


def print_scaffold(result: dict[str, Any]) -> None:
    """What ``runway init`` decided and wrote, and the command to run next."""
    name = result["pipeline"]
    say(f"\n{name}: {len(result['spans'])} span(s)")
    say(f"  {'span':<12} {'rows':>7} {'source':>7}  {'dropped':<22} label counts")
    for span in result["spans"]:
        dropped = ", ".join(f"{k} {v}" for k, v in span["dropped"].items() if v) or "-"
        say(f"  {span['span']:<12} {span['rows']:>7} {span['source_rows']:>7}  {dropped:<22} {span['label_counts']}")
    say("Columns:")
    for column in result["columns"]:
        say(f"  {column['role'].replace('_', ' '):<12} {column['name']:<24} {column['reason']}")
    label = result["label"]
    classes = f", classes {label['classes']}" if label["classes"] else ""
    say(f"Label: {label['column']} ({label['kind']}, values {label['values']}{classes}): {label['reason']}")
    inputs = ", ".join(f"{k} {v}" for k, v in result["contract"].items())
    say(f"Serving contract: serving_default takes {inputs}; answers probabilities")
    say("Wrote (review them, then commit them):")
    say(f"  {result['config']}   the configuration: every choice with its reason")
    say(f"  {result['schema']}   the TFDV schema, inferred from the spans")
    say(f"  {result['suite']}   a draft expectation suite ({result['expectations']} expectations)")
    spans = len(result["spans"])
    why = (
        f"takes in the {spans - 1} older span(s) first, then trains on all {result['window_spans']}"
        if spans > 1
        else "ingests the span and trains on it"
    )
    say(f"\nNext: {result['next']}   ({why}; {result['train_steps']} training steps)")
