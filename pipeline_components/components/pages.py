"""Where a custom component puts its own HTML page so that the Airflow task's "Report" link reaches it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def publish_page(context: Any, page: str, suffix: str) -> Path | None:
    """Write ``page`` beside the node's report page (``reports/<pipeline>/<run id>/<node>.<suffix>.html``).

    Args:
        context: the executor's ``BaseExecutor.Context`` (None when an executor is called directly, e.g. in tests).
        page: the HTML.
        suffix: what the page is (``model``, ``infra``).

    Returns:
        The path written, or None without a pipeline run to file it under.
    """
    if context is None or context.pipeline_info is None or not context.pipeline_run_id:
        return None
    from pipeline_components.runtime.reports import report_path
    from pipeline_components.settings import Settings

    node_id = context.pipeline_node.node_info.id if context.pipeline_node else "node"
    path = report_path(Settings.from_env(), context.pipeline_info.id, context.pipeline_run_id, f"{node_id}.{suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
