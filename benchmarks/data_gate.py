"""Benchmark: the data gate (and the evaluation stage) on real months of 2013, and the Beam runners on the full year.

    nice -n 10 .venv-runtime/bin/python benchmarks/data_gate.py                      # months: ~40 minutes here
    nice -n 10 .venv-runtime/bin/python benchmarks/data_gate.py --scenario runners   # ~10 minutes

**months** (results: benchmarks/results/data_gate_months.json and .md): the twelve months of 2013 arrive one after
the other, whole, in one RUNWAY_HOME, and each runs the pipeline's real nodes in the DAG's order (without the TFLite
variants, which are not a gate), each in a forked child of one preloaded process (as the warm runtime runs them):
ingestion, the data gate, Transform, Trainer, the Evaluator with its trusted set, InfraValidator, Pusher. As in
Airflow, a month refused by the data gate trains nothing. Any refusal of a clean month is a false alarm. Then each
corruption of ``CORRUPTIONS`` (tests/runtime/bad_inputs.py) is applied to June as it arrives after five clean months
(the home is restored to its state after May each time) and every node runs, past a refusing data gate too, so that
the table says which gate refused it and what the evaluation stage alone would have said.

**runners**: one span holding all twelve months (327,346 rows), Beam in-process vs DirectRunner multi-processing
(results: benchmarks/results/data_gate.json and data_gate.md); the delivery bounds are widened to the year.
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
from typing import Any

CHECKOUT = Path(__file__).resolve().parents[1]
RESULTS = CHECKOUT / "benchmarks" / "results"
IN_PROCESS = ["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]
# What Beam's DirectRunner runs for a batch pipeline (its FnApiRunner), with one worker process per core.
MULTI_PROCESSING = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0"]
VARIANTS = {"in_process": IN_PROCESS, "multi_processing": MULTI_PROCESSING}
GATE = ["StatisticsGen", "ExampleValidator", "GreatExpectationsValidator", "DriftSkewValidator", "DeliveryValidator"]


def prepare_home(home: Path, source: Path) -> int:
    """One span with every month's CSV (copies: the source data is never touched); returns the row count."""
    span = home / "data" / "flights" / "span-2013-01"
    span.mkdir(parents=True)
    rows = 0
    for month in sorted(source.glob("span-2013-*/flights.csv")):
        target = span / f"flights-{month.parent.name}.csv"
        shutil.copyfile(month, target)
        rows += sum(1 for _ in target.open()) - 1
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
        {"beam_pipeline_args": VARIANTS[variant], "validation.delivery.max_rows": 400_000}  # a year, not a month
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


# --- months: 2013 in order, then corrupted Junes ----------------------------------------------------------------------

MONTHS_HOME = Path("/tmp/runway-bench-data-gate-months")
CORRUPT_MONTH = 6  # June, after five clean months
DATA_GATE = {"CsvExampleGen", *GATE}  # ExampleGen's CSV pre-check and the validators


def corruptions() -> dict[str, Any]:
    """Name -> the function that writes the corrupted month (tests/runtime/bad_inputs.py)."""
    from tests.runtime import bad_inputs as bad

    return {
        "label inverted": bad.label_inverted,
        "label: late at all (> 0 min)": bad.label_threshold(0),
        "label: > 60 min instead of > 15": bad.label_threshold(60),
        "label flipped for 30 % of rows": bad.label_flipped,
        "label shuffled among 50 % of rows (positive rate kept)": bad.label_shuffled,
        "label: the delay in minutes": bad.label_in_minutes,
        "partial: the first 3 days": bad.first_days,
        "partial: one origin airport (EWR)": bad.one_origin,
    }


def run_forked(ir: Path, node: str, run_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """``run_node`` in a forked child of this preloaded process: state, seconds, message and figures."""
    import multiprocessing

    from pipeline_components.runtime.node import GateFailed, NodeSkipped, run_node

    def child(conn: Any) -> None:
        started = time.monotonic()
        try:
            result = run_node(ir, node, run_id, params)
            outcome = {"state": "success", "figures": result.get("figures", {})}
        except GateFailed as gate:
            outcome = {"state": "gate_failed", "message": str(gate), "figures": gate.result.get("figures", {})}
        except NodeSkipped as skipped:
            outcome = {"state": "skipped", "message": str(skipped)}
        except Exception as error:  # recorded, not raised: one broken node must not lose the whole benchmark
            outcome = {"state": "error", "message": f"{type(error).__name__}: {error}"}
        outcome["seconds"] = round(time.monotonic() - started, 1)
        conn.send(json.loads(json.dumps(outcome, default=str)))
        conn.close()
        os._exit(0)

    context = multiprocessing.get_context("fork")
    parent, conn = context.Pipe(duplex=False)
    process = context.Process(target=child, args=(conn,))
    process.start()
    conn.close()
    outcome = parent.recv() if parent.poll(3600) else {"state": "error", "message": "no answer in an hour"}
    process.join()
    return dict(outcome)


def run_month(ir: Path, nodes: list[str], month: int, run_id: str, *, past_the_gate: bool) -> dict[str, Any]:
    """One run of every node in DAG order; a refused data gate stops it (as in Airflow) unless ``past_the_gate``."""
    record: dict[str, Any] = {"month": month, "run_id": run_id, "nodes": {}}
    refused = False
    for node in nodes:
        if refused and node not in DATA_GATE and node not in ("StatisticsGen",) and not past_the_gate:
            record["nodes"][node] = {"state": "upstream_failed"}
            continue
        outcome = run_forked(ir, node, run_id, {"span": month})
        record["nodes"][node] = outcome
        refused = refused or (node in DATA_GATE and outcome["state"] == "gate_failed")
        print(f"  month {month} {node}: {outcome['state']} ({outcome.get('seconds')} s)", flush=True)
    record["data_gate_refused"] = refused
    evaluator = record["nodes"].get("Evaluator", {}).get("figures", {})
    record["evaluation"] = {k: evaluator.get(k) for k in ("metrics", "trusted_metrics", "trusted_spans", "blessed",
                                                          "refused_by", "failures", "baseline_drop",
                                                          "label_ratio")}  # fmt: skip
    pusher = record["nodes"].get("Pusher", {})
    record["pushed"] = bool(pusher.get("figures", {}).get("pushed")) and pusher.get("state") == "success"
    return record


def write_month(folder: Path, month: int, source: Any, corrupt: Any = None, rows: int = 10**6) -> None:
    from tests.runtime.bad_inputs import month_with_delays

    frame = month_with_delays(source, month, rows)  # the whole month by default, with its delays for the corruptions
    if corrupt is None:
        folder.mkdir(parents=True)
        frame.drop(columns=["arr_delay"]).to_csv(folder / "flights.csv", index=False)
    else:
        corrupt(frame, folder)


def run_months(home: Path, *, last_month: int = 12, rows: int = 10**6) -> dict[str, Any]:
    """The twelve months in order, then each corruption of June from the home as it was after May.

    ``last_month`` and ``rows`` (a sample per month, with its own row bound) make a quick look at the script."""
    os.environ["RUNWAY_HOME"] = str(home)
    sys.path.insert(0, str(CHECKOUT))
    from pipeline_components.config import load_pipeline_config
    from pipeline_components.data import flights
    from pipeline_components.runtime.compile import compile_pipeline, read_ir, write_ir
    from pipeline_components.runtime.warm.service import DEFAULT_PRELOAD, preload
    from pipeline_components.settings import Settings

    preload(list(DEFAULT_PRELOAD))
    shutil.rmtree(home, ignore_errors=True)
    settings = Settings.from_env()
    overrides: dict[str, Any] = {"tflite.variants": []}
    if rows < 10**6:
        overrides["validation.delivery.min_rows"] = rows // 2
    config = load_pipeline_config(CHECKOUT / "configs" / "flights.yaml").with_overrides(overrides)
    ir = settings.ir_path("flights")
    write_ir(compile_pipeline(config, settings), ir, config_path=config.source)
    nodes = [n.pipeline_node.node_info.id for n in read_ir(ir).nodes]
    source = flights.load_source()
    spans = settings.data_dir / "flights"
    snapshot = home.parent / (home.name + "-after-may")
    clean = []
    for month in range(1, last_month + 1):
        write_month(spans / f"span-2013-{month:02d}", month, source, rows=rows)
        clean.append(run_month(ir, nodes, month, f"clean-{month:02d}", past_the_gate=False))
        if month == CORRUPT_MONTH - 1:
            shutil.rmtree(snapshot, ignore_errors=True)
            shutil.copytree(home, snapshot, symlinks=True)
    corrupted: list[dict[str, Any]] = []
    for name, corrupt in corruptions().items() if last_month >= CORRUPT_MONTH - 1 else []:
        shutil.rmtree(home)
        shutil.copytree(snapshot, home, symlinks=True)  # the same path: ML Metadata's artifact URIs stay valid
        write_month(spans / f"span-2013-{CORRUPT_MONTH:02d}", CORRUPT_MONTH, source, corrupt, rows=rows)
        record = run_month(ir, nodes, CORRUPT_MONTH, "corrupt-" + str(len(corrupted)), past_the_gate=True)
        corrupted.append({"corruption": name, **record})
    shutil.rmtree(snapshot, ignore_errors=True)
    return {"nodes": nodes, "clean": clean, "corrupted": corrupted}


def _first_line(outcome: dict[str, Any]) -> str:
    """The gate's first failure line (the one after the summary), shortened."""
    lines = [line.strip(" -") for line in str(outcome.get("message", "")).splitlines() if line.startswith("  - ")]
    return (lines[0] if lines else str(outcome.get("message", "")).splitlines()[0])[:160]


def _auc(evaluation: dict[str, Any], key: str) -> str:
    metrics = evaluation.get(key) or {}
    if "auc" not in metrics:
        return "-"
    diff = metrics.get("auc_diff")
    served = f" / {metrics['auc'] - diff:.3f}" if diff is not None else ""
    return f"{metrics['auc']:.3f}{served}"


def _served_prediction(run: dict[str, Any]) -> str:
    metrics = run["evaluation"].get("metrics") or {}
    if "mean_prediction" not in metrics or "mean_prediction_diff" not in metrics:
        return "-"
    return f"{metrics['mean_prediction'] - metrics['mean_prediction_diff']:.4f}"


def months_markdown(document: dict[str, Any]) -> str:
    lines = [
        "# The gate on the months of 2013, and on corrupted months",
        "",
        f"Command: `{document['command']}`  ",
        f"Machine: {document['machine']}; measured {document['measured']}, {document['minutes']} minutes.",
        "",
        "## Clean months, in order (any refusal is a false alarm)",
        "",
        "| month | rows | positive rate | data gate | AUC new month (candidate / served) | AUC trusted set "
        "(candidate / served) | trusted spans | served drop | served mean prediction | positive rate / served "
        "prediction | blessed | pushed |",
        "|---:|---:|---:|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for run in document["clean"]:
        delivery = run["nodes"].get("DeliveryValidator", {}).get("figures", {})
        refusals = [f"{n}: {_first_line(o)}" for n, o in run["nodes"].items() if o.get("state") == "gate_failed"]
        evaluation = run["evaluation"]
        drop = evaluation.get("baseline_drop")
        cells = [
            run["month"],
            f"{delivery.get('delivery_rows', 0):,}",
            delivery.get("label_shares", {}).get("1", "-"),
            "; ".join(refusals) or "passed",
            _auc(evaluation, "metrics"),
            _auc(evaluation, "trusted_metrics"),
            evaluation.get("trusted_spans") or "-",
            "-" if drop is None else f"{drop:+.3f}",
            _served_prediction(run),
            "-" if evaluation.get("label_ratio") is None else f"{evaluation['label_ratio']:.2f}",
            evaluation.get("blessed"),
            run["pushed"],
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += [
        "",
        "## Corruptions of June (after five clean months), every node run past the data gate",
        "",
        "| corruption | refused by the data gate | the evaluation stage alone | pushed |",
        "|---|---|---|---|",
    ]
    for run in document["corrupted"]:
        refusals = [f"**{n}**: {_first_line(o)}" for n, o in run["nodes"].items() if o.get("state") == "gate_failed"]
        evaluation = run["evaluation"]
        verdict = (
            "blessed"
            if evaluation.get("blessed")
            else "refused by the " + ", the ".join(evaluation.get("refused_by") or [])
        )
        evaluator = run["nodes"].get("Evaluator", {})
        if evaluation.get("blessed") is None:  # no verdict: the Evaluator itself failed on this month
            stage = f"not evaluated (Evaluator {evaluator.get('state')}: {_first_line(evaluator)[:160]})"
        else:
            failures = "; ".join(evaluation.get("failures") or [])[:300]
            stage = f"{verdict}: {failures}" if failures else verdict
        if run["data_gate_refused"]:
            pushed = "no (the data gate refused it)"
        else:
            pushed = "**yes: nothing refused it**" if run["pushed"] else "no (the evaluation stage refused it)"
        lines.append(f"| {run['corruption']} | {'<br>'.join(refusals) or 'passed'} | {stage} | {pushed} |")
    return "\n".join(lines) + "\n"


def main_months(*, last_month: int, rows: int) -> None:
    load_before = os.getloadavg()
    started = time.monotonic()
    document: dict[str, Any] = {
        "command": "nice -n 10 .venv-runtime/bin/python benchmarks/data_gate.py --scenario months",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, shared with other work",
        "load_before": " ".join(f"{x:.2f}" for x in load_before),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **run_months(MONTHS_HOME, last_month=last_month, rows=rows),
    }
    document["minutes"] = round((time.monotonic() - started) / 60, 1)
    document["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS if (last_month, rows) == (12, 10**6) else MONTHS_HOME.parent  # a quick look is not a result
    (out / "data_gate_months.json").write_text(json.dumps(document, indent=2, default=str) + "\n")
    (out / "data_gate_months.md").write_text(months_markdown(document))
    print((out / "data_gate_months.md").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["months", "runners"], default="months")
    parser.add_argument("--variants", default="in_process,multi_processing")
    parser.add_argument("--last-month", type=int, default=12, help="months: stop after this month (a quick look)")
    parser.add_argument("--rows", type=int, default=10**6, help="months: a sample of this many rows per month")
    parser.add_argument("--render", action="store_true", help="months: rewrite the .md from the recorded .json")
    parser.add_argument("--source", default=str(CHECKOUT / "var" / "data" / "flights"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        Path(args.out).write_text(json.dumps(run_variant(Path(args.home), args.child)))
        return
    if args.scenario == "months" and args.render:
        document = json.loads((RESULTS / "data_gate_months.json").read_text())
        (RESULTS / "data_gate_months.md").write_text(months_markdown(document))
        return
    if args.scenario == "months":
        main_months(last_month=args.last_month, rows=args.rows)
        return
    load_before = os.getloadavg()
    runs = [measure(variant, Path(args.source)) for variant in args.variants.split(",")]
    document = {
        "command": "nice -n 10 .venv-runtime/bin/python benchmarks/data_gate.py --scenario runners",
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
