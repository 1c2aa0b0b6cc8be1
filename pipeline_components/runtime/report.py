"""Old path of ``runtime/run_summary.py`` (what a run did, from ML Metadata).

Kept so that modules not yet moved to the new path keep importing; new code imports from the new one.
"""

from __future__ import annotations

from pipeline_components.runtime.run_summary import RunReader, evaluation_summary, run_report

__all__ = ["RunReader", "evaluation_summary", "run_report"]
