"""``runway fleet ...``: the local serving fleet and its rollouts, for operators (and ``runway run --serve``)."""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Callable
from typing import Any

from pipeline_components.config import PipelineConfig, find_pipeline_configs, load_pipeline_config
from pipeline_components.errors import ConfigError, RunwayError
from pipeline_components.fleet import (
    DEFAULT_GRPC_PORT,
    DEFAULT_INSTANCES,
    DEFAULT_REST_PORT,
    STABLE_LABEL,
    FleetState,
    read_fleet_state,
)
from pipeline_components.fleet.local import DEFAULT_INSTANCE_BASE_PORT, FleetSpec, LocalFleet, pid_alive
from pipeline_components.fleet.rollout import NothingToRollOut, Rollout, RolloutOptions, promote_or_rollback_target
from pipeline_components.fleet.store import ModelStore
from pipeline_components.settings import Settings

DESCRIPTION = textwrap.dedent("""\
    The serving fleet: N model servers on loopback behind nginx, and verified, fleet-wide rollouts.

      runway fleet up [--instances 3]       start the local fleet (nginx: REST 8501, gRPC 8500)
      runway fleet status                   what every instance serves, labels, processes
      runway fleet rollout flights          roll the newest pushed version out (if it is not stable yet)
      runway fleet promote flights 17953..  make version N stable through the same verified steps
      runway fleet rollback flights [N]     back to N, or to the newest version older than stable
      runway fleet down                     stop nginx and every instance

    A rollout loads the candidate next to stable on every instance, waits until every instance reports it
    AVAILABLE, labels it canary, verifies it over REST and gRPC with real examples against the exported
    model's own predictions, moves stable, and unloads old versions; any failure puts the previous stable
    back everywhere. Details: docs/fleet.md.""")


def _config(settings: Settings, name: str) -> PipelineConfig:
    configs = find_pipeline_configs(settings.config_dir)
    if name not in configs:
        raise ConfigError(f"no pipeline '{name}' in {settings.config_dir}; known: {', '.join(sorted(configs))}")
    return load_pipeline_config(configs[name])


def options_for(config: PipelineConfig, *, verify: bool = True) -> RolloutOptions:
    serving = config.serving
    return RolloutOptions(
        retain_versions=serving.retain_versions,
        available_timeout_s=serving.rollout_timeout_s,
        tolerance=serving.verify_tolerance,
        latency_budget_ms=serving.verify_latency_ms,
        verify=verify,
    )


def running_fleet(settings: Settings) -> FleetState:
    state = read_fleet_state(settings.home)
    if state is None or (state.kind == "local" and not pid_alive(state.nginx_pid)):
        raise RunwayError("no serving fleet is running; start one with `runway fleet up`")
    return state


def roll_out(
    settings: Settings, config: PipelineConfig, version: int, *, say: Callable[[str], None], verify: bool = True
) -> list[str]:
    """A whole rollout of ``version`` (every step), then the notification that it is stable."""
    state = running_fleet(settings)
    store = ModelStore(settings.model_store)
    previous = store.serving(config.serving.model_name).stable
    rollout = Rollout(
        store=store,
        fleet=state,
        model=config.serving.model_name,
        home=settings.home,
        options=options_for(config, verify=verify),
        say=say,
    )
    try:
        lines = rollout.run(version)
    finally:
        rollout.close()
    if store.serving(config.serving.model_name).stable == version and previous != version:
        notify(config.serving.model_name, version, previous, state)
    return lines


def notify(model: str, version: int, previous: int | None, state: FleetState, context: Any = None) -> None:
    """Tell downstream consumers (webhook; Asset event inside Airflow): best effort, never raises."""
    try:
        from pipeline_components.client.notify import notify_stable
    except ImportError:  # the client package is optional for the fleet
        return
    notify_stable(
        model,
        version,
        previous_version=previous,
        rest_url=state.rest_url,
        grpc_target=state.grpc_target,
        run_id=(context or {}).get("run_id"),
        outlet_events=(context or {}).get("outlet_events"),
    )


def cmd_up(args: argparse.Namespace, settings: Settings) -> None:
    spec = FleetSpec(
        instances=args.instances,
        rest_port=args.rest_port,
        grpc_port=args.grpc_port,
        instance_base_port=args.instance_base_port,
        server=args.server,
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
        f"gRPC {report['grpc_target']} (nginx pid {nginx['pid']}, {'up' if nginx['alive'] else 'down'})"
    )
    for name, model in report["models"].items():
        print(f"  {name}: versions {model['versions']}, labels {model['labels']}")
    for instance in report["instances"]:
        state = "up" if instance["alive"] else "DOWN"
        detail = instance.get("error") or "; ".join(
            f"{m} " + ", ".join(f"{v} {s}" for v, s in versions.items())
            for m, versions in instance.get("models", {}).items()
        )
        print(f"  {instance['name']} (pid {instance['pid']}, {state}): {detail}")


def cmd_rollout(args: argparse.Namespace, settings: Settings) -> None:
    config = _config(settings, args.pipeline)
    store = ModelStore(settings.model_store)
    versions = store.versions_on_disk(config.serving.model_name)
    if not versions:
        raise RunwayError(f"nothing pushed for {config.serving.model_name} yet; run `runway run {config.name}`")
    version = args.version or versions[-1]
    for line in roll_out(settings, config, version, say=print, verify=not args.no_verify):
        print(line)


def cmd_promote(args: argparse.Namespace, settings: Settings) -> None:
    config = _config(settings, args.pipeline)
    for line in roll_out(settings, config, args.version, say=print, verify=not args.no_verify):
        print(line)


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> None:
    config = _config(settings, args.pipeline)
    target = promote_or_rollback_target(ModelStore(settings.model_store), config.serving.model_name, args.version)
    print(f"rolling {config.serving.model_name} back to version {target}")
    for line in roll_out(settings, config, target, say=print, verify=not args.no_verify):
        print(line)


def add_fleet_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Register ``runway fleet ...`` on the ``runway`` subparsers."""
    fleet = sub.add_parser(
        "fleet",
        help="the serving fleet: up/down/status, rollout, promote, rollback",
        formatter_class=formatter,
        description=DESCRIPTION,
    )
    actions = fleet.add_subparsers(dest="fleet_command", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="start N model servers behind nginx (a running fleet is left alone)")
    up.add_argument("--instances", type=int, default=DEFAULT_INSTANCES, help="model servers (default 3)")
    up.add_argument("--rest-port", type=int, default=DEFAULT_REST_PORT, help="nginx's REST port (default 8501)")
    up.add_argument("--grpc-port", type=int, default=DEFAULT_GRPC_PORT, help="nginx's gRPC port (default 8500)")
    up.add_argument(
        "--instance-base-port",
        type=int,
        default=DEFAULT_INSTANCE_BASE_PORT,
        help="instance i listens on gRPC BASE+10i and REST BASE+10i+1 (default 18500)",
    )
    up.add_argument("--server", help="server binary (default: tensorflow_model_server if on PATH, else runway's)")
    up.set_defaults(func=cmd_up)
    down = actions.add_parser("down", help="stop nginx and every model server of the local fleet")
    down.set_defaults(func=cmd_down)
    status = actions.add_parser("status", help="processes, versions and labels of every instance")
    status.add_argument("--json", action="store_true", help="as JSON")
    status.set_defaults(func=cmd_status)
    for name, helptext, func in (
        ("rollout", "roll the newest pushed version (or --version N) out to the fleet", cmd_rollout),
        ("promote", "make VERSION stable through the verified rollout steps", cmd_promote),
        ("rollback", "go back to VERSION, or to the newest version older than stable", cmd_rollback),
    ):
        action = actions.add_parser(name, help=helptext, description=helptext)
        action.add_argument("pipeline", help="pipeline name (its serving.model_name is the model)")
        if name == "promote":
            action.add_argument("version", type=int, help="version number (folder under the model store)")
        elif name == "rollback":
            action.add_argument("version", type=int, nargs="?", help="version to go back to (default: previous)")
        else:
            action.add_argument("--version", type=int, help="version to roll out (default: the newest pushed)")
        action.add_argument(
            "--no-verify", action="store_true", help="skip the REST/gRPC verification step (not recommended)"
        )
        action.set_defaults(func=func)


# -- `runway run --serve` -------------------------------------------------------------------------------------------


def example_row(settings: Settings, config: PipelineConfig) -> dict[str, Any]:
    """The first complete row of the newest prepared span, as raw features (for a version pushed without
    verification samples)."""
    import csv

    from pipeline_components.config import fill_span

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
