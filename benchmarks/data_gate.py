"""Benchmark: the data gate on the full year of flights, Beam in-process vs DirectRunner multi-processing.

    nice -n 10 .venv-runtime/bin/python benchmarks/data_gate.py            # both variants, ~5-10 minutes

One span holds all twelve prepared months (327,346 rows: the 336,776 flights of 2013 less the 9,430 cancelled or
diverted ones, which have no arrival delay to learn from). Each variant runs in a fresh process, with its own
RUNWAY_HOME under /tmp, the pipeline's real nodes through ``run_node``: CsvExampleGen (ingestion, timed but not part
of the gate), ImportSchemaGen, then the gate: StatisticsGen, ExampleValidator, GreatExpectationsValidator,
DriftSkewValidator. Peak memory is the largest summed RSS of the process and all its children (Beam's workers),
sampled every 0.2 s. Results: benchmarks/results/data_gate.json and data_gate.md.

The suite's row-count bound is for one month; the benchmark's copy of the suite widens it to the year (the only
change), so the gate's verdict on the year is meaningful.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import threading
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
RESULTS = CHECKOUT / "benchmarks" / "results"
IN_PROCESS = ["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
# What Beam's DirectRunner runs for a batch pipeline (its FnApiRunner), with one worker process per core.
MULTI_PROCESSING = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0"]
VARIANTS = {"in_process": IN_PROCESS, "multi_processing": MULTI_PROCESSING}
GATE = ["StatisticsGen", "ExampleValidator", "GreatExpectationsValidator", "DriftSkewValidator"]


def prepare_home(home: Path, source: Path) -> int:
    """One span with every month's CSV (copies: the source data is never touched); returns the row count."""
    span = home / "data" / "flights" / "span-2013-01"
    span.mkdir(parents=True)
    rows = 0
    for month in sorted(source.glob("span-2013-*/flights.csv")):
        target = span / f"flights-{month.parent.name}.csv"
        shutil.copyfile(month, target)
        rows += sum(1 for _ in target.open()) - 1
    suite = json.loads((CHECKOUT / "configs" / "expectations" / "flights.json").read_text())
    for expectation in suite["expectations"]:
        if expectation["type"] == "expect_table_row_count_to_be_between":
            expectation["kwargs"]["max_value"] = 400_000  # a year, not a month
    (home / "suite.json").write_text(json.dumps(suite))
    return rows


def run_variant(home: Path, variant: str) -> dict[str, object]:
    """In this (fresh) process: compile with the variant's Beam args, run ingestion and the gate's nodes."""
    os.environ["RUNWAY_HOME"] = str(home)
    from pipeline_components.config import load_pipeline_config
    from pipeline_components.runtime.compile import compile_pipeline, write_ir
    from pipeline_components.runtime.node import GateFailed, run_node
    from pipeline_components.settings import Settings

    settings = Settings.from_env()
    config = load_pipeline_config(CHECKOUT / "configs" / "flights.yaml").with_overrides(
        {"beam_pipeline_args": VARIANTS[variant], "validation.expectations_file": str(home / "suite.json")}
    )
    ir = settings.ir_path("flights")
    write_ir(compile_pipeline(config, settings), ir, config_path=config.source)
    seconds: dict[str, float] = {}
    verdicts: dict[str, str] = {}
    for node in ["CsvExampleGen", "ImportSchemaGen", *GATE]:
        started = time.monotonic()
        try:
            result = run_node(ir, node, "benchmark", {"span": 1})
            verdicts[node] = "passed"
            if node == "StatisticsGen":
                verdicts["rows"] = json.dumps(result["figures"].get("rows"))
        except GateFailed as gate:
            verdicts[node] = "failed: " + str(gate).splitlines()[0]
        seconds[node] = round(time.monotonic() - started, 1)
    return {"seconds": seconds, "verdicts": verdicts}


def measure(variant: str, source: Path) -> dict[str, object]:
    import psutil

    home = Path(f"/tmp/runway-bench-data-gate-{variant}")
    shutil.rmtree(home, ignore_errors=True)
    rows = prepare_home(home, source)
    out = home / "result.json"
    command = [sys.executable, __file__, "--child", variant, "--home", str(home), "--out", str(out)]
    started = time.monotonic()
    process = psutil.Popen(command, cwd=CHECKOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                tree = [process, *process.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = process.wait()
    done.set()
    sampler.join()
    wall = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"variant {variant} failed (exit {code})")
    child = json.loads(out.read_text())
    gate_seconds = round(sum(child["seconds"][n] for n in GATE), 1)
    shutil.rmtree(home, ignore_errors=True)
    return {
        "variant": variant,
        "beam_pipeline_args": VARIANTS[variant],
        "rows": rows,
        "gate_seconds": gate_seconds,
        "process_wall_seconds": round(wall, 1),
        "peak_rss_mib": round(peak / 2**20),
        **child,
    }


def write_markdown(document: dict[str, object], path: Path) -> None:
    runs = document["runs"]
    assert isinstance(runs, list)
    lines = [
        "# Data gate on the full year of flights",
        "",
        f"Command: `{document['command']}`  ",
        f"Machine: {document['machine']}; load before: `{document['load_before']}`, after: "
        f"`{document['load_after']}`  ",
        f"Rows: {runs[0]['rows']:,} (the prepared CSVs: 336,776 flights less the cancelled/diverted ones), one span.",
        "",
        "| variant | Beam args | gate (s) | StatisticsGen | ExampleValidator | GX | drift/skew | ingestion (s) "
        "| process wall (s) | peak RSS (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        s = run["seconds"]
        lines.append(
            f"| {run['variant']} | `{' '.join(run['beam_pipeline_args'])}` | {run['gate_seconds']} "
            f"| {s['StatisticsGen']} | {s['ExampleValidator']} | {s['GreatExpectationsValidator']} "
            f"| {s['DriftSkewValidator']} | {s['CsvExampleGen']} | {run['process_wall_seconds']} "
            f"| {run['peak_rss_mib']:,} |"
        )
    lines += ["", "Verdicts:", ""]
    lines += [f"- {run['variant']}: {json.dumps(run['verdicts'])}" for run in runs]
    lines += ["", str(document.get("note", "")), ""]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="in_process,multi_processing")
    parser.add_argument("--source", default=str(CHECKOUT / "var" / "data" / "flights"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        Path(args.out).write_text(json.dumps(run_variant(Path(args.home), args.child)))
        return
    load_before = os.getloadavg()
    runs = [measure(variant, Path(args.source)) for variant in args.variants.split(",")]
    document = {
        "command": "nice -n 10 .venv-runtime/bin/python benchmarks/data_gate.py",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, shared with other work",
        "load_before": " ".join(f"{x:.2f}" for x in load_before),
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": runs,
    }
    if len(runs) == 2:
        a, b = runs
        document["note"] = (
            f"{b['variant']} / {a['variant']}: gate time x{b['gate_seconds'] / a['gate_seconds']:.2f}, "
            f"peak memory x{b['peak_rss_mib'] / max(a['peak_rss_mib'], 1):.2f}."
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data_gate.json").write_text(json.dumps(document, indent=2) + "\n")
    write_markdown(document, RESULTS / "data_gate.md")
    print((RESULTS / "data_gate.md").read_text())


if __name__ == "__main__":
    main()
