"""Old path of ``reports/node_page.py`` (a node's page) and ``reports/store.py`` (where pages are filed).

Kept so that modules not yet moved to the new paths keep importing (and the warm runtime's preload list); new
code imports from the new ones.
"""

from __future__ import annotations

from pipeline_components.reports.node_page import write_node_report
from pipeline_components.reports.store import report_path

__all__ = ["report_path", "write_node_report"]
