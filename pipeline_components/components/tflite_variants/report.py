"""The variant report an operator reads at a glance: a table, a size-vs-metric plot, the same figures as JSON."""

from __future__ import annotations

import html
import math
from typing import Any

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#1b2631} table{border-collapse:collapse}"
    " th,td{border:1px solid #d5d8dc;padding:4px 8px;text-align:right} th{background:#f4f6f7}"
    " td:first-child{text-align:left} .ok{color:#1e8449;font-weight:bold} .bad{color:#b03a2e;font-weight:bold}"
)
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
    """Size (KiB, log scale) vs metric as SVG: accepted variants green, rejected red, the SavedModel's metric and
    each budget's floor as lines. Hand-written SVG: the runtime environment has no plotting library."""
    metric = result["metric"]
    reference = result["reference"]["metrics"].get(metric, math.nan)
    points = [
        (v["name"], v["measured"]["size_bytes"] / 1024, v["measured"]["metrics"].get(metric, math.nan), v["accepted"])
        for v in result["variants"]
        if v.get("measured") and not math.isnan(v["measured"]["metrics"].get(metric, math.nan))
    ]
    floors = (
        {family: reference - budget for family, budget in result["budgets"].items()} if reference == reference else {}
    )
    width, height, left, right, top, bottom = 720, 420, 70, 150, 40, 50
    xs = [math.log10(p[1]) for p in points] or [0.0, 1.0]
    ys = [p[2] for p in points] + ([reference, *floors.values()] if floors else [])
    ys = ys or [0.0, 1.0]
    x0, x1 = min(xs) - 0.05, max(xs) + 0.05
    y0, y1 = min(ys), max(ys)
    pad = max((y1 - y0) * 0.1, 0.002)
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float) -> float:
        return left + (math.log10(x) - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * (height - top - bottom)

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif' "
        f"font-size='11'><rect width='100%' height='100%' fill='white'/>",
        f"<text x='{width / 2}' y='20' text-anchor='middle' font-size='13'>TFLite variants: file size vs {metric} "
        f"({result['reference']['rows']} evaluation rows)</text>",
        f"<line x1='{left}' y1='{height - bottom}' x2='{width - right}' y2='{height - bottom}' stroke='black'/>",
        f"<line x1='{left}' y1='{top}' x2='{left}' y2='{height - bottom}' stroke='black'/>",
        f"<text x='{(left + width - right) / 2}' y='{height - 12}' text-anchor='middle'>"
        "file size (KiB, log scale)</text>",
        f"<text x='16' y='{(top + height - bottom) / 2}' transform='rotate(-90 16 {(top + height - bottom) / 2})' "
        f"text-anchor='middle'>{html.escape(metric)}</text>",
    ]
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        parts.append(f"<text x='{left - 6}' y='{py(y) + 4:.1f}' text-anchor='end'>{y:.4f}</text>")
        x = 10 ** (x0 + (x1 - x0) * i / 4)
        parts.append(f"<text x='{px(x):.1f}' y='{height - bottom + 16}' text-anchor='middle'>{x:.1f}</text>")
    if floors:
        parts.append(
            f"<line x1='{left}' y1='{py(reference):.1f}' x2='{width - right}' y2='{py(reference):.1f}' "
            f"stroke='#2e86c1'/><text x='{width - right + 4}' y='{py(reference) + 4:.1f}' fill='#2e86c1'>"
            f"SavedModel {reference:.4f}</text>"
        )
        for family, floor in sorted(floors.items()):
            parts.append(
                f"<line x1='{left}' y1='{py(floor):.1f}' x2='{width - right}' y2='{py(floor):.1f}' stroke='#aab7b8' "
                f"stroke-dasharray='4 3'/><text x='{width - right + 4}' y='{py(floor) + 4:.1f}' fill='#7f8c8d'>"
                f"{html.escape(family)} budget</text>"
            )
    for name, size, value, accepted in points:
        color = "#1e8449" if accepted else "#b03a2e"
        parts.append(
            f"<circle cx='{px(size):.1f}' cy='{py(value):.1f}' r='5' fill='{color}'><title>{html.escape(name)}: "
            f"{size:.1f} KiB, {metric} {value:.4f}</title></circle>"
            f"<text x='{px(size) + 7:.1f}' y='{py(value) - 6:.1f}' fill='{color}'>{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


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
    metric = result["metric"]
    ref = result["reference"]
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in COLUMNS)
    body = ""
    for row in table_rows(result):
        css = "ok" if row["verdict"] == "accepted" else "bad"
        cells = "".join(
            f"<td class='{css}'>{html.escape(row[key])}</td>"
            if key == "verdict"
            else f"<td>{html.escape(row[key])}</td>"
            for key, _ in COLUMNS
        )
        body += f"<tr>{cells}</tr>"
    reasons = "".join(
        f"<li><b>{html.escape(v['name'])}</b> ({html.escape(v['description'])}): {html.escape(v['reason'])}"
        + (f" — {html.escape('; '.join(v['notes']))}" if v.get("notes") else "")
        + "</li>"
        for v in result["variants"]
    )
    encoder = result.get("encoder_check", {})
    title = f"TFLite variants — {html.escape(result['run_id'])}"
    return f"""<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>
<style>{_STYLE}</style></head><body>
<h1>TFLite variants</h1>
<p>{html.escape(result["summary"])}</p>
<p>Reference: the float SavedModel (<code>serving_tf_example</code>) on {ref["rows"]} evaluation rows of span
{html.escape(str(ref.get("span")))}: {metric} {ref["metrics"].get(metric, float("nan")):.4f},
accuracy {ref["metrics"]["accuracy"]:.4f}. Gated on the {metric} drop;
budgets {html.escape(str(result["budgets"]))}.</p>
<p>{html.escape(_fine_tuned_note(result))}</p>
<table><tr>{head}</tr>{body}</table>
<h2>Why</h2><ul>{reasons}</ul>
<h2>Size vs {metric}</h2>{svg}
<h2>Input contract</h2>
<p>Every variant takes the transformed features (z-scores, vocabulary indices; float32 and int64 tensors of shape
[batch]); <code>encoding.json</code> and <code>encoder.py</code> ship beside the variants. Reference encoder vs the
Transform graph on the evaluation rows: {html.escape(str(encoder))}.</p>
</body></html>
"""
