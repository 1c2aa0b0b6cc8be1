"""Parsers of ``runway deploy ...``."""

from __future__ import annotations

from typing import Any

from pipeline_components.cli.commands.deploy import cmd_down, cmd_run, cmd_status, cmd_up, cmd_users
from pipeline_components.cli.parsers.command import add_command
from pipeline_components.deploy.auth import ROLES

DESCRIPTION = """\
The production topology, for real, on this machine: each host a Linux network namespace with its own
address, the filesystem shared as NFS would be (needs root, iproute2 and nftables: `make setup`;
docs/deployment.md).

  control     PostgreSQL (Airflow's database and ML Metadata's), Redis (Celery's broker), Airflow's
              api-server, scheduler, dag-processor and triggerer (CeleryExecutor)
  worker-1/2  an Airflow Celery worker each (queues `default` and its own), running TFX nodes
  serving-1/3 a model server each (TF Serving's API), restarted by a watchdog when it dies
  lb          nginx in front of them (REST and gRPC; TF Serving's admin API refused)
  client      a downstream application's host (nothing of the deployment runs there)

The Airflow UI and REST API, and the load balancer, are published on 127.0.0.1 only.
Secrets (fernet key, JWT secret, API secret key, database and broker passwords, users' passwords)
are generated at the first `up` into files only their owner reads: nothing has a default.

  runway deploy up                  bring everything up (minutes the first time; twice is harmless)
  runway deploy status              every service: host, address, port, pid, health
  runway deploy users --show-passwords   who may log in: admin, operator, viewer
  runway deploy run flights         compile, trigger through the REST API, follow the run across hosts
  runway deploy down                stop everything and remove the hosts (data is kept)

Everything lives under $RUNWAY_HOME/deploy (its own pipelines, model store, Airflow home, logs)."""


def _ports(parser: Any) -> None:
    parser.add_argument("--ui-port", type=int, help="Airflow UI and REST API on 127.0.0.1 (default 8080)")
    parser.add_argument("--rest-port", type=int, help="the load balancer's REST on 127.0.0.1 (default 8501)")
    parser.add_argument("--grpc-port", type=int, help="the load balancer's gRPC on 127.0.0.1 (default 8500)")


def add_parsers(sub: Any) -> None:
    deploy = add_command(sub, "deploy", help="the production topology on network namespaces", description=DESCRIPTION)
    group = deploy.add_subparsers(dest="deploy_command", required=True, metavar="ACTION")
    up = add_command(
        group,
        "up",
        help="bring the deployment up (what runs is kept)",
        description="""\
        Make the hosts, generate missing secrets, start PostgreSQL and Redis, migrate Airflow's
        database, start Airflow's components and the Celery workers, the model servers and their
        load balancer, and publish the UI and the load balancer on 127.0.0.1. Progress is printed
        as each service comes up; what already runs is kept, what died is started again.""",
        func=cmd_up,
    )
    _ports(up)
    up.add_argument("--subnet", help="the hosts' IPv4 network (default: a /24 of 10.231.0.0/16 from RUNWAY_HOME)")
    status = add_command(group, "status", help="every service with its host, address, pid and health", func=cmd_status)
    status.add_argument("--json", action="store_true", help="the whole report as JSON")
    add_command(group, "down", help="stop every service and remove the hosts (data is kept)", func=cmd_down)
    users = add_command(group, "users", help="the Airflow users of the deployment and their roles", func=cmd_users)
    users.add_argument("--show-passwords", action="store_true", help="print the passwords too")
    run = add_command(
        group,
        "run",
        help="compile a pipeline, trigger it through the REST API and follow it across hosts",
        description="""\
        Compile PIPELINE with the deployment's settings (ML Metadata on its PostgreSQL), trigger a
        run through Airflow's REST API as --user (published port, token login), and print each task
        as it finishes with the host that ran it. Exit status 0 only if the run succeeded.""",
        func=cmd_run,
    )
    run.add_argument("pipeline", help="a pipeline of configs/ (flights, penguins, ...)")
    run.add_argument("--user", default="operator", choices=sorted(ROLES), help="who triggers (default operator)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a pipeline setting when compiling")
    run.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the run (default 1800)")
