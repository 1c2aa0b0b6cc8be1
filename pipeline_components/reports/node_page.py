"""The page of one node's execution, linked from its Airflow task ("Report").

TFX's artifacts are binary protos; an operator needs a page: which features are anomalous and why, the metrics
against the baseline and the thresholds, rows per split, the version pushed, a gate's verdict. Pages are written
under ``$RUNWAY_HOME/reports/<pipeline>/<run id>/<node>.html`` (``store.py``) and served by the Airflow plugin
(``orchestration/plugin.py``) at ``/runway/reports/...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline_components.reports.render import Verdict, cell, render
from pipeline_components.reports.store import report_path, write_page
from pipeline_components.settings import Settings

# The figures that make a page worth reading (runtime/node_figures.py); other nodes get none.
_READABLE = {"rows", "anomaly_count", "metrics", "pushed", "gate_passed"}


def _verdict(result: dict[str, Any]) -> Verdict:
    """What the page says first, from the most decisive fact the node has."""
    figures = result.get("figures", {})
    status, reason = result.get("status"), str(result.get("reason", ""))
    if status == "gate_failed":
        return Verdict(False, "gate failed: the run stops here", [reason])
    if status == "skipped":
        return Verdict(None, "skipped", [reason])
    if "gate_passed" in figures:
        return Verdict(bool(figures["gate_passed"]), str(figures.get("gate_summary", "")), figures["gate_failures"])
    if "metrics" in figures:
        blessed = bool(figures.get("blessed"))
        return Verdict(blessed, "blessed" if blessed else "not blessed", figures.get("failures", []))
    if "anomaly_count" in figures:
        count = figures["anomaly_count"]
        return Verdict(not count, f"{count} anomalies against the committed schema" if count else "no anomalies")
    if "pushed" in figures:
        headline = f"pushed version {figures['version']}" if figures["pushed"] else "nothing pushed"
        return Verdict(True if figures["pushed"] else None, headline)
    if "rows" in figures:
        return Verdict(None, f"{sum(figures['rows'].values())} rows")
    return Verdict(True, "succeeded")


def _metric_rows(metrics: dict[str, float]) -> list[list[Any]]:
    return [
        [name, f"{metrics[name]:.4f}", f"{metrics[name + '_diff']:+.4f}" if name + "_diff" in metrics else "-"]
        for name in sorted(k for k in metrics if not k.endswith("_diff"))
    ]


def node_page(result: dict[str, Any]) -> str:
    """The page of a node's result (``runtime/node.py``'s summary, with ``status`` and ``reason`` when it did not
    simply succeed)."""
    figures = result.get("figures", {})
    own_page = Path(str(figures.get("report", "")))  # a gate component's own page, filed beside this one
    anomalies = [
        [a["split"], cell(a["feature"], "bad"), a["short"], a["description"]] for a in figures.get("anomalies", [])
    ]
    outputs = result.get("outputs", {})
    return render(
        "node.html",
        title=f"{result['node']} — {result['pipeline']}",
        run_id=result["run_id"],
        verdict=_verdict(result),
        parameters=result.get("parameters_applied", []),
        rows=[[split, count] for split, count in figures.get("rows", {}).items()],
        anomalies=anomalies,
        metrics=_metric_rows(figures["metrics"]) if "metrics" in figures else [],
        own_page=own_page.name if own_page.name.endswith(".html") else "",
        push=figures if figures.get("pushed") else None,
        artifacts=[[key, a["type"], a["uri"]] for key, artifacts in sorted(outputs.items()) for a in artifacts],
        seconds=result.get("seconds"),
    )


def write_node_report(settings: Settings, result: dict[str, Any]) -> Path | None:
    """Write the node's page if it has anything a person reads; return its path.

    Args:
        settings: where ``$RUNWAY_HOME`` is.
        result: the node's result (``runtime/node.py``).

    Returns:
        The page's path, or None for a node with nothing to read (Transform, Trainer).
    """
    if not (result.get("figures", {}).keys() & _READABLE) and not result.get("status"):
        return None
    path = report_path(settings, result["pipeline"], result["run_id"], result["node"])
    return write_page(path, node_page(result))
