"""``runway data prepare | schema | compile | run | params | report | predict``: a pipeline from data to a push."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import textwrap
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline_components import boundary
from pipeline_components.cli.bridge import runtime, warm_runtime_wanted
from pipeline_components.cli.commands import config_path, pipeline_config
from pipeline_components.cli.output import print_summary, say
from pipeline_components.config import find_pipeline_configs
from pipeline_components.durable import atomic_write
from pipeline_components.errors import ConfigError, RunwayError
from pipeline_components.orchestration import airflow_local, dag_id_for
from pipeline_components.orchestration.failures import failure_lines
from pipeline_components.settings import Settings


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
    """``["model.train_steps=200", "enable_cache=true"]`` -> typed values (YAML scalars).

    Raises:
        ConfigError: an item is not ``KEY=VALUE``.
    """
    import yaml

    overrides: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes KEY=VALUE (e.g. model.train_steps=200); got '{item}'")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def _needs_compile(settings: Settings, name: str, overrides: dict[str, Any]) -> bool:
    """No IR yet, the configuration or schema is newer, or it was compiled with other overrides or for another ML
    Metadata store."""
    ir = settings.ir_path(name)
    if not ir.is_file():
        return True
    try:
        origin = json.loads(ir.read_text()).get("runway", {})
    except json.JSONDecodeError:
        return True
    if origin.get("overrides", {}) != overrides:
        return True
    # Compiled for another ML Metadata store (RUNWAY_METADATA_URL changed; an IR from before it was recorded: SQLite).
    if origin.get("metadata", str(settings.metadata_path(name))) != settings.metadata_location(name):
        return True
    config = pipeline_config(settings, name)
    sources = [config_path(settings, name), config.schema_path]
    return any(path.stat().st_mtime > ir.stat().st_mtime for path in sources)


def _has_spans(settings: Settings, name: str) -> bool:
    return bool(boundary.available_spans(pipeline_config(settings, name, require_schema=False), settings.data_dir))


def cmd_run(args: argparse.Namespace, settings: Settings) -> None:
    name = args.pipeline
    parallelism = 1 if args.serial else args.parallel or airflow_local.default_parallelism()
    if warm_runtime_wanted():
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
        from pipeline_components.cli.commands.fleet import ensure_fleet

        ensure_fleet(settings, say)
    dag_id = dag_id_for(name)
    say(f"[4/4] running DAG {dag_id} through Airflow")
    conf = boundary.from_command_line(parse_overrides(args.param), pipeline_config(settings, name))
    if getattr(args, "history", False):
        from pipeline_components.cli.commands.history import take_in_history

        conf = take_in_history(settings, name, conf=conf, run=functools.partial(run_dag, parallelism=parallelism))
    if conf:
        say(f"      run parameters: {conf}")
    summary = run_dag(settings, name, conf=conf, parallelism=parallelism)
    print_summary(summary)
    say(f"\nsummary saved to {summary['saved_to']}")
    failed = [t["task_id"] for t in summary["tasks"] if t["state"] not in ("success", "skipped")]
    if summary["returncode"] != 0 or failed:
        first = [t["task_id"] for t in summary["tasks"] if t["state"] == "failed"] or failed
        after = f", {len(failed) - len(first)} more did not run" if len(failed) > len(first) else ""
        raise RunwayError(
            f"run {summary['run_id']} did not succeed (failed: {first}{after}); log: {summary['log_path']}"
        )
    if getattr(args, "serve", False):
        from pipeline_components.cli.commands.fleet import ensure_served

        say("")
        ensure_served(settings, pipeline_config(settings, name), say)


def run_dag(
    settings: Settings, name: str, *, conf: dict[str, Any], parallelism: int, progress: Callable[[str], None] = say
) -> dict[str, Any]:
    """One run of the pipeline's DAG through Airflow, with ``conf`` as its run parameters; its summary, saved.

    Raises:
        RunwayError: Airflow did not start the run.
    """
    dag_id = dag_id_for(name)
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    result = airflow_local.dags_test(
        settings,
        dag_id,
        conf=conf or None,
        log_path=settings.home / "logs" / f"{dag_id}-{stamp}.log",
        progress=progress,
        parallelism=parallelism,
    )
    if result.run_id is None:
        raise RunwayError(f"Airflow did not start a run of {dag_id}; see {result.log_path}")
    summary = collect_summary(settings, name, result.run_id)
    summary["skip_reasons"] = result.skip_reasons
    out = atomic_write(
        settings.home / "runs" / name / f"{stamp}.json", json.dumps(summary, indent=2, sort_keys=True) + "\n"
    )
    return {**summary, "returncode": result.returncode, "log_path": str(result.log_path), "saved_to": str(out)}


def collect_summary(settings: Settings, name: str, run_id: str) -> dict[str, Any]:
    """A run's task states (and why any failed) from Airflow, its ML Metadata report from the runtime."""
    dag_id = dag_id_for(name)
    summary: dict[str, Any] = {"dag_id": dag_id, "run_id": run_id, "pipeline": name}
    summary["tasks"] = airflow_local.task_states(settings, dag_id, run_id)
    summary["failures"] = failure_lines(settings, dag_id, run_id, summary["tasks"])
    with contextlib.suppress(RunwayError):  # which spans are on disk: what the run left out (print_summary)
        summary["spans_present"] = boundary.available_spans(
            pipeline_config(settings, name, require_schema=False), settings.data_dir
        )
    try:
        summary["metadata"] = runtime(settings, "report", str(config_path(settings, name)), "--run-id", run_id)
    except RunwayError as err:
        summary["metadata"] = {"error": str(err)}
    return summary


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
    config = pipeline_config(settings, args.pipeline)
    say(f"Run parameters of {config.name} (set with `runway run {config.name} --param NAME=VALUE`, or in the")
    say("Airflow trigger form); defaults come from the configuration file.\n")
    say(f"  {'name':<22} {'type':<18} {'default':<16} description")
    for parameter in boundary.PARAMETERS:
        kind = parameter.schema["type"]
        kind = "|".join(kind) if isinstance(kind, list) else kind
        default = json.dumps(parameter.default(config))
        say(f"  {parameter.name:<22} {kind:<18} {default:<16} {parameter.description}")
