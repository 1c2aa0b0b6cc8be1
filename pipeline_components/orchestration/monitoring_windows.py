"""Where the monitoring's windows are filed, and where one may end; light (the standard library), so that the
DAG, the console and ``runway monitor`` share it without importing Airflow.

    $RUNWAY_HOME/reports/<pipeline>/monitoring-<end, UTC>/   result.json, report.html, report.md, ... (a judged window)
"""

from __future__ import annotations

import calendar
import re
import time
from pathlib import Path

RESULT_FILE = "result.json"  # what pipeline_components.monitoring writes into a window's folder (monitoring/report.py)
PARTIAL_GLOB = "*.tfrecord.partial"  # a request log file the server still writes (serving/request_log.py)

WINDOW_PREFIX = "monitoring-"  # reports/<pipeline>/monitoring-<until, UTC>/: result.json, report.html, ...


def windows_dir(home: Path, pipeline: str) -> Path:
    """Where the windows of ``pipeline`` are filed (beside its runs' pages: the plugin serves them)."""
    return home / "reports" / pipeline


def last_window(home: Path, pipeline: str) -> Path | None:
    """The newest window that was judged (it has a ``result.json``), or None."""
    judged = judged_windows(home, pipeline)
    return judged[-1] if judged else None


def judged_windows(home: Path, pipeline: str) -> list[Path]:
    """The folders of ``pipeline``'s judged windows (with a ``result.json``), oldest first."""
    return [path.parent for path in sorted(windows_dir(home, pipeline).glob(f"{WINDOW_PREFIX}*/{RESULT_FILE}"))]


QUEUE_MARGIN_S = 2  # a sampled request reaches its file within this (the server's writer queue)
OPENED = re.compile(r"-(\d{8}T\d{6}Z)-.*\.tfrecord\.partial$")  # serving/request_log.py's open-file names


def judged_until(prefix: Path, now: int) -> int:
    """The end of a window every request of which is in a closed request log file.

    The monitoring reads ``*.tfrecord`` files only once the servers have closed them; a file still open
    (``.partial``, named after the UTC second it was opened) holds requests answered since then. The window ends
    before the oldest open file, and before the last ``QUEUE_MARGIN_S`` seconds, so no request is left behind by
    this window and skipped by the next.
    """
    opened = [
        calendar.timegm(time.strptime(found.group(1), "%Y%m%dT%H%M%SZ"))
        for path in prefix.parent.glob(f"{prefix.name}-{PARTIAL_GLOB}")
        if (found := OPENED.search(path.name))
    ]
    return min([now, *opened]) - QUEUE_MARGIN_S
