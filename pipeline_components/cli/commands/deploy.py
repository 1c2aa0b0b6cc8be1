"""``runway deploy up|status|down|users|run``: the production topology on this machine (``deploy/``)."""

from __future__ import annotations

import argparse
import json
import time

from pipeline_components.cli.commands.pipelines import compile_pipelines, parse_overrides
from pipeline_components.cli.output import say
from pipeline_components.deploy.auth import ROLES, ensure_users, users_file
from pipeline_components.deploy.deployment import Deployment
from pipeline_components.deploy.health import deployment_status
from pipeline_components.deploy.smoke import AirflowApi, RunFailed
from pipeline_components.settings import Settings


def _deployment(args: argparse.Namespace, settings: Settings) -> Deployment:
    ports = {name: getattr(args, f"{name}_port", None) for name in ("ui", "rest", "grpc")}
    return Deployment.for_settings(settings, say=say, subnet=getattr(args, "subnet", None), **ports)


def cmd_up(args: argparse.Namespace, settings: Settings) -> None:
    deployment = _deployment(args, settings)
    deployment.up()
    _print_status(deployment_status(deployment))


def cmd_status(args: argparse.Namespace, settings: Settings) -> None:
    report = deployment_status(_deployment(args, settings))
    if args.json:
        print(json.dumps(report, indent=2))
        return
    _print_status(report)


def _print_status(report: dict[str, object]) -> None:
    services = report["services"]
    assert isinstance(services, list)
    say(f"  {'service':<22} {'host':<14} {'address':<13} {'port':<17} {'pid':>7}  {'health':<9} restarts")
    for row in services:
        pid = row["pid"] or "-"
        restarts = "-" if "restarts" not in row else str(row["restarts"])
        if row.get("restarts") and row.get("last_exit"):
            restarts += f" (last: {row['last_exit']})"
        say(
            f"  {row['service']:<22} {row['host']:<14} {row['address']:<13} {row['port']:<17} {pid:>7}  "
            f"{row['health']:<9} {restarts}"
        )


def cmd_down(args: argparse.Namespace, settings: Settings) -> None:
    deployment = _deployment(args, settings)
    stopped = deployment.down()
    say(f"stopped: {', '.join(stopped) or 'nothing was running'}; hosts removed; data kept in {deployment.root}")


def cmd_users(args: argparse.Namespace, settings: Settings) -> None:
    deployment = _deployment(args, settings)
    passwords = ensure_users(deployment.root)
    say(f"users of the deployment's Airflow ({users_file(deployment.root)}, readable by its owner only):")
    for user, role in ROLES.items():
        shown = passwords[user] if args.show_passwords else "(--show-passwords)"
        say(f"  {user:<9} role {role:<7} password {shown}")


def cmd_run(args: argparse.Namespace, settings: Settings) -> None:
    deployment = _deployment(args, settings)
    if deployment.postgres.server() is None:
        raise RunFailed("the deployment is not up: run `runway deploy up` first")
    started = time.monotonic()
    for result in compile_pipelines(deployment.settings, [args.pipeline], parse_overrides(args.set)):
        say(f"compiled {result['pipeline']}: {len(result['nodes'])} nodes (ML Metadata: {deployment.metadata_url})")
    passwords = ensure_users(deployment.root)
    api = AirflowApi.as_user(deployment.ui_url, username=args.user, password=passwords[args.user])
    dag_id = f"{args.pipeline}_pipeline"
    api.wait_dag(dag_id)
    run_id = api.trigger(dag_id)
    say(f"triggered {run_id} as {args.user} through {deployment.ui_url}")
    state, tasks = api.follow(dag_id, run_id, say=say, timeout_s=args.timeout)
    hosts = sorted({str(t.get("hostname")) for t in tasks if t.get("hostname")})
    say(f"run {run_id}: {state} in {time.monotonic() - started:.0f} s; tasks ran on {', '.join(hosts)}")
    if state != "success":
        failed = [f"{t['task_id']} on {t.get('hostname')}" for t in tasks if t.get("state") == "failed"]
        raise RunFailed(f"run {run_id} {state}: failed tasks {', '.join(failed)}; logs in {deployment.log_folder}")
