"""``runway runtime start | stop | status`` (the warm runtime service) and ``runway airflow ...``."""

from __future__ import annotations

import argparse
import json
import os

from pipeline_components.cli.bridge import warm_runtime_wanted
from pipeline_components.cli.output import say
from pipeline_components.orchestration import airflow_local, warm_client
from pipeline_components.settings import Settings


def cmd_runtime(args: argparse.Namespace, settings: Settings) -> None:
    paths = warm_client.ServicePaths.for_settings(settings)
    warm = warm_client.WarmSettings.from_env()
    if args.action == "start":
        env = {**os.environ, **settings.as_env()}
        status = warm_client.ensure_service(settings, warm=warm, env=env, python=str(settings.runtime_python), log=say)
        say(f"warm runtime: pid {status['pid']} on {paths.socket} (up to {status['max_parallel']} nodes at once)")
    elif args.action == "stop":
        answer = warm_client.stop_service(settings)
        say("warm runtime stopped" if answer is not None else "warm runtime was not running")
    else:
        running = warm_client.ping(paths, timeout=warm.ping_timeout)
        if running is None:
            say(f"warm runtime: not running (socket {paths.socket}); the first local node starts it")
            if not warm.enabled:
                say("RUNWAY_WARM_RUNTIME=off: local nodes run in cold processes")
            return
        say(json.dumps(running, indent=2, sort_keys=True))


def cmd_airflow(args: argparse.Namespace, settings: Settings) -> None:
    """Any airflow command with this project's settings; its API server binds loopback unless told otherwise."""
    airflow_local.ensure_database(settings)
    if args.airflow_args[:1] in (["standalone"], ["scheduler"]) and warm_runtime_wanted():
        warm_client.start_in_background(settings)  # the local stack starts the warm runtime with it
    if args.airflow_args == ["standalone"]:
        # runway's own supervisor: components started by path, and it exits (naming the cause) when one dies.
        from pipeline_components.orchestration.standalone import run_standalone

        run_standalone(settings, say=say)
        return
    os.execve(airflow_local.airflow_bin(), ["airflow", *args.airflow_args], airflow_local.airflow_env(settings))
