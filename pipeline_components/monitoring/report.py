"""The outputs of one monitored window: ``result.json``, ``report.md``, ``report.html``, ``monitoring.png`` and
``statistics.pb``.

``report.html`` is the data gate's drift page (``drift_skew_validator.executor.drift_page``) for this window: the
same verdict, chart and table an operator reads for the gate, self-contained for Airflow's "Report" link.

``statistics.pb`` (the window's served-feature statistics, a ``DatasetFeatureStatisticsList``) is the next
window's drift baseline. Each file is written atomically, so a reader never sees half of one.
"""

from __future__ import annotations

import io
import json
from itertools import pairwise
from pathlib import Path
from typing import Any

from pipeline_components.durable import atomic_write

RESULT_FILE, REPORT_FILE, PLOT_FILE, STATISTICS_FILE = "result.json", "report.md", "monitoring.png", "statistics.pb"
PAGE_FILE = "report.html"


def write_outputs(out_dir: Path, *, result: dict[str, Any], statistics: Any) -> None:
    """Write the five files of a window into ``out_dir`` (created); ``result`` gains their names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result["files"] = {
        "result": RESULT_FILE,
        "report": REPORT_FILE,
        "page": PAGE_FILE,
        "plot": PLOT_FILE,
        "statistics": STATISTICS_FILE,
    }
    atomic_write(out_dir / STATISTICS_FILE, statistics.SerializeToString())
    atomic_write(out_dir / PLOT_FILE, plot_png(result))
    atomic_write(out_dir / REPORT_FILE, report_markdown(result))
    atomic_write(out_dir / PAGE_FILE, report_page(result))
    atomic_write(out_dir / RESULT_FILE, json.dumps(result, indent=2) + "\n")


def report_page(result: dict[str, Any]) -> str:
    """The window as the data gate's drift page: verdict and evidence, notes, chart, every comparison."""
    from pipeline_components.components.drift_skew_validator.executor import Measurement, drift_page
    from pipeline_components.reports.render import Verdict

    measurements = [Measurement(**{k: v for k, v in m.items() if k != "failed"}) for m in result["measurements"]]
    crossed = len(result["evidence"])
    headline = (
        f"{crossed} of {len(measurements)} comparisons above threshold"
        if crossed
        else f"served traffic within thresholds ({len(measurements)} comparisons, {result['rows']} rows)"
    )
    window = result["window"]
    return drift_page(
        span=None,
        title=f"Served traffic of {result['model_name']}: {window['since_utc']} to {window['until_utc']}",
        verdict=Verdict(not result["alert"], headline, result["evidence"]),
        notes=result["notes"],
        measurements=measurements,
    )


def _worst(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per check and feature, the measurement furthest above (or nearest to) its threshold."""
    worst: dict[tuple[str, str], dict[str, Any]] = {}
    for m in result["measurements"]:
        if m["observed"] is None:
            continue
        key = (m["check"], m["feature"])
        if key not in worst or m["observed"] / m["threshold"] > worst[key]["observed"] / worst[key]["threshold"]:
            worst[key] = m
    return [worst[key] for key in sorted(worst)]


def report_markdown(result: dict[str, Any]) -> str:
    """The report: verdict and evidence, notes, the answers' distribution, then every measurement."""
    window = result["window"]
    verdict = "ALERT" if result["alert"] else "no alert"
    lines = [
        f"# Served traffic of {result['model_name']} ({result['pipeline']}): {verdict}",
        "",
        f"Window [{window['since_utc']}, {window['until_utc']}): {result['rows']} logged rows "
        f"({', '.join(f'version {v}: {n}' for v, n in result['rows_per_version'].items())}); trained on spans "
        f"{', '.join(f'{v}: {s}' for v, s in result['trained_on_spans'].items())}.",
        "",
    ]
    if result["evidence"]:
        lines += ["## Thresholds crossed", "", *(f"- {line}" for line in result["evidence"]), ""]
    if result["notes"]:
        lines += ["## Notes", "", *(f"- {note}" for note in result["notes"]), ""]
    predictions = result["predictions"]
    lines += ["## Served probabilities", "", f"{predictions['count']} answers with a probability."]
    if predictions.get("quantiles"):
        quantiles = predictions["quantiles"]
        lines += [
            f" Mean {predictions['mean']:.4f}.",
            "",
            "| quantile | " + " | ".join(quantiles) + " |",
            "|---|" + "---|" * len(quantiles),
            "| probability | " + " | ".join(f"{v:.4f}" for v in quantiles.values()) + " |",
            "",
            "| bin | " + " | ".join(_bins(predictions["histogram"]["edges"])) + " |",
            "|---|" + "---|" * len(predictions["histogram"]["counts"]),
            "| answers | " + " | ".join(str(c) for c in predictions["histogram"]["counts"]) + " |",
        ]
    lines += ["", "## Every comparison", "", "| check | feature | metric | observed | threshold | crossed | compared |"]
    lines.append("|---|---|---|---|---|---|---|")
    for m in result["measurements"]:
        observed = "absent" if m["observed"] is None else f"{m['observed']:.4f}"
        crossed = "**yes**" if m["failed"] else "no"
        lines.append(
            f"| {m['check']} | {m['feature']} | {m['comparator']} | {observed} | {m['threshold']:g} | {crossed} | "
            f"{m['compared']} |"
        )
    return "\n".join(lines) + "\n"


def _bins(edges: list[float]) -> list[str]:
    return [f"{low:.1f}-{high:.1f}" for low, high in pairwise(edges)]


def plot_png(result: dict[str, Any]) -> bytes:
    """Observed / threshold per feature (the worst comparison of each) beside the served probabilities' histogram."""
    from pipeline_components.reports.charts import BAD, INFO, OK, figure_of

    worst = _worst(result)
    with figure_of(11, 1.5 + 0.22 * max(len(worst), 4)) as figure:
        bars, histogram = figure.subplots(1, 2, width_ratios=[3, 2])
        ratios = [m["observed"] / m["threshold"] for m in worst]
        rows = list(range(len(worst)))[::-1]
        bars.barh(rows, ratios, color=[BAD if m["failed"] else OK for m in worst], height=0.7)
        bars.set_yticks(rows, [f"{m['check']}: {m['feature']}" for m in worst])
        bars.axvline(1.0, color="black", linestyle=(0, (4, 3)), linewidth=1)
        bars.set_xlabel("observed / threshold (above 1: crossed)")
        bars.set_title("skew and drift of the served features")
        predictions = result["predictions"]
        if predictions.get("histogram"):
            edges = predictions["histogram"]["edges"]
            histogram.stairs(predictions["histogram"]["counts"], edges, fill=True, color=INFO)
        histogram.set_xlabel("served probability")
        histogram.set_ylabel("answers")
        histogram.set_title(f"{predictions['count']} answers")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
        return buffer.getvalue()
