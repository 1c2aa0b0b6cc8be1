"""Benchmark: one pipeline run three ways, side by side in one benchmark run, on the same prepared data.

1. ``anchor``: TFX's own ``LocalDagRunner`` in one process (``benchmarks/warm_runtime.py``'s anchor: the same
   ``create_pipeline``), what a TFX user gets without Airflow;
2. ``runway-run``: ``runway run`` on this machine (embedded Airflow, SQLite, LocalExecutor, one warm runtime);
3. ``deploy``: ``runway deploy``'s topology (PostgreSQL, Redis, CeleryExecutor, two worker hosts with a warm runtime
   each, three serving hosts behind a load balancer), the run triggered through the REST API as a user would.

For ``deploy``, bringing the topology up and compiling are not measured (a team's deployment is already running),
and two runs are made: the first pays each worker host's warm-runtime preload, the second is what a running
deployment does (the figures compared). Measured are: trigger to the end of the last TFX node and of the last
task (the rollout included), the Celery path's dispatch overhead per task (Airflow's ``queued_when`` to the task's
``start_date``: broker, worker pick-up, the task process's start), and the rollout to the three serving hosts
(first ``rollout.*`` task's start to the last one's end).

    nice -n 10 .venv/bin/python benchmarks/deployment.py --pipeline flights --set model.train_steps=500

Results: ``benchmarks/results/deployment.{json,md,svg}``. Needs root (network namespaces), like ``runway deploy``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))
sys.path.insert(0, str(CHECKOUT / "benchmarks"))

import warm_runtime  # noqa: E402  (benchmarks/ is not a package)

MODES = ("anchor", "runway-run", "deploy")


def _stamp(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def run_deploy(home: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    from pipeline_components.cli.commands.pipelines import compile_pipelines, parse_overrides
    from pipeline_components.deploy.auth import ensure_users
    from pipeline_components.deploy.deployment import Deployment
    from pipeline_components.deploy.smoke import AirflowApi
    from pipeline_components.ports import free_ports
    from pipeline_components.settings import Settings

    settings = Settings.from_env(env)
    ui, rest, grpc = free_ports(3)
    deployment = Deployment(
        settings, say=lambda line: print(f"  {line}", flush=True), ui_port=ui, rest_port=rest, grpc_port=grpc
    )
    started = time.monotonic()
    deployment.up()
    up_seconds = time.monotonic() - started
    try:
        compile_pipelines(deployment.settings, [args.pipeline], parse_overrides(args.set))
        api = AirflowApi.as_user(
            deployment.ui_url, username="operator", password=ensure_users(deployment.root)["operator"]
        )
        dag_id = f"{args.pipeline}_pipeline"
        api.wait_dag(dag_id)
        runs = []
        for attempt in range(2):  # the first pays the workers' warm runtimes' preload; the second is measured
            triggered = time.time()
            # An unpaused scheduled DAG starts a run for its latest interval at once (catchup off): that run is
            # the first one then, so that the measured run has the deployment to itself.
            scheduled = [] if attempt else api.call("GET", f"/api/v2/dags/{dag_id}/dagRuns")[1]["dag_runs"]
            # The measured run trains on the span the first one served: `repush` ships it if its gates bless it,
            # so that the rollout to the three serving hosts is timed too.
            run_id = scheduled[0]["dag_run_id"] if scheduled else api.trigger(dag_id, {"repush": bool(attempt)})
            state, tasks = api.follow(dag_id, run_id, say=lambda line: print(line, flush=True), timeout_s=7200)
            if state != "success":
                raise SystemExit(f"the deployment's run {run_id} {state}; logs in {deployment.log_folder}")
            runs.append(summarize(tasks, triggered=triggered, up_seconds=up_seconds))
    finally:
        deployment.down()
    second, first = runs[1], runs[0]
    second["first_run"] = {key: first[key] for key in ("run_seconds", "pipeline_seconds", "rollout_seconds")}
    return second


def summarize(tasks: list[dict[str, Any]], *, triggered: float, up_seconds: float) -> dict[str, Any]:
    """The deployment run's figures from its task instances (Airflow's REST API)."""
    nodes: dict[str, dict[str, Any]] = {}
    dispatch: list[float] = []
    ends, tfx_ends, rollout = [], [], []
    for task in tasks:
        begin, end, queued = (
            _stamp(task.get("start_date")),
            _stamp(task.get("end_date")),
            _stamp(task.get("queued_when")),
        )
        if begin is None or end is None:
            continue
        entry: dict[str, Any] = {"seconds": round(end - begin, 1), "host": task.get("hostname"), "start": begin}
        if queued is not None:
            entry["dispatch_seconds"] = round(begin - queued, 2)
            dispatch.append(begin - queued)
        nodes[task["task_id"]] = entry
        ends.append(end)
        if task["task_id"].startswith("rollout."):
            if task.get("state") == "success":  # skipped ones (nothing blessed) are no rollout
                rollout.append((begin, end))
        else:
            tfx_ends.append(end)
    return {
        "up_seconds": round(up_seconds, 1),
        "run_seconds": round(max(ends) - triggered, 1),
        "pipeline_seconds": round(max(tfx_ends) - triggered, 1),
        "rollout_seconds": round(max(e for _, e in rollout) - min(b for b, _ in rollout), 1) if rollout else None,
        "dispatch_median_seconds": round(statistics.median(dispatch), 2) if dispatch else None,
        "dispatch_max_seconds": round(max(dispatch), 2) if dispatch else None,
        "hosts": sorted({str(n["host"]) for n in nodes.values() if n.get("host")}),
        "nodes": nodes,
    }


def markdown(report: dict[str, Any]) -> str:
    modes = report["modes"]
    anchor = modes.get("anchor", {}).get("run_seconds")
    lines = [
        f"# Deployment benchmark: {report['pipeline']} ({report['date']}, {report['machine']})",
        "",
        f"Command: `{report['command']}`",
        "",
        "| mode | what | trigger to last TFX node (s) | to last task (s) | / LocalDagRunner |",
        "|---|---|---|---|---|",
    ]
    what = {
        "anchor": "TFX LocalDagRunner, one process (imports included)",
        "runway-run": "`runway run`: embedded Airflow, LocalExecutor, one warm runtime",
        "deploy": "`runway deploy`: CeleryExecutor, 2 worker hosts, 3 serving hosts, REST trigger",
    }
    for name, mode in modes.items():
        total = mode["run_seconds"]
        tfx = mode.get("pipeline_seconds", total)
        ratio = f"{tfx / anchor:.2f}" if anchor else "-"
        lines.append(f"| {name} | {what[name]} | {tfx} | {total} | {ratio} |")
    if "deploy" in modes:
        deploy = modes["deploy"]
        lines += [
            "",
            f"Deployment: up in {deploy['up_seconds']} s (not counted); the table's figures are its second run (the "
            f"first, which pays the worker hosts' warm-runtime preload: {deploy['first_run']['pipeline_seconds']} s to "
            f"the last TFX node, {deploy['first_run']['run_seconds']} s to the last task); "
            f"tasks ran on {', '.join(deploy['hosts'])}; "
            f"Celery dispatch per task (queued to started): median {deploy['dispatch_median_seconds']} s, "
            f"max {deploy['dispatch_max_seconds']} s; rollout to 3 hosts {deploy['rollout_seconds']} s.",
            "",
            "![time per mode](deployment.svg)",
        ]
    lines += [
        "",
        "Load: " + "; ".join(f"{k}: {v.split('load average:')[-1].strip()}" for k, v in report["uptime"].items()),
    ]
    lines += ["", *(f"- {line}" for line in report["verdict"])]
    return "\n".join(lines) + "\n"


def verdict(report: dict[str, Any]) -> list[str]:
    modes = report["modes"]
    if "anchor" not in modes or "deploy" not in modes:
        return []
    ratio = modes["deploy"]["pipeline_seconds"] / modes["anchor"]["run_seconds"]
    met = "met" if ratio <= 0.75 else "NOT met"
    return [f"deployment, trigger to last TFX node / LocalDagRunner process = {ratio:.2f} (goal <= 0.75): {met}"]


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["modes"])
    values = [report["modes"][n].get("pipeline_seconds", report["modes"][n]["run_seconds"]) for n in names]
    figure, axis = plt.subplots(figsize=(6.5, 2.6))
    axis.barh(names, values, color=["#888888", "#4c72b0", "#55a868"][: len(names)])
    for index, value in enumerate(values):
        axis.text(value, index, f" {value:.0f} s", va="center")
    axis.set_xlabel("seconds to the last TFX node")
    axis.invert_yaxis()
    figure.tight_layout()
    figure.savefig(path, format="svg")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pipeline", default="flights")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for all modes")
    p.add_argument("--root", default="/tmp/runway-deploy-bench", help="one RUNWAY_HOME per mode under this folder")
    p.add_argument("--data-dir", help="prepared spans (default: this checkout's settings)")
    p.add_argument("--out", default=str(CHECKOUT / "benchmarks" / "results"))
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    args = p.parse_args()
    from pipeline_components.cli.commands.pipelines import parse_overrides
    from pipeline_components.settings import Settings

    modes = args.modes.split(",")
    if unknown := set(modes) - set(MODES):
        p.error(f"unknown modes {sorted(unknown)}; choose from {', '.join(MODES)}")
    data_dir = Path(args.data_dir) if args.data_dir else Settings.from_env().data_dir
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # PostgreSQL's account enters it
    report = warm_runtime.new_report(args.pipeline, "benchmarks/deployment.py", parse_overrides(args.set))
    for mode in modes:
        home, env = warm_runtime.mode_home(root, mode, data_dir)
        report["uptime"][f"before {mode}"] = warm_runtime._uptime()
        print(f"{datetime.now():%H:%M:%S} {mode} ...", flush=True)
        if mode == "anchor":
            report["modes"][mode] = warm_runtime.run_anchor(home, args, env)
        elif mode == "runway-run":
            report["modes"][mode] = warm_runtime.run_airflow(home, args, env, warm=True, serial=False)
        else:
            report["modes"][mode] = run_deploy(home, args, env)
        print(f"{datetime.now():%H:%M:%S} {mode}: {report['modes'][mode]['run_seconds']} s", flush=True)
    report["uptime"]["after"] = warm_runtime._uptime()
    report["verdict"] = verdict(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "deployment.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    plot(report, out / "deployment.svg")
    (out / "deployment.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
