"""The console's "Served traffic" section: the monitoring windows of a pipeline, newest first (docs/monitoring.md).

Read from the files ``<name>_monitoring`` leaves (``$RUNWAY_HOME/reports/<pipeline>/monitoring-<end>/result.json``):
no database, no TensorFlow. A window whose file cannot be read is left out (it may be being written).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline_components.orchestration.links import URL_PREFIX
from pipeline_components.orchestration.monitoring_windows import RESULT_FILE, judged_windows


@dataclass(frozen=True)
class WindowRecord:
    """One judged window of served traffic."""

    since_utc: str
    until_utc: str
    rows: int
    versions: str  # "version 3: 600 rows, ..."
    alert: bool
    crossed: list[str]  # "skew temp 0.994 > 0.5"
    report: str  # the page's URL under /runway


def read_windows(home: Path, pipeline: str, *, limit: int = 12) -> list[WindowRecord]:
    """The newest ``limit`` windows of ``pipeline`` under ``home``."""
    records = []
    for folder in reversed(judged_windows(home, pipeline)[-limit:]):
        try:
            result = json.loads((folder / RESULT_FILE).read_text())
            crossed = [
                f"{m['check']} {m['feature']} "
                + ("absent" if m["observed"] is None else f"{m['observed']:.3f} > {m['threshold']:g}")
                for m in result["measurements"]
                if m["failed"]
            ]
            records.append(
                WindowRecord(
                    since_utc=result["window"]["since_utc"],
                    until_utc=result["window"]["until_utc"],
                    rows=int(result["rows"]),
                    versions=", ".join(f"version {v}: {n} rows" for v, n in result["rows_per_version"].items()),
                    alert=bool(result["alert"]),
                    crossed=crossed,
                    report=f"{URL_PREFIX}/{(folder / 'report.html').relative_to(home)}",
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return records
