"""``runway serve`` (serve a pipeline's pushed models) and ``runway query`` (ask the fleet, as an app would)."""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_components.cli.commands import pipeline_config
from pipeline_components.cli.output import say
from pipeline_components.client.client import (
    DEFAULT_GRPC_TARGET,
    DEFAULT_LABEL,
    DEFAULT_REST_URL,
    RetryPolicy,
    ServingClient,
)
from pipeline_components.config import fill_span
from pipeline_components.errors import DataError, RunwayError
from pipeline_components.fleet.local import bind_flags
from pipeline_components.settings import CHECKOUT, Settings

REST_URL_ENV = "RUNWAY_SERVING_REST_URL"
GRPC_TARGET_ENV = "RUNWAY_SERVING_GRPC_TARGET"


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    """Serve a pipeline's pushed models with tensorflow_model_server, or runway's TF Serving-compatible server."""
    config = pipeline_config(settings, args.pipeline)
    base = settings.model_store / config.serving.model_name
    if not base.is_dir():
        raise RunwayError(f"no pushed model under {base}; run `runway run {config.name}` first")
    real = shutil.which("tensorflow_model_server")
    binary = real if real and not args.runway_server else str(CHECKOUT / "scripts" / "runway-model-server")
    argv = [
        binary,
        f"--port={args.port}",
        f"--rest_api_port={args.rest_port}",
        f"--model_name={config.serving.model_name}",
        f"--model_base_path={base}",
        *bind_flags(binary, args.bind_address),
    ]
    say(
        f"serving {base} with {binary}: gRPC {args.bind_address}:{args.port}, REST http://{args.bind_address}:{args.rest_port}"
        f"/v1/models/{config.serving.model_name}"
    )
    os.execve(argv[0], argv, {**os.environ, **settings.as_env()})


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


def client_from_args(
    args: argparse.Namespace, *, rest_url: str | None, grpc_target: str | None, model: str, label: str | None
) -> ServingClient:
    """The client a command's ``--protocol``, ``--timeout`` and ``--attempts`` ask for."""
    return ServingClient(
        rest_url=rest_url,
        grpc_target=grpc_target,
        model=model,
        protocol=args.protocol,
        timeout_s=args.timeout,
        retry=RetryPolicy(attempts=max(1, args.attempts)),
        label=label,
    )


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
    config = pipeline_config(settings, pipeline)
    pattern = fill_span(config.data.span_pattern, span)
    files = sorted((settings.data_dir / config.data.folder).glob(pattern))
    if not files:
        raise DataError(
            f"span {span} of {config.name} is not prepared (no {settings.data_dir / config.data.folder / pattern}); "
            f"run `runway data prepare {config.name} --spans {span}`"
        )
    # Text where the served model takes text: the serving contract's dtypes when it declares them (an integer
    # code is categorical yet served as int64), else every categorical feature.
    declared = config.serving.contract.signatures.get("serving_default")
    if declared and declared.inputs:
        text = {name for name, dtype in declared.inputs.items() if dtype == "string"}
    else:
        text = set(config.features.categorical)
    features, labels = [], []
    with Path(files[0]).open(newline="") as handle:
        for _, row in zip(range(count), csv.DictReader(handle), strict=False):
            features.append(
                {name: row[name] if name in text else _parse_value(row[name]) for name in config.features.all}
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
    model = args.model or pipeline_config(settings, args.pipeline).serving.model_name
    labels: list[Any] = []
    if args.json is not None:
        rows = _load_json(args.json)
    else:
        rows, labels = rows_from_span(settings, args.pipeline, args.example_from_span, max(1, args.count))
    rest_url, grpc_target = endpoints(args, settings)
    label = None if (args.latest or args.version is not None) else (args.label or DEFAULT_LABEL)
    with client_from_args(args, rest_url=rest_url, grpc_target=grpc_target, model=model, label=label) as client:
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
