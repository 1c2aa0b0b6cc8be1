"""``runway fleet up | down | status | rollout | promote | rollback`` and the fleet steps of ``runway run --serve``."""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable
from typing import Any

from pipeline_components.cli.commands import pipeline_config
from pipeline_components.config import PipelineConfig, fill_span
from pipeline_components.errors import RunwayError
from pipeline_components.fleet import STABLE_LABEL, FleetState, read_fleet_state
from pipeline_components.fleet.local import FleetSpec, LocalFleet, pid_alive
from pipeline_components.fleet.operations import (
    apply_request_logging,
    promote_or_rollback_target,
    roll_out,
    running_fleet,
)
from pipeline_components.fleet.rollout import NothingToRollOut
from pipeline_components.fleet.store import ModelStore
from pipeline_components.settings import Settings


def cmd_up(args: argparse.Namespace, settings: Settings) -> None:
    spec = FleetSpec(
        instances=args.instances,
        rest_port=args.rest_port,
        grpc_port=args.grpc_port,
        instance_base_port=args.instance_base_port,
        server=args.server,
        bind_address=args.bind_address,
    )
    state = LocalFleet(settings, say=print).up(spec)
    print(f"instances: {', '.join(f'{a.name} {a.rest_url} {a.grpc_target}' for a in state.instances)}")
    print(
        f"models.config: {state.model_config_file}; logs: {settings.home / 'fleet' / 'logs'}; stop: runway fleet down"
    )


def cmd_down(args: argparse.Namespace, settings: Settings) -> None:
    LocalFleet(settings, say=print).down()


def cmd_status(args: argparse.Namespace, settings: Settings) -> None:
    report = LocalFleet(settings).status()
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return
    if not report.get("running") and "instances" not in report:
        print("no fleet (start one with `runway fleet up`)")
        return
    nginx = report["nginx"]
    print(
        f"fleet {'running' if report['running'] else 'NOT running'}: REST {report['rest_url']}, "
        f"gRPC {report['grpc_target']} (nginx pid {nginx['pid']}, {'up' if nginx['alive'] else 'down'}"
        f"{_restarts(nginx)})"
    )
    watchdog = report.get("watchdog")
    if watchdog is not None:
        print(
            f"  watchdog: {'running' if watchdog['alive'] else 'NOT running (`runway fleet up` starts it)'}"
            f" (pid {watchdog['pid']})"
        )
    for name, model in report["models"].items():
        print(f"  {name}: versions {model['versions']}, labels {model['labels']}")
    for instance in report["instances"]:
        state = "up" if instance["alive"] else "DOWN"
        detail = instance.get("error") or "; ".join(
            f"{m} " + ", ".join(f"{v} {s}" for v, s in versions.items())
            for m, versions in instance.get("models", {}).items()
        )
        print(f"  {instance['name']} (pid {instance['pid']}, {state}{_restarts(instance)}): {detail}")
        if instance.get("rotation", "in") != "in":
            print(f"    {instance['rotation']} (it catches up with models.config when it answers again)")


def _restarts(process: dict[str, Any]) -> str:
    """``, restarts 2, last exit: killed by signal 9 (SIGKILL)`` (empty for a process nobody supervises)."""
    if "restarts" not in process:
        return ""
    text = f", restarts {process['restarts']}"
    if process["supervision"] in ("backoff", "held"):
        text += f", {process['supervision']}"
    if process.get("last_exit"):
        text += f", last exit: {process['last_exit']}"
    return text


def cmd_rollout(args: argparse.Namespace, settings: Settings) -> None:
    config = pipeline_config(settings, args.pipeline)
    store = ModelStore(settings.model_store)
    versions = store.versions_on_disk(config.serving.model_name)
    if not versions:
        raise RunwayError(f"nothing pushed for {config.serving.model_name} yet; run `runway run {config.name}`")
    version = args.version or versions[-1]
    for line in roll_out(settings, config, version, say=print, verify=not args.no_verify):
        print(line)


def cmd_promote(args: argparse.Namespace, settings: Settings) -> None:
    config = pipeline_config(settings, args.pipeline)
    for line in roll_out(settings, config, args.version, say=print, verify=not args.no_verify):
        print(line)


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> None:
    config = pipeline_config(settings, args.pipeline)
    target = promote_or_rollback_target(ModelStore(settings.model_store), config.serving.model_name, args.version)
    print(f"rolling {config.serving.model_name} back to version {target}")
    for line in roll_out(settings, config, target, say=print, verify=not args.no_verify):
        print(line)


def cmd_logging(args: argparse.Namespace, settings: Settings) -> None:
    config = pipeline_config(settings, args.pipeline)
    print(apply_request_logging(settings, config, say=print))


# -- `runway run --serve` ------------------------------------------------------------------------------------------


def example_row(settings: Settings, config: PipelineConfig) -> dict[str, Any]:
    """The first complete row of the newest prepared span, as raw features (for a version pushed without
    verification samples)."""
    files = sorted((settings.data_dir / config.data.folder).glob(fill_span(config.data.span_pattern)))
    for path in reversed(files):
        with open(path, newline="") as handle:
            for raw in csv.DictReader(handle):
                if all(raw.get(name) not in (None, "") for name in config.features.all):
                    return {
                        name: _json_value(raw[name], name in config.features.numeric) for name in config.features.all
                    }
    return {}


def _json_value(text: str, numeric: bool) -> Any:
    if not numeric:
        return text
    try:
        return int(text)
    except ValueError:
        return float(text)


def ensure_fleet(settings: Settings, say: Callable[[str], None]) -> FleetState:
    """Start the local fleet unless one is running (before the pipeline run, so its rollout has a fleet)."""
    state = read_fleet_state(settings.home)
    if state is not None and (state.kind != "local" or pid_alive(state.nginx_pid)):
        say(f"      serving fleet: running ({state.rest_url}, {state.grpc_target})")
        return state
    say("      serving fleet: starting 3 model servers behind nginx (`runway fleet down` stops them)")
    return LocalFleet(settings, say=lambda line: say(f"      {line}")).up(FleetSpec())


def ensure_served(settings: Settings, config: PipelineConfig, say: Callable[[str], None]) -> None:
    """After a run: make sure the newest pushed version is stable (the run's rollout did it, unless nothing was
    pushed in this run and the fleet never had it), then print how to query the fleet and how to stop it."""
    model = config.serving.model_name
    store = ModelStore(settings.model_store)
    versions = store.versions_on_disk(model)
    state = running_fleet(settings)
    if not versions:
        say(f"Served: nothing ({model} has no pushed version yet)")
        return
    if store.serving(model).stable is None:
        say(f"Serving: the fleet has no stable version of {model}; rolling out version {versions[-1]}")
        try:
            for line in roll_out(settings, config, versions[-1], say=lambda line: None):
                say(f"  {line}")
        except NothingToRollOut:
            pass
    serving = store.serving(model)
    if serving.stable is None:
        raise RunwayError(f"{model} is not served: see `runway fleet status` and the rollout's log")
    say(
        f"Served: version {serving.stable} of {model} is `{STABLE_LABEL}` on {len(state.instances)} instances "
        f"behind nginx (REST {state.rest_url}, gRPC {state.grpc_target})"
    )
    sample = store.verification_path(model, serving.stable)
    row = json.loads(sample.read_text())["rows"][0] if sample.is_file() else example_row(settings, config)
    body = json.dumps({"instances": [row]})
    say("  REST:  curl -s -X POST " + f"{state.rest_url}/v1/models/{model}/labels/{STABLE_LABEL}:predict -d '{body}'")
    say(f"  gRPC:  runway query --pipeline {config.name} --protocol grpc --json '{json.dumps(row)}'")
    say("  Stop the fleet: runway fleet down")
