"""Benchmark: one pipeline run several ways, in one benchmark run, on the same prepared data.

1. ``anchor``: TFX's own ``LocalDagRunner`` in one process, the pipeline built by the same ``create_pipeline``
   (the reference: what a TFX user gets without Airflow);
2. ``airflow-cold``: ``runway run`` through Airflow, every node a cold runtime process (``RUNWAY_WARM_RUNTIME=off``);
3. ``airflow-warm``: ``runway run`` through Airflow with the warm runtime (what ``runway run`` does by default:
   the service is started in the background as the command begins; independent branches run side by side);
4. ``airflow-warm-serial``: the same with ``--serial`` (one task at a time), to show what the parallel branches buy.

Each mode has its own RUNWAY_HOME (artifacts, ML Metadata, Airflow database, model store) and reads the same
prepared spans. Results: ``benchmarks/results/warm_runtime.{json,md}``: wall time per node and in total, ratios
to the anchor, and per-task overhead (Airflow task start -> the node's "running node" line). Run it with
``nice`` on a quiet machine; ``uptime`` is recorded before and after each mode.

    nice -n 10 .venv/bin/python benchmarks/warm_runtime.py --pipeline flights --set model.train_steps=500

The driver runs in the orchestrator environment; the anchor mode re-runs this file in the runtime environment
(``--anchor-child``), which is the only place TFX is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent
MODES = ("anchor", "airflow-cold", "airflow-warm", "airflow-warm-serial")
sys.path.insert(0, str(CHECKOUT))

# The timestamp Airflow puts in front of a task's log line (serial: "...T...Z"; executor: "... ...+00:00").
_TS = r"^(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d\.\d+)(?:Z|\+00:00)"
_NODE_RUNNING = re.compile(_TS + r".*runway\.node: running node (?P<node>\S+) of")
_SERVICE_ANSWERED = re.compile(_TS + r".*\[warm runtime\] node runs in a child of service pid")
_SLOT_WAIT = re.compile(
    r"\[warm runtime\] started after waiting (?P<seconds>[\d.]+) s for a free slot.* task_id=(?P<task>\S+)"
)


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


# --- anchor: TFX LocalDagRunner (runtime environment) ---------------------------------------------------------


def anchor_child(args: argparse.Namespace) -> None:
    """In the runtime env: build the pipeline with create_pipeline, run it with LocalDagRunner, time each node."""
    started = time.monotonic()
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner
    from tfx.orchestration.portable import launcher

    from pipeline_components.config import load_pipeline_config
    from pipeline_components.metadata.connection import connection_config
    from pipeline_components.pipeline import create_pipeline
    from pipeline_components.runtime.compile import DEFAULT_BEAM_ARGS
    from pipeline_components.settings import Settings

    imported = time.monotonic() - started
    # Time each node as LocalDagRunner launches it (its own log lines are silenced once Transform has run).
    node_seconds: dict[str, float] = {}
    launch = launcher.Launcher.launch

    def timed_launch(self: Any) -> Any:
        begin = time.monotonic()
        try:
            return launch(self)
        finally:
            node_seconds[self._pipeline_node.node_info.id] = round(time.monotonic() - begin, 1)

    launcher.Launcher.launch = timed_launch  # type: ignore[method-assign]
    # The same local-runner fix runway's nodes get (pipeline_components/runtime/node.py): without it TFX builds
    # an sdist of itself before every Beam node (5-20 s each), which would flatter the Airflow modes.
    from tfx.utils import dependency_utils

    dependency_utils.make_beam_dependency_flags = lambda beam_pipeline_args: list(beam_pipeline_args)
    settings = Settings.from_env()
    config = load_pipeline_config(settings.config_dir / f"{args.pipeline}.yaml")
    overrides = json.loads(args.overrides)
    config = config.with_overrides(overrides) if overrides else config
    pipeline = create_pipeline(
        config=config,
        data_root=settings.data_dir / config.data.folder,
        pipeline_root=settings.pipeline_root(config.name),
        metadata_connection_config=connection_config(settings, config.name),
        serving_model_dir=settings.model_store / config.serving.model_name,
        beam_pipeline_args=DEFAULT_BEAM_ARGS,
    )
    settings.metadata_dir.mkdir(parents=True, exist_ok=True)
    run_started = time.monotonic()
    LocalDagRunner().run(pipeline)
    run_seconds = time.monotonic() - run_started
    print(
        "ANCHOR_RESULT "
        + json.dumps(
            {"imports_seconds": round(imported, 1), "run_seconds": round(run_seconds, 1), "nodes": node_seconds},
            sort_keys=True,
        )
    )


def run_anchor(home: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    from pipeline_components.boundary import RUNTIME_ENV
    from pipeline_components.cli.commands.pipelines import parse_overrides
    from pipeline_components.settings import Settings

    settings = Settings.from_env(env)
    argv = [
        str(settings.runtime_python), __file__, "--anchor-child", "--pipeline", args.pipeline,
        "--overrides", json.dumps(parse_overrides(args.set)),
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(argv, env={**env, **RUNTIME_ENV}, capture_output=True, text=True)
    wall = time.monotonic() - started
    (home / "anchor.log").write_text(result.stdout + "\n" + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"LocalDagRunner failed ({result.returncode}); see {home / 'anchor.log'}")
    line = next(x for x in result.stdout.splitlines() if x.startswith("ANCHOR_RESULT "))
    data: dict[str, Any] = json.loads(line[len("ANCHOR_RESULT ") :])
    nodes = {node: {"seconds": seconds} for node, seconds in data["nodes"].items()}
    return {
        "command": shlex.join(argv),
        "wall_seconds": round(wall, 1),
        "run_seconds": round(wall, 1),  # what a TFX user waits for: imports included, once
        "local_dag_runner_seconds": data["run_seconds"],
        "imports_seconds": data["imports_seconds"],
        "nodes": nodes,
    }


# --- Airflow modes (orchestrator environment) ------------------------------------------------------------------


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp()


def parse_run_log(log: str) -> dict[str, Any]:
    """From the DAG run's full log: when each node logged ``running node``, how long each task waited for a free
    slot in the warm runtime (its deliberate limit, not overhead), and when the service first answered (before
    that, tasks wait for its one-time preload)."""
    running: dict[str, float] = {}
    slot_wait: dict[str, float] = {}
    answered: float | None = None
    for line in log.splitlines():
        if match := _NODE_RUNNING.search(line):
            running.setdefault(match.group("node"), _epoch(match.group("ts")))
        elif match := _SLOT_WAIT.search(line):
            slot_wait[match.group("task")] = float(match.group("seconds"))
        elif answered is None and (match := _SERVICE_ANSWERED.search(line)):
            answered = _epoch(match.group("ts"))
    return {"running": running, "slot_wait": slot_wait, "service_answered": answered}


def run_airflow(
    home: Path, args: argparse.Namespace, env: dict[str, str], *, warm: bool, serial: bool
) -> dict[str, Any]:
    env = {**env, "RUNWAY_WARM_RUNTIME": "on" if warm else "off"}
    runway = [sys.executable, "-m", "pipeline_components.cli"]
    sets = [x for item in args.set for x in ("--set", item)]
    # Not measured: compiling, and creating Airflow's database (a first `runway run` would do both).
    for prep in ([*runway, "compile", args.pipeline, *sets], [*runway, "airflow", "version"]):
        subprocess.run(prep, env=env, check=True, capture_output=True, text=True, cwd=CHECKOUT)
    argv = [*runway, "run", args.pipeline, *sets, *(["--serial"] if serial else [])]
    started = time.monotonic()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=CHECKOUT)
    wall = time.monotonic() - started
    (home / "runway-run.log").write_text(result.stdout + "\n" + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"runway run failed ({result.returncode}); see {home / 'runway-run.log'}")
    log_path = Path(re.findall(r"full log: (\S+)\)", result.stdout)[-1])
    summary_path = Path(re.findall(r"summary saved to (\S+)", result.stdout)[-1])
    tasks = json.loads(summary_path.read_text())["tasks"]
    parsed = parse_run_log(log_path.read_text())
    running, slot_wait = parsed["running"], parsed["slot_wait"]
    nodes: dict[str, dict[str, Any]] = {}
    spans: list[tuple[float, float, bool]] = []
    for task in tasks:
        if not task["start_date"] or not task["end_date"]:
            continue
        begin = datetime.fromisoformat(task["start_date"]).timestamp()
        end = datetime.fromisoformat(task["end_date"]).timestamp()
        entry: dict[str, Any] = {"seconds": round(end - begin, 1), "state": task["state"], "start": begin}
        if task["task_id"] in running:
            waited = slot_wait.get(task["task_id"], 0.0)
            entry["overhead_seconds"] = round(running[task["task_id"]] - begin - waited, 2)
            if waited:
                entry["slot_wait_seconds"] = waited
        nodes[task["task_id"]] = entry
        spans.append((begin, end, not task["task_id"].startswith("rollout.")))
    first = min(b for b, _, _ in spans)
    if warm:
        subprocess.run([*runway, "runtime", "stop"], env=env, capture_output=True, cwd=CHECKOUT)
    return {
        "command": shlex.join(["RUNWAY_WARM_RUNTIME=" + env["RUNWAY_WARM_RUNTIME"], "runway", *argv[3:]]),
        "wall_seconds": round(wall, 1),
        "run_seconds": round(max(e for _, e, _ in spans) - first, 1),
        "pipeline_seconds": round(max(e for _, e, tfx in spans if tfx) - first, 1),
        "nodes": nodes,
        "service_answered": parsed["service_answered"],
        "log": str(log_path),
    }


# --- report --------------------------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    modes = report["modes"]
    anchor = modes["anchor"]
    base = anchor["run_seconds"]
    lines = [
        f"# Warm runtime benchmark: {report['pipeline']}",
        "",
        f"{report['date']} on {report['machine']}; `{report['command']}`",
        "",
        f"Overrides for every mode alike: `{json.dumps(report['overrides'])}`. Each mode has its own "
        "RUNWAY_HOME and reads the same prepared spans.",
        "",
        "| mode | TFX nodes (s) | ratio | DAG run (s) | ratio | whole command (s) | ratio "
        "| median overhead (s) | max overhead (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, mode in modes.items():
        overheads = sorted(n["overhead_seconds"] for n in mode["nodes"].values() if "overhead_seconds" in n)
        median = f"{overheads[len(overheads) // 2]:.2f}" if overheads else "-"
        maximum = f"{overheads[-1]:.2f}" if overheads else "-"
        tfx = mode.get("pipeline_seconds", mode["run_seconds"])
        lines.append(
            f"| {name} | {tfx:.1f} | {tfx / base:.2f} | {mode['run_seconds']:.1f} | {mode['run_seconds'] / base:.2f} "
            f"| {mode['wall_seconds']:.1f} | {mode['wall_seconds'] / anchor['wall_seconds']:.2f} | {median} "
            f"| {maximum} |"
        )
    lines += [
        "",
        "*Anchor*: the whole `LocalDagRunner` process, its imports included once, as a TFX user waits for them "
        f"({anchor['imports_seconds']} s of imports, then {anchor['local_dag_runner_seconds']} s in "
        "`LocalDagRunner.run`). *TFX nodes*: for Airflow, from the first task's start to the end of the last TFX "
        "node (the nodes the anchor runs, plus the `check_params` task). *DAG run*: to the end of the last task, "
        "including the `rollout` task group, which has no counterpart in the anchor and skips itself when no "
        "serving fleet is up. *Whole command*: `runway run`, including Airflow's own start, the warm runtime's "
        "preload where it did not overlap, and the run summary. Ratios are to the anchor. *Overhead*: Airflow "
        "task start -> the node's `running node` line, less any wait for a free slot in the warm runtime (its "
        "parallelism limit); the first nodes wait for the service's one-time preload. "
        "Anchor per node: `Launcher.launch` of each node inside LocalDagRunner.",
        "",
        "## Per node (seconds; Airflow: task start to end, overhead in brackets)",
        "",
        "| node | " + " | ".join(modes) + " |",
        "|---|" + "---:|" * len(modes),
    ]
    airflow_first = [m for name, m in modes.items() if name != "anchor"] + [anchor]
    names = list(dict.fromkeys(n for mode in airflow_first for n in mode["nodes"]))
    for node in names:
        cells = []
        for mode in modes.values():
            entry = mode["nodes"].get(node)
            if entry is None:
                cells.append("-")
            elif "overhead_seconds" in entry:
                cells.append(f"{entry['seconds']:.1f} ({entry['overhead_seconds']:.1f})")
            else:
                cells.append(f"{entry['seconds']:.1f}")
        lines.append(f"| {node} | " + " | ".join(cells) + " |")
    lines += ["", "## Load", ""] + [f"- {k}: `{v}`" for k, v in report["uptime"].items()]
    lines += ["", "## Verdict", ""] + [f"- {v}" for v in report["verdict"]]
    return "\n".join(lines) + "\n"


def new_report(pipeline: str, script: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The report's header (what ran, where, when) with empty ``uptime`` and ``modes``."""
    return {
        "pipeline": pipeline,
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {os.cpu_count()} CPUs",
        "command": shlex.join(["python", script, *sys.argv[1:]]),
        "overrides": overrides,
        "uptime": {},
        "modes": {},
    }


def mode_home(root: Path, mode: str, data_dir: Path) -> tuple[Path, dict[str, str]]:
    """A fresh RUNWAY_HOME for ``mode`` (0755: PostgreSQL's account may have to enter it) reading the shared
    prepared data, and its environment."""
    home = root / mode
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True, mode=0o755)
    env = {**os.environ, "RUNWAY_HOME": str(home), "RUNWAY_DATA_DIR": str(data_dir)}
    for name in ("RUNWAY_PIPELINES_DIR", "RUNWAY_METADATA_DIR", "RUNWAY_IR_DIR", "RUNWAY_MODEL_STORE"):
        env.pop(name, None)
    return home, env


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pipeline", default="flights")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for all modes")
    p.add_argument("--root", default="/tmp/runway-warm-bench", help="one RUNWAY_HOME per mode under this folder")
    p.add_argument("--data-dir", help="prepared spans (default: this checkout's settings)")
    p.add_argument("--out", default=str(CHECKOUT / "benchmarks" / "results"))
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    p.add_argument("--anchor-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.anchor_child:
        anchor_child(args)
        return
    from pipeline_components.cli.commands.pipelines import parse_overrides
    from pipeline_components.settings import Settings

    modes = args.modes.split(",")
    if unknown := set(modes) - set(MODES):
        p.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    data_dir = Path(args.data_dir) if args.data_dir else Settings.from_env().data_dir
    root = Path(args.root)
    report = new_report(args.pipeline, "benchmarks/warm_runtime.py", parse_overrides(args.set))
    for mode in modes:
        home, env = mode_home(root, mode, data_dir)
        report["uptime"][f"before {mode}"] = _uptime()
        print(f"{datetime.now():%H:%M:%S} {mode} ...", flush=True)
        if mode == "anchor":
            report["modes"][mode] = run_anchor(home, args, env)
        else:
            warm, serial = mode != "airflow-cold", mode.endswith("-serial")
            report["modes"][mode] = run_airflow(home, args, env, warm=warm, serial=serial)
        print(f"{datetime.now():%H:%M:%S} {mode}: {report['modes'][mode]['run_seconds']} s", flush=True)
    report["uptime"]["after"] = _uptime()
    report["verdict"] = verdict(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "warm_runtime.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (out / "warm_runtime.md").write_text(markdown(report))
    print(markdown(report))


def verdict(report: dict[str, Any]) -> list[str]:
    modes = report["modes"]
    if not {"anchor", "airflow-warm"} <= set(modes):
        return ["not all modes ran"]
    anchor = modes["anchor"]["run_seconds"]
    warm = modes["airflow-warm"]
    out = []
    for label, key in (("TFX nodes", "pipeline_seconds"), ("whole DAG run", "run_seconds")):
        ratio = warm[key] / anchor
        out.append(
            f"warm Airflow run ({label}) / LocalDagRunner = {ratio:.2f} (target <= 0.9): "
            + ("met" if ratio <= 0.9 else "NOT met")
        )
    # Tasks that started before the service first answered waited for its one-time preload (reported apart);
    # a wait for a free slot (the service's parallelism limit) is left out of every task's overhead.
    ready = warm.get("service_answered") or 0.0
    early = [n for n in warm["nodes"].values() if "overhead_seconds" in n and n["start"] < ready]
    later = [n["overhead_seconds"] for n in warm["nodes"].values() if "overhead_seconds" in n and n["start"] >= ready]
    out.append(
        f"per-task overhead (task start -> node running, less any wait for a free slot), tasks started after the "
        f"service's preload: max {max(later, default=0):.2f} s over {len(later)} tasks (target <= 1.5 s): "
        + ("met" if later and max(later) <= 1.5 else "NOT met")
    )
    if early:
        out.append(
            f"{len(early)} tasks started while the service preloaded (in the background since the command began) "
            f"and waited for it: up to {max(n['overhead_seconds'] for n in early):.1f} s"
        )
    for name in ("airflow-warm-serial", "airflow-cold"):
        if name in modes:
            out.append(f"{name} DAG run / LocalDagRunner = {modes[name]['run_seconds'] / anchor:.2f}")
    return out


if __name__ == "__main__":
    main()
