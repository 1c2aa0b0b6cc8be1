"""The report of ``benchmarks/drift_to_retraining.py``: ``drift_to_retraining.md`` (how it was measured, median and
max per stage, every repetition, where ``watch_traffic``'s time went) and ``drift_to_retraining.png`` (a timeline per
repetition)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def markdown(result: dict[str, Any]) -> str:
    """The report page: how it was measured, every repetition, median and max per stage, the dominant stage."""
    keys = [stage["key"] for stage in result["stages"]]
    summary = result["summary"]
    dominant = max(keys, key=lambda key: summary[key]["median"] or 0.0)
    what = {stage["key"]: stage["what"] for stage in result["stages"]}
    lines = [
        "# From a drifted window to the retraining run starting (issue 20)",
        "",
        f"`{result['command']}`, {result['date']} on {result['machine']}; load average {result['load_before']} "
        f"before, {result['load_after']} after; {result['wall_s']:.0f} s in all ({result['setup_s']:.0f} s to build "
        "the stack). A 10 % sample of January 2013 trained and `stable` on 2 model servers behind nginx, every "
        "request logged; each repetition replays real July flights, triggers `flights_monitoring`, and measures "
        "from Airflow's metadata database until the asset-triggered `flights_pipeline` run's first task starts "
        "(then that run is marked failed). Runs of the two DAGs that the benchmark did not start (the cron's catch-up "
        "runs when Airflow starts) are marked failed before a repetition, so that `max_active_runs` holds none back.",
        *(
            ["", f"**Stopped early** after {len(result['repetitions'])} repetition(s): {result['failure']}"]
            if result.get("failure")
            else []
        ),
        "",
        "## Median and max per stage (seconds)",
        "",
        "| stage | median | max |",
        "|---|---:|---:|",
        *(f"| {what[key]} | {_figure(summary[key]['median'])} | {_figure(summary[key]['max'])} |" for key in keys),
        f"| **total** | **{_figure(summary['total']['median'])}** | **{_figure(summary['total']['max'])}** |",
        "",
        f"Largest stage by median: **{what[dominant]}** ({_figure(summary[dominant]['median'])} s of "
        f'{_figure(summary["total"]["median"])} s). Why: docs/monitoring.md, "How long from drift to retraining".',
        "",
        "## Every repetition (seconds)",
        "",
        "| # | window (UTC) | rows | " + " | ".join(keys) + " | total |",
        "|---|---|---:|" + "---:|" * (len(keys) + 1),
    ]
    for number, rep in enumerate(result["repetitions"], 1):
        window = f"{rep['window']['since_utc']} .. {rep['window']['until_utc']}"
        figures = " | ".join(_figure(rep["stages"][key]) for key in [*keys, "total"])
        lines.append(f"| {number} | {window} | {rep['rows']} | {figures} |")
    if result["repetitions"]:
        marks = {key: statistics.median(r["watch_log"].get(key) or 0.0 for r in result["repetitions"])
                 for key in ("dag_parsed", "runtime_first_output", "runtime_result", "log_end")}  # fmt: skip
        lines += ["", "Inside `watch_traffic` (its task log; median seconds after its first line): DAG file parsed "
                  f"{marks['dag_parsed']:.1f}, the runtime interpreter's first output (TensorFlow imported) "
                  f"{marks['runtime_first_output']:.1f}, the window's result {marks['runtime_result']:.1f}, the "
                  f"log's last line {marks['log_end']:.1f}."]  # fmt: skip
        lines += ["", "Evidence of the first alert: " + "; ".join(result["repetitions"][0]["evidence"])]
    lines += ["", "![timeline of each repetition](drift_to_retraining.png)"]
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], out: Path) -> None:
    """One horizontal bar per repetition, its stages side by side from the closing of the newest judged file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [stage["key"] for stage in result["stages"]]
    colors = dict(zip(keys, ("#bbbbbb", "#f5b041", "#5dade2", "#58d68d", "#af7ac5", "#ec7063"), strict=True))
    figure, axes = plt.subplots(figsize=(11, 1.2 + 0.6 * len(result["repetitions"])))
    for row, rep in enumerate(result["repetitions"]):
        offset = 0.0
        for key in keys:
            width = rep["stages"][key] or 0.0
            axes.barh(row, width, left=offset, color=colors[key], edgecolor="white",
                      label=key if row == 0 else None)  # fmt: skip
            offset += width
    axes.set_yticks(range(len(result["repetitions"])), [f"#{n + 1}" for n in range(len(result["repetitions"]))])
    axes.invert_yaxis()
    axes.set_xlabel("seconds since the newest judged request log file was closed")
    axes.set_title("drifted window -> retraining run's first task (Airflow's records)")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=len(keys), fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
