"""``runway model inspect``: the orchestrator-side command; the inspection itself runs in the runtime env."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from pipeline_components.errors import RuntimeEnvironmentError, RunwayError
from pipeline_components.settings import Settings


def cmd_model_inspect(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline_components.boundary import RUNTIME_ENV

    python = settings.runtime_python
    if not python.exists():
        raise RuntimeEnvironmentError(f"the pipeline runtime environment is missing ({python}); run `make setup`")
    command = [str(python), "-m", "pipeline_components.inspection", str(Path(args.path).resolve())]
    if args.json:
        command.append("--json")
    if args.compare_with:
        command += ["--compare-with", str(Path(args.compare_with).resolve())]
    if args.html:
        command += ["--html", str(Path(args.html).resolve())]
    env = {**os.environ, **settings.as_env(), **RUNTIME_ENV, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    sys.stdout.write(result.stdout)
    if result.returncode == 2:
        errors = [line[7:] for line in result.stderr.splitlines() if line.startswith("error: ")]
        raise RunwayError(errors[-1] if errors else result.stderr.strip()[-2000:] or "inspection failed")
    if result.returncode == 1:  # --compare-with found breaking changes: the report above lists them
        raise RunwayError("breaking changes against the model given with --compare-with (listed above)")
    if result.returncode != 0:
        raise RunwayError(result.stderr.strip()[-2000:] or f"inspection exited with {result.returncode}")


def add_model_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """``runway model inspect PATH [--json] [--compare-with PATH] [--html FILE]``."""
    model = sub.add_parser(
        "model",
        help="look inside SavedModels: signatures, inputs/outputs, variables, ops (docs/models.md)",
        description="Look inside SavedModels (docs/models.md).",
    )
    model_sub = model.add_subparsers(dest="model_command", required=True)
    inspect = model_sub.add_parser(
        "inspect",
        help="everything `saved_model_cli show --all` shows, plus variables, assets, size, ops, TF version",
        formatter_class=formatter,
        description=textwrap.dedent("""\
            Inspect a SavedModel without running it: tag-sets, each signature's method name, inputs and outputs
            (dtype, shape, tensor name) as `saved_model_cli show --all` prints them, plus what an operator needs:
            variable count and bytes, assets (and assets.extra: the warmup requests), size on disk, the ops the
            graph uses, the TensorFlow version that wrote it. The pipeline's ModelInspector node writes the same
            report for every candidate.

            PATH is a version folder (<store>/<model>/<version>), a model artifact (its Format-Serving/), or a
            model base path (<store>/<model>: the version served now, the `stable` one if the fleet labels it).

            Examples:
              runway model inspect var/models/flights_delay               the version served now, as Markdown
              runway model inspect var/models/flights_delay/1795299581 --json
              runway model inspect NEW --compare-with var/models/flights_delay
                  list the differences of the signatures; exit status 2 if any would break clients"""),
    )
    inspect.add_argument("path", help="SavedModel folder, model artifact folder, or model base path")
    inspect.add_argument("--json", action="store_true", help="print the full report as JSON")
    inspect.add_argument("--compare-with", metavar="PATH", help="the served model to check compatibility against")
    inspect.add_argument("--html", metavar="FILE", help="also write the report as an HTML page")
    inspect.set_defaults(func=cmd_model_inspect)
