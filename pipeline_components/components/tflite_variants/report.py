"""The variant report an operator reads at a glance: a table, a size-vs-metric chart, the same figures as JSON."""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup

from pipeline_components.reports.render import Verdict, cell, render

COLUMNS = [
    ("variant", "variant"),
    ("verdict", "verdict"),
    ("metric", "metric"),
    ("delta", "Δ vs SavedModel"),
    ("budget", "budget"),
    ("delta_ft", "Δ vs fine-tuned float"),
    ("accuracy", "accuracy"),
    ("agreement", "agreement"),
    ("size_kb", "size KiB"),
    ("gzip_kb", "gzip KiB"),
    ("size_ratio", "float32 / size"),
    ("weights_kb", "weights KiB"),
    ("weights_ratio", "float32 / weights (≤4x int8)"),
    ("latency_p50_ms", "p50 ms"),
    ("latency_p95_ms", "p95 ms"),
    ("latency_ratio", "p50 / float32 p50"),
    ("throughput", "rows/s (batch)"),
]


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table_rows(result: dict[str, Any]) -> list[dict[str, str]]:
    metric = result["metric"]
    rows = []
    for v in result["variants"]:
        m = v.get("measured") or {}
        rows.append(
            {
                "variant": v["name"],
                "verdict": "accepted" if v["accepted"] else "rejected",
                "metric": _fmt(m.get("metrics", {}).get(metric)),
                "delta": f"{v['delta']:+.4f}" if v.get("delta") is not None else "-",
                "budget": _fmt(v["budget"]),
                "delta_ft": f"{v['delta_vs_fine_tuned_float']:+.4f}" if "delta_vs_fine_tuned_float" in v else "-",
                "accuracy": _fmt(m.get("metrics", {}).get("accuracy")),
                "agreement": _fmt(m.get("agreement")),
                "size_kb": _fmt(m["size_bytes"] / 1024, 1) if m else "-",
                "gzip_kb": _fmt(m["gzip_bytes"] / 1024, 1) if m else "-",
                "size_ratio": f"{v['size_ratio_vs_float32']:.2f}x" if v.get("size_ratio_vs_float32") else "-",
                "weights_kb": _fmt(m["weight_bytes"] / 1024, 1) if m else "-",
                "weights_ratio": f"{v['weights_ratio_vs_float32']:.2f}x" if v.get("weights_ratio_vs_float32") else "-",
                "latency_p50_ms": _fmt(m.get("latency_p50_ms"), 3),
                "latency_p95_ms": _fmt(m.get("latency_p95_ms"), 3),
                "latency_ratio": _fmt(v.get("latency_ratio_vs_float32"), 2),
                "throughput": _fmt(m.get("throughput_rows_per_s"), 0) if m else "-",
            }
        )
    return rows


def plot_svg(result: dict[str, Any]) -> str:
    """Size (KiB, log scale) vs metric (matplotlib, SVG): accepted variants green, rejected red, the SavedModel's
    metric and each budget's floor as lines."""
    from pipeline_components.reports.charts import Point, tradeoff_scatter

    metric = result["metric"]
    reference = result["reference"]["metrics"].get(metric, math.nan)
    points = [
        Point(v["name"], v["measured"]["size_bytes"] / 1024, v["measured"]["metrics"][metric], v["accepted"])
        for v in result["variants"]
        if v.get("measured") and not math.isnan(v["measured"]["metrics"].get(metric, math.nan))
    ]
    known = not math.isnan(reference)
    return tradeoff_scatter(
        points,
        title=f"TFLite variants: file size vs {metric} ({result['reference']['rows']} evaluation rows)",
        xlabel="file size (KiB, log scale)",
        ylabel=metric,
        reference=(f"SavedModel {reference:.4f}", reference) if known else None,
        floors=_floors(reference, result["budgets"]) if known else {},
    )


def _floors(reference: float, budgets: dict[str, float]) -> dict[str, float]:
    """Label -> the metric below which a family's variants are rejected; families with the same budget share one."""
    by_budget: dict[float, list[str]] = {}
    for family, budget in sorted(budgets.items()):
        by_budget.setdefault(budget, []).append(family)
    return {f"{', '.join(families)} budget": reference - budget for budget, families in by_budget.items()}


def gate_failures(result: dict[str, Any]) -> list[str]:
    """What fails the TFLiteVariants gate: no variant built and run, or an encoder that does not reproduce Transform.
    A rejected variant alone does not (it is not shipped, and the page says why)."""
    failures = []
    if not result["produced"]:
        failures.append("no variant could be built and run: " + "; ".join(v["reason"] for v in result["variants"]))
    if not result["encoder_check"]["ok"]:
        failures.append(
            f"the reference encoder does not reproduce Transform: {result['encoder_check']} "
            "(expected max_abs_diff_numeric <= 1e-4 and 0 mismatched indices)"
        )
    return failures


def _fine_tuned_note(result: dict[str, Any]) -> str:
    control = result.get("fine_tuned_float")
    if not control:
        return ""
    metric = result["metric"]
    return (
        f"QAT, pruning and clustering fine-tune on training rows; the float model fine-tuned the same way reaches "
        f"{metric} {control.get(metric, math.nan):.4f}: the column 'Δ vs fine-tuned float' is the compression's own "
        "cost, 'Δ vs SavedModel' (gated) includes the extra training."
    )


def to_markdown(result: dict[str, Any]) -> str:
    rows = table_rows(result)
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(row[key] for key, _ in COLUMNS) + " |" for row in rows),
    ]
    reasons = [f"- **{v['name']}**: {v['reason']}" for v in result["variants"]]
    note = _fine_tuned_note(result)
    return "\n".join(lines) + "\n\n" + (note + "\n\n" if note else "") + "\n".join(reasons) + "\n"


def to_html(result: dict[str, Any], svg: str) -> str:
    """The page: the verdict, every variant's figures and why it was accepted or rejected, the chart, the input
    contract.

    Args:
        result: ``produce_variants``' result.
        svg: the chart (``plot_svg``).

    Returns:
        The page.
    """
    metric = result["metric"]
    reference = result["reference"]
    rows = [
        [cell(row[key], ("ok" if row[key] == "accepted" else "bad") if key == "verdict" else "") for key, _ in COLUMNS]
        for row in table_rows(result)
    ]
    failures = gate_failures(result)
    return render(
        "tflite.html",
        title="TFLite variants",
        run_id=result["run_id"],
        verdict=Verdict(not failures, result["summary"], failures),
        metric=metric,
        reference_rows=reference["rows"],
        reference_span=reference.get("span"),
        reference_metric=f"{reference['metrics'].get(metric, math.nan):.4f}",
        reference_accuracy=f"{reference['metrics']['accuracy']:.4f}",
        budgets=result["budgets"],
        fine_tuned_note=_fine_tuned_note(result),
        header=[title for _, title in COLUMNS],
        rows=rows,
        numeric=tuple(range(2, len(COLUMNS))),
        variants=result["variants"],
        chart=Markup(svg),  # drawn by matplotlib from escaped text (reports/charts.py)
        encoder=result.get("encoder_check", {}),
    )
