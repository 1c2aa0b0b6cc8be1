"""Benchmark: every TFLite variant of a full-year flights model, measured side by side in one run.

Trains one model on all of 2013 (CsvExampleGen, Transform, Trainer run by TFX's LocalDagRunner with the flights
configuration's model settings), then runs the TFLiteVariants node on it: the nine variants are built, measured on
the same evaluation rows (a fifth of the year, hash-split like the pipeline) and gated. Writes
``benchmarks/results/tflite_variants.{json,md,svg}``.

    nice -n 10 .venv-runtime/bin/python benchmarks/tflite_variants.py [--work /tmp/tflite-bench]

Needs the prepared flights spans (``runway data prepare flights``) under ``$RUNWAY_HOME/data`` (default ``var/``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # a script, not a library: tfmot needs Keras 2

import pandas as pd

from pipeline_components.config import TFLITE_VARIANTS, load_pipeline_config
from pipeline_components.settings import CHECKOUT, Settings

RESULTS = CHECKOUT / "benchmarks" / "results"


def full_year_csv(data_dir: Path, out: Path) -> int:
    frames = [pd.read_csv(path) for path in sorted((data_dir / "flights").glob("span-2013-*/flights.csv"))]
    if len(frames) != 12:
        raise SystemExit(f"expected 12 monthly spans under {data_dir / 'flights'}, found {len(frames)}")
    frame = pd.concat(frames, ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "flights.csv", index=False)
    return len(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/tflite-bench"), help="scratch folder (recreated)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the model an earlier run trained in --work; build and measure the variants again (one run)",
    )
    args = parser.parse_args()
    if args.reuse:
        reuse(args.work)
        return

    from pipeline_components.pipeline.slices import model_slice, run_slice

    started = time.monotonic()
    load_before = os.getloadavg()
    shutil.rmtree(args.work, ignore_errors=True)
    data_dir = Settings.from_env().data_dir
    rows = full_year_csv(data_dir, args.work / "data")
    # The node files its report page under RUNWAY_HOME/reports: keep it in the scratch folder.
    os.environ["RUNWAY_HOME"] = str(args.work / "home")
    os.environ["RUNWAY_DATA_DIR"] = str(data_dir)
    config = load_pipeline_config(CHECKOUT / "configs" / "flights.yaml")
    settings = {
        **config.tflite.model_dump(exclude={"variants"}),
        "batch_size": config.model.batch_size,
        "max_eval_rows": 50_000,
        "latency_runs": 1000,
    }
    nodes = model_slice(
        args.work / "data",
        config=config,
        pipeline_splits=True,
        train=(config.model.train_steps, config.model.eval_steps),
        variants=list(TFLITE_VARIANTS),
        tflite_settings=settings,
    )
    run_slice(nodes.components, args.work, name="tflite_benchmark")

    out = sorted((args.work / "pipeline" / "TFLiteVariants" / "tflite_models").iterdir())[-1]
    result = json.loads((out / "tflite_variants.json").read_text())
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    result["benchmark"] = {
        "command": "nice -n 10 .venv-runtime/bin/python benchmarks/tflite_variants.py",
        "rows_full_year": rows,
        "train_steps": config.model.train_steps,
        "batch_size": config.model.batch_size,
        "seconds_total": round(time.monotonic() - started, 1),
        "load_before": [round(x, 2) for x in load_before],
        "uptime_after": uptime,
        "cpu_count": os.cpu_count(),
    }
    _write(result, out)


def reuse(work: Path) -> None:
    """Variants of the model an earlier full run trained (same artifacts), measured again in one run."""
    from pipeline_components.components.tflite_variants.executor import produce_variants

    started = time.monotonic()
    load_before = os.getloadavg()
    config = load_pipeline_config(CHECKOUT / "configs" / "flights.yaml")
    previous = json.loads((RESULTS / "tflite_variants.json").read_text())["benchmark"]

    def newest(pattern: str) -> str:
        return str(sorted((work / "pipeline").glob(pattern))[-1])

    out = work / "variants-reuse"
    shutil.rmtree(out, ignore_errors=True)
    result = produce_variants(
        saved_model_dir=newest("Trainer/model/*") + "/Format-Serving",
        transform_graph_dir=newest("Transform/transform_graph/*"),
        train_uris=[newest("Transform/transformed_examples/*")],
        eval_uris=[newest("CsvExampleGen/examples/*")],
        out_dir=out,
        variants=list(TFLITE_VARIANTS),
        settings={
            **config.tflite.model_dump(exclude={"variants"}),
            "batch_size": config.model.batch_size,
            "max_eval_rows": 50_000,
            "latency_runs": 1000,
        },
        run_id="benchmark",
    )
    result["benchmark"] = {
        **previous,
        "command": "nice -n 10 .venv-runtime/bin/python benchmarks/tflite_variants.py --reuse "
        "(after a full run trained the model)",
        "seconds_variants_only": round(time.monotonic() - started, 1),
        "load_before": [round(x, 2) for x in load_before],
        "uptime_after": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }
    _write(result, out)


def _write(result: dict[str, object], out: Path) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tflite_variants.json").write_text(json.dumps(result, indent=2, default=str))
    shutil.copyfile(out / "tflite_variants.svg", RESULTS / "tflite_variants.svg")
    (RESULTS / "tflite_variants.md").write_text(markdown(result))
    print((RESULTS / "tflite_variants.md").read_text())


def markdown(result: dict[str, object]) -> str:
    bench = result["benchmark"]
    assert isinstance(bench, dict)
    reference = result["reference"]
    assert isinstance(reference, dict)
    variants = result["variants"]
    assert isinstance(variants, list)
    lines = [
        "# TFLite variants of the full-year flights model",
        "",
        f"Command: `{bench['command']}` ("
        + (
            f"{bench['seconds_variants_only']} s for the variants; the full run took {bench['seconds_total']} s "
            "with training"
            if "seconds_variants_only" in bench
            else f"{bench['seconds_total']} s in all, training included"
        )
        + ").",
        f"Machine: {bench['cpu_count']} CPUs shared with other work; load before {bench['load_before']}, "
        f"after: `{bench['uptime_after']}`. Compare ratios within this one run, not absolute timings across runs.",
        "",
        f"Model: {bench['train_steps']} steps of {bench['batch_size']} on {bench['rows_full_year']} flights of 2013 "
        f"(4/5 train, 1/5 evaluation by hash). Reference: the float SavedModel on {reference['rows']} evaluation "
        f"rows, {result['metric']} {reference['metrics'][result['metric']]:.4f}, accuracy "
        f"{reference['metrics']['accuracy']:.4f}. Latency: one thread, single example; throughput: batches of 256.",
        "",
        "| variant | verdict | AUC | Δ AUC | budget | Δ vs fine-tuned float | agreement | file KiB | file ratio "
        "| weights ratio (int8 ≤ 4x) | gzip ratio | p50 ms | p95 ms | p50 vs float32 | rows/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in variants:
        m = v.get("measured")
        if not m:
            lines.append(f"| {v['name']} | not built | | | | | | | | | | | | | |")
            continue
        lines.append(
            f"| {v['name']} | {'accepted' if v['accepted'] else 'rejected'} | {m['metrics'][result['metric']]:.4f} "
            f"| {v['delta']:+.4f} | {v['budget']} "
            f"| {format(v['delta_vs_fine_tuned_float'], '+.4f') if 'delta_vs_fine_tuned_float' in v else '-'} "
            f"| {m['agreement']:.4f} | {m['size_bytes'] / 1024:.1f} "
            f"| {v['size_ratio_vs_float32']:.2f}x | {v['weights_ratio_vs_float32']:.2f}x "
            f"| {v['gzip_ratio_vs_float32']:.2f}x | {m['latency_p50_ms']:.4f} | {m['latency_p95_ms']:.4f} "
            f"| {v['latency_ratio_vs_float32']:.2f} | {m['throughput_rows_per_s']:.0f} |"
        )
    control = result.get("fine_tuned_float")
    if isinstance(control, dict):
        lines += [
            "",
            f"QAT, pruning and clustering fine-tune on real training rows (fine_tune_steps batches); the "
            f"float model fine-tuned the same way reaches AUC {control[result['metric']]:.4f}. 'Δ vs fine-tuned "
            "float' is the compression's own cost; the gated 'Δ AUC' (vs the served SavedModel) includes the extra "
            "training.",
        ]
    lines += ["", "Why each verdict:", ""]
    lines += [
        f"- **{v['name']}**: {v['reason']}" + (f" ({'; '.join(v['notes'])})" if v["notes"] else "") for v in variants
    ]
    lines += ["", "![size vs AUC](tflite_variants.svg)", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
