"""Benchmark: the flights model on the full year of 2013 under each local tf.distribute strategy.

    nice -n 10 .venv-runtime/bin/python benchmarks/strategies.py                 # every local strategy
    nice -n 10 .venv-runtime/bin/python benchmarks/strategies.py --steps 100 --rows 50000   # a quicker look

One run, so that the variants share the machine's conditions: ExampleGen and Transform once on every prepared
month (one span, the whole year by default), then ``run_fn`` for the same number of steps under one_device,
default, mirrored (2 logical CPUs), central_storage (2 logical CPUs), multi_worker_mirrored (2 workers) and
parameter_server (2 workers, 1 ps), each in a fresh process as the Trainer runs it. Reported per strategy:
examples/second of training (global batch / keras' time per step), the peak summed RSS of the
process tree (sampled every 0.2 s), the wall time including start-up, and the ratio of examples/second to
one_device measured in the same run. Results: benchmarks/results/strategies.json and strategies.md, with the
command and the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parents[1]
RESULTS = CHECKOUT / "benchmarks" / "results"
WORKER = [sys.executable, "-m", "pipeline_components.training.worker", "trainer"]
STRATEGIES: dict[str, dict[str, Any]] = {
    "one_device": {"strategy": "one_device"},
    "default": {"strategy": "default"},
    "mirrored": {"strategy": "mirrored", "logical_cpus": 2},
    "central_storage": {"strategy": "central_storage", "logical_cpus": 2},
    "multi_worker_mirrored": {"strategy": "multi_worker_mirrored", "workers": 2},
    "parameter_server": {"strategy": "parameter_server", "workers": 2, "parameter_servers": 1},
}
REPLICAS = {"mirrored": 2, "central_storage": 2, "multi_worker_mirrored": 2}
# keras' verbose=2 epoch line ends with "... - 8s/epoch - 153ms/step": the per-step time is the precise figure
STEP_TIME = re.compile(r"(\d+)/\1 - .* - (\d+(?:\.\d+)?)(us|ms|s)/step")
UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def tree_rss(pid: int) -> int:
    """Summed resident memory (bytes) of ``pid`` and every descendant, from /proc."""
    from pipeline_components.processes import descendants

    family = {pid} | descendants(pid)
    total = 0
    for member in family:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def transform_year(root: Path, rows: int | None) -> dict[str, Path]:
    import pandas as pd

    from pipeline_components.pipeline.slices import transform_slice

    data = root / "data"
    data.mkdir(parents=True)
    months = sorted((CHECKOUT / "var" / "data" / "flights").glob("span-2013-*/flights.csv"))
    frame = pd.concat([pd.read_csv(path) for path in months], ignore_index=True)
    if rows:
        frame = frame.sample(n=min(rows, len(frame)), random_state=0)
    frame.to_csv(data / "flights.csv", index=False)
    paths = transform_slice(data, root, config_path=CHECKOUT / "configs" / "flights.yaml", name="strategies_benchmark")
    return {**paths, "rows": Path(str(len(frame)))}


def run_strategy(name: str, paths: dict[str, Path], out: Path, *, steps: int, batch: int) -> dict[str, Any]:
    from pipeline_components.config import load_pipeline_config
    from pipeline_components.pipeline.factory import model_custom_config
    from pipeline_components.training.spec import slice_fn_args, write_spec

    config = load_pipeline_config(CHECKOUT / "configs" / "flights.yaml")
    custom_config = {**model_custom_config(config), "batch_size": batch, "training": STRATEGIES[name]}
    fn_args = slice_fn_args(paths, out, steps=steps, eval_steps=1, custom_config=custom_config)
    spec = write_spec(fn_args, "pipeline_components.models.tabular.run_fn", out / "spec.json")
    started = time.monotonic()
    with (out / "trainer.log").open("w") as log:
        process = subprocess.Popen([*WORKER, str(spec)], stdout=log, stderr=subprocess.STDOUT)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss(process.pid))
            time.sleep(0.2)
    wall = time.monotonic() - started
    text = (out / "trainer.log").read_text(errors="replace")
    chief_log = out / "run" / "cluster" / "logs" / "worker-0.log"
    if chief_log.is_file():
        text += chief_log.read_text(errors="replace")
    epochs = STEP_TIME.findall(text)
    if process.returncode != 0 or not epochs:
        return {"strategy": name, "error": f"exit {process.returncode}; see {out / 'trainer.log'}"}
    step_s = float(epochs[-1][1]) * UNIT[epochs[-1][2]]
    seconds = step_s * steps
    examples = steps * batch * REPLICAS.get(name, 1)
    return {
        "strategy": name,
        "steps": steps,
        "global_batch": batch * REPLICAS.get(name, 1),
        "examples": examples,
        "step_ms": round(step_s * 1000, 1),
        "epoch_s": round(seconds, 1),
        "examples_per_s": round(examples / seconds, 1),
        "peak_rss_mib": round(peak / 2**20),
        "wall_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps, the same for every strategy")
    parser.add_argument("--batch", type=int, default=256, help="per-replica batch (model.batch_size)")
    parser.add_argument("--rows", type=int, default=None, help="sample this many rows of the year (default: all)")
    parser.add_argument("--only", nargs="*", default=list(STRATEGIES), help="strategies to run")
    parser.add_argument("--root", default=f"/tmp/runway-strategies-{os.getpid()}")
    args = parser.parse_args()
    root = Path(args.root)
    load_before = os.getloadavg()
    paths = transform_year(root, args.rows)
    results = [
        run_strategy(name, paths, root / "runs" / name, steps=args.steps, batch=args.batch)
        for name in ["one_device", *[n for n in args.only if n != "one_device"]]
    ]
    base = next((r for r in results if r["strategy"] == "one_device" and "examples_per_s" in r), None)
    for result in results:
        if base and "examples_per_s" in result:
            result["ratio_to_one_device"] = round(result["examples_per_s"] / base["examples_per_s"], 2)
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.node()} {os.cpu_count()} CPUs",
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "rows": int(str(paths["rows"])),
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "strategies.json").write_text(json.dumps(report, indent=2))
    lines = [
        "# Strategies benchmark",
        "",
        f"`{report['command']}` on {report['machine']}; load {report['load_before']} -> {report['load_after']}; "
        f"{report['rows']} rows.",
        "",
        "| strategy | global batch | examples/s | ratio to one_device | peak RSS (MiB) | wall (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['strategy']} | - | {r['error']} | - | - | - |")
        else:
            lines.append(
                f"| {r['strategy']} | {r['global_batch']} | {r['examples_per_s']} | {r.get('ratio_to_one_device', '-')}"
                f" | {r['peak_rss_mib']} | {r['wall_s']} |"
            )
    (RESULTS / "strategies.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
