"""``runway model inspect`` (a SavedModel, inspected in the runtime environment) and ``runway train manifests``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from pipeline_components.cli.bridge import run_module
from pipeline_components.cli.commands import pipeline_config
from pipeline_components.durable import atomic_write
from pipeline_components.errors import RunwayError
from pipeline_components.settings import Settings


def cmd_model_inspect(args: argparse.Namespace, settings: Settings) -> None:
    command = [str(Path(args.path).resolve())]
    if args.json:
        command.append("--json")
    if args.compare_with:
        command += ["--compare-with", str(Path(args.compare_with).resolve())]
    if args.html:
        command += ["--html", str(Path(args.html).resolve())]
    status, report = run_module(
        settings, "pipeline_components.components.model_inspector", *command, env={"TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    sys.stdout.write(report)
    if status == 1:  # --compare-with found breaking changes: the report above lists them
        raise RunwayError("breaking changes against the model given with --compare-with (listed above)")


def cmd_train_manifests(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline_components.training.k8s import render_manifests

    objects = render_manifests(
        pipeline_config(settings, args.pipeline),
        strategy=args.strategy,
        workers=args.workers,
        parameter_servers=args.parameter_servers,
        run=args.run,
        spec_path=args.spec,
        jobset=args.jobset,
    )
    if args.output is None:
        print(yaml.safe_dump_all(objects, sort_keys=False), end="")
        return
    out = Path(args.output)
    for obj in objects:
        path = out / f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        atomic_write(path, yaml.safe_dump(obj, sort_keys=False))
        print(path)
