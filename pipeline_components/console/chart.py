"""The console's trend chart: the evaluation metric and the data volume of each run, oldest to newest.

Drawn with matplotlib (Agg, no pyplot: ``reports/charts.py``'s figure and style) and sent as an ``<img>`` with an
SVG data URL: the console's Content-Security-Policy allows no inline style, which an inline SVG's style attributes
would need, while an image is drawn whole.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from pipeline_components.console.runs import RunRecord
from pipeline_components.reports.charts import INFO, MUTED, figure_of


def trend_chart(runs: Sequence[RunRecord], *, metric: str) -> str:
    """The chart as a ``data:image/svg+xml`` URL; "" when no run has an evaluation or a row count yet.

    Args:
        runs: newest first, as ``read_runs`` returns them.
        metric: the evaluation metric the configuration gates on.
    """
    points = [run for run in reversed(runs) if run.metric(metric) is not None or run.rows is not None]
    # Each run: the candidate's metric (line), the served model's on the same new span (dashed), rows (bars).
    if not points:
        return ""
    with figure_of(8.5, 3.6) as figure:
        rows_axes = figure.add_subplot()
        positions = list(range(len(points)))
        rows_axes.bar(positions, [run.rows or 0 for run in points], color="#d6eaf8", label="rows ingested")
        rows_axes.set_ylabel("rows ingested", color=MUTED)
        metric_axes = rows_axes.twinx()
        measured = [(x, run.metric(metric)) for x, run in zip(positions, points, strict=True)]
        measured = [(x, value) for x, value in measured if value is not None]
        metric_axes.plot(
            [x for x, _ in measured], [value for _, value in measured], color=INFO, marker="o", label=metric
        )
        # The model that was serving, on each new span (the Evaluator's baseline): how the world treats it.
        served = [(x, run.served_metric(metric)) for x, run in zip(positions, points, strict=True)]
        served = [(x, value) for x, value in served if value is not None]
        if served:
            metric_axes.plot(
                [x for x, _ in served], [value for _, value in served], color=MUTED, marker="s", linestyle="--",
                label=f"served model on the new span ({metric})",
            )  # fmt: skip
            metric_axes.legend(loc="lower left", fontsize=8, frameon=False)
        metric_axes.set_ylabel(metric, color=INFO)
        metric_axes.spines["right"].set_visible(True)
        labels = [run.started.strftime("%m-%d %H:%M") if run.started else run.run_id[:16] for run in points]
        rows_axes.set_xticks(positions, labels, rotation=30, ha="right", fontsize=8)
        rows_axes.set_title(f"{metric} (line) and rows ingested (bars), run after run")
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue().encode()).decode()
