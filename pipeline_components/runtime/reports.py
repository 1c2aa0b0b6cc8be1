"""Readable reports of a node's execution, one HTML page per node and run, linked from the Airflow task.

TFX's artifacts are binary protos; an operator needs a page: which features are anomalous and why, the metrics
against the baseline and the thresholds, rows per split, the version pushed. Pages are written under
``$RUNWAY_HOME/reports/<pipeline>/<run id>/<node>.html`` and served by the Airflow plugin
(``orchestration/plugin.py``) at ``/runway/reports/...``.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from pipeline_components.settings import Settings

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #1b2631; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #d5d8dc; padding: 4px 10px; text-align: left; }
th { background: #f4f6f7; }
.ok { color: #1e8449; font-weight: bold; } .bad { color: #b03a2e; font-weight: bold; }
code { background: #f4f6f7; padding: 1px 4px; }
"""


def report_path(settings: Settings, pipeline: str, run_id: str, node_id: str) -> Path:
    safe_run = re.sub(r"[^A-Za-z0-9_.+-]", "_", run_id)
    return settings.home / "reports" / pipeline / safe_run / f"{node_id}.html"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _sections(result: dict[str, Any]) -> list[str]:
    figures = result.get("figures", {})
    parts: list[str] = []
    status = result.get("status")
    if status:
        css = "bad" if status == "gate_failed" else "ok"
        parts.append(f"<p class='{css}'>{html.escape(status)}</p><pre>{html.escape(result.get('reason', ''))}</pre>")
    if result.get("parameters_applied"):
        parts.append("<h2>Run parameters applied</h2><ul>")
        parts.extend(f"<li><code>{html.escape(c)}</code></li>" for c in result["parameters_applied"])
        parts.append("</ul>")
    if "rows" in figures:
        parts.append("<h2>Rows</h2>" + _table(["split", "rows"], [[k, v] for k, v in figures["rows"].items()]))
    if "anomaly_count" in figures:
        count = figures["anomaly_count"]
        verdict = "<span class='ok'>none</span>" if not count else f"<span class='bad'>{count}</span>"
        parts.append(f"<h2>Anomalies against the committed schema: {verdict}</h2>")
        if count:
            rows = [[a["split"], a["feature"], a["short"], a["description"]] for a in figures["anomalies"]]
            parts.append(_table(["split", "feature", "anomaly", "observed vs expected"], rows))
    if "metrics" in figures:
        metrics = figures["metrics"]
        rows = [
            [name, f"{metrics[name]:.4f}", f"{metrics[name + '_diff']:+.4f}" if name + "_diff" in metrics else "-"]
            for name in sorted(k for k in metrics if not k.endswith("_diff"))
        ]
        blessed = figures.get("blessed")
        verdict = "<span class='ok'>blessed</span>" if blessed else "<span class='bad'>not blessed</span>"
        parts.append(f"<h2>Evaluation: {verdict}</h2>" + _table(["metric", "value", "vs baseline"], rows))
        if figures.get("failures"):
            parts.append("<h3>Thresholds not met</h3><ul>")
            parts.extend(f"<li>{html.escape(f)}</li>" for f in figures["failures"])
            parts.append("</ul>")
    if "gate_passed" in figures:  # a custom gate component's verdict (figures.write_gate)
        css, word = ("ok", "passed") if figures["gate_passed"] else ("bad", "failed")
        summary = html.escape(str(figures.get("gate_summary", "")))
        parts.append(f"<h2>Gate: <span class='{css}'>{word}</span></h2><p>{summary}</p>")
        if figures.get("gate_failures"):
            parts.append("<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in figures["gate_failures"]) + "</ul>")
        page = Path(str(figures.get("report", "")))
        if page.name.endswith(".html"):  # the component's own page, filed beside this one
            parts.append(f"<p><a href='{html.escape(page.name)}'>Full report: {html.escape(page.name)}</a></p>")
    if "pushed" in figures:
        if figures["pushed"]:
            parts.append(f"<h2>Pushed version {figures['version']}</h2><p><code>{figures['destination']}</code></p>")
        else:
            parts.append("<h2>Nothing pushed</h2>")
    outputs = result.get("outputs", {})
    if outputs:
        rows = [[key, a["type"], a["uri"]] for key, artifacts in sorted(outputs.items()) for a in artifacts]
        parts.append("<h2>Artifacts</h2>" + _table(["output", "type", "uri"], rows))
    return parts


def write_node_report(settings: Settings, result: dict[str, Any]) -> Path | None:
    """Write the node's page if it has anything a person reads; return its path."""
    figures = result.get("figures", {})
    readable = {"rows", "anomaly_count", "metrics", "pushed", "gate_passed"}
    if not (figures.keys() & readable) and not result.get("status"):
        return None
    path = report_path(settings, result["pipeline"], result["run_id"], result["node"])
    title = f"{result['node']} — {result['pipeline']} — {result['run_id']}"
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        + "".join(_sections(result))
        + "</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
