"""``runway traffic replay``: real rows of a prepared span sent through the fleet's load balancer at a rate."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pipeline_components.cli.commands import pipeline_config
from pipeline_components.cli.commands.serving import client_from_args, rows_from_span
from pipeline_components.client.client import DEFAULT_LABEL, ServingClient
from pipeline_components.client.replay import ReplayProgress, ReplayReport, replay
from pipeline_components.config import PipelineConfig, span_folder_regex
from pipeline_components.errors import (
    DataError,
    InvalidRequestError,
    ModelNotFoundError,
    RunwayError,
    ServingClientError,
)
from pipeline_components.fleet.operations import running_fleet
from pipeline_components.settings import Settings

ALL_ROWS = 10**9  # no --count: every row of the span (a month of flights is about 28,000)


def cmd_replay(args: argparse.Namespace, settings: Settings) -> None:
    config = pipeline_config(settings, args.pipeline)
    model = args.model or config.serving.model_name
    for name in ("rate", "count", "duration", "concurrency"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise RunwayError(f"--{name} must be positive, not {value}")
    try:
        rows, _ = rows_from_span(settings, args.pipeline, args.span, ALL_ROWS)
    except DataError as error:
        raise DataError(f"{error}. Prepared spans: {_prepared_spans(settings, config) or 'none'}") from None
    rows = spread(rows, args.count)
    if args.rest_url or args.grpc_target:
        rest_url, grpc_target = args.rest_url, args.grpc_target
    else:
        fleet = running_fleet(settings)  # RunwayError: no fleet running, start one with `runway fleet up`
        rest_url, grpc_target = fleet.rest_url, fleet.grpc_target
    label = None if args.version is not None else (args.label or DEFAULT_LABEL)
    with client_from_args(args, rest_url=rest_url, grpc_target=grpc_target, model=model, label=label) as client:
        asked = f"version {args.version}" if args.version is not None else f"label {label}"
        answering = _check_served(client, config.name, asked, version=args.version)
        where = rest_url if args.protocol == "rest" else grpc_target
        say = (lambda line: print(line, file=sys.stderr)) if args.json else print
        say(
            f"replaying {len(rows)} real rows of span {args.span} ({config.name}) to {model} {asked} "
            f"(version {answering} now) over {args.protocol} {where} at {args.rate:g} req/s"
            + (f" for at most {args.duration:g} s" if args.duration else "")
        )
        report = replay(
            client,
            rows,
            rate=args.rate,
            count=args.count,
            duration_s=args.duration,
            version=args.version,
            concurrency=args.concurrency,
            progress=lambda step: say(_progress_line(step)),
        )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(_summary(report))
    if report.failed:
        raise RunwayError(f"{report.failed} of {report.requests} requests failed (see the summary)")


def spread(rows: list[Any], count: int | None) -> list[Any]:
    """``count`` rows taken evenly across ``rows``, in their order (all of them without ``count``).

    A span's rows are in time order: 2,000 rows of a month replayed are then a month of traffic in miniature
    (every day, every hour), not its first two days, so that a monitoring window sees what the month was like.
    """
    if not count or count >= len(rows):
        return rows
    return [rows[i * len(rows) // count] for i in range(count)]


def _check_served(client: ServingClient, pipeline: str, asked: str, *, version: int | None) -> int:
    """The version that answers now; a clear error when the model, label or version is not served."""
    try:
        if version is not None:
            client.status(version=version)
            return version
        return client.resolve_version()
    except (ModelNotFoundError, InvalidRequestError) as error:  # unknown model or version; unknown label
        raise RunwayError(
            f"{client.model} ({asked}) is not served by the fleet: {error.message}. Roll a version out with "
            f"`runway fleet rollout {pipeline}` (or name the served model with --model)"
        ) from None
    except ServingClientError as error:
        raise RunwayError(
            f"the fleet did not answer for {client.model} ({asked}): {error}; check `runway fleet status`"
        ) from None


def _prepared_spans(settings: Settings, config: PipelineConfig) -> list[int]:
    folder_name = span_folder_regex(config.data.span_pattern)
    folder = settings.data_dir / config.data.folder
    found = (folder_name.match(path.name) for path in folder.iterdir()) if folder.is_dir() else iter(())
    return sorted(int(match["span"]) for match in found if match)


def _progress_line(step: ReplayProgress) -> str:
    return f"  {step.elapsed_s:6.1f} s  sent {step.sent}/{step.planned}  answered {step.answered}  failed {step.failed}"


def _summary(report: ReplayReport) -> str:
    asked = f"label {report.label}" if report.label else "the version asked"
    return f"Replay of {report.model} ({asked}, {report.protocol}, {report.rate:g} req/s asked):\n" + report.table()
