"""``runway query``: ask the serving fleet (or one server) for predictions, by label or version, over REST or gRPC."""

from __future__ import annotations

import argparse
import csv
import json
import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_components.client.client import (
    DEFAULT_GRPC_TARGET,
    DEFAULT_LABEL,
    DEFAULT_REST_URL,
    PROTOCOLS,
    RetryPolicy,
    ServingClient,
)
from pipeline_components.errors import DataError, RunwayError
from pipeline_components.settings import Settings

REST_URL_ENV = "RUNWAY_SERVING_REST_URL"
GRPC_TARGET_ENV = "RUNWAY_SERVING_GRPC_TARGET"

DESCRIPTION = textwrap.dedent(f"""\
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


def add_query_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> argparse.ArgumentParser:
    """Register ``runway query`` on the ``runway`` subparsers."""
    query = sub.add_parser(
        "query",
        help="ask the serving fleet for predictions by label (default stable) or version, over REST or gRPC",
        formatter_class=formatter,
        description=DESCRIPTION,
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
    return query


def endpoints(
    args: argparse.Namespace, settings: Settings, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """(REST URL, gRPC target): flags, then environment variables, then the local fleet, then the defaults."""
    env = os.environ if environ is None else environ
    rest = args.rest_url or env.get(REST_URL_ENV)
    grpc = args.grpc_target or env.get(GRPC_TARGET_ENV)
    if not (rest and grpc):
        from pipeline_components.fleet import read_fleet_state

        state = read_fleet_state(settings.home)
        if state is not None:
            rest, grpc = rest or state.rest_url, grpc or state.grpc_target
    return rest or DEFAULT_REST_URL, grpc or DEFAULT_GRPC_TARGET


def _parse_value(text: str) -> Any:
    """A CSV cell as JSON would carry it: an int when it reads as one, else a float, else the string."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


def rows_from_span(settings: Settings, pipeline: str, span: int, count: int) -> tuple[list[dict[str, Any]], list[Any]]:
    """The first ``count`` rows of a prepared span: (raw features per row, label per row).

    Raises:
        DataError: the span is not prepared.
    """
    from pipeline_components.cli import config_path
    from pipeline_components.config import fill_span, load_pipeline_config

    config = load_pipeline_config(config_path(settings, pipeline))
    pattern = fill_span(config.data.span_pattern, span)
    files = sorted((settings.data_dir / config.data.folder).glob(pattern))
    if not files:
        raise DataError(
            f"span {span} of {config.name} is not prepared (no {settings.data_dir / config.data.folder / pattern}); "
            f"run `runway data prepare {config.name} --spans {span}`"
        )
    features, labels = [], []
    with Path(files[0]).open(newline="") as handle:
        for _, row in zip(range(count), csv.DictReader(handle), strict=False):
            features.append(
                {
                    name: (row[name] if name in config.features.categorical else _parse_value(row[name]))
                    for name in config.features.all
                }
            )
            labels.append(_parse_value(row[config.label.column]))
    return features, labels


def _load_json(text: str) -> list[dict[str, Any]]:
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise RunwayError(f"--json is not valid JSON: {error}") from None
    rows = [value] if isinstance(value, dict) else value
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        raise RunwayError("--json must be an object of features, or a non-empty list of such objects")
    return rows


def cmd_query(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline_components.cli import config_path
    from pipeline_components.config import load_pipeline_config

    model = args.model or load_pipeline_config(config_path(settings, args.pipeline)).serving.model_name
    labels: list[Any] = []
    if args.json is not None:
        rows = _load_json(args.json)
    else:
        rows, labels = rows_from_span(settings, args.pipeline, args.example_from_span, max(1, args.count))
    rest_url, grpc_target = endpoints(args, settings)
    label = None if (args.latest or args.version is not None) else (args.label or DEFAULT_LABEL)
    with ServingClient(
        rest_url=rest_url,
        grpc_target=grpc_target,
        model=model,
        protocol=args.protocol,
        timeout_s=args.timeout,
        retry=RetryPolicy(attempts=max(1, args.attempts)),
        label=label,
    ) as client:
        if args.classify:
            answer: Any = client.classify(
                rows, version=args.version, label=label, signature=args.signature or "serving_classify"
            )
            results: list[Any] = answer.results
        else:
            answer = client.predict(
                rows,
                version=args.version,
                label=label,
                signature=args.signature or "serving_default",
                resolve_version=True,
            )
            results = answer.predictions
        version = answer.version
        if version is None and args.version is None:  # REST classify: ask which version the label points at
            version = client.resolve_version(label=label)
    endpoint = rest_url if args.protocol == "rest" else grpc_target
    document = {
        "model": model,
        "version": version,
        "label": label,
        "protocol": args.protocol,
        "endpoint": endpoint,
        "signature": answer.signature,
        "attempts": answer.attempts,
        "latency_ms": round(answer.latency_s * 1000, 2),
        "results" if args.classify else "predictions": results,
    }
    if labels:
        document["actual"] = labels
    if args.output == "json":
        print(json.dumps(document, indent=2, default=list))
        return
    asked = f"label {label}" if label else ("version" if args.version is not None else "newest version")
    print(
        f"{model} version {version} answered ({asked}, {args.protocol} {endpoint}, "
        f"{document['latency_ms']} ms, {answer.attempts} attempt(s))"
    )
    for index, result in enumerate(results):
        actual = f"   actual: {labels[index]}" if labels else ""
        print(f"  [{index}] {json.dumps(result)}{actual}")
