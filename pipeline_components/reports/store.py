"""Where pages are filed, and how they are written: ``$RUNWAY_HOME/reports/<pipeline>/<run id>/<node>[.<what>].html``.

The Airflow plugin (``orchestration/plugin.py``) serves that folder at ``/runway/reports/...`` while runs write into
it, so every page is written atomically (``durable.atomic_write``): a reader sees the old page or the new one,
never half of one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pipeline_components.durable import atomic_write
from pipeline_components.settings import Settings


def report_path(settings: Settings, pipeline: str, run_id: str, node_id: str) -> Path:
    """The page of ``node_id`` in run ``run_id`` (characters a file name cannot hold become ``_``)."""
    safe_run = re.sub(r"[^A-Za-z0-9_.+-]", "_", run_id)
    return settings.home / "reports" / pipeline / safe_run / f"{node_id}.html"


def write_page(path: Path, page: str) -> Path:
    """Write ``page`` to ``path`` atomically (its folder is created); return ``path``."""
    return atomic_write(path, page)


def page_path(context: Any, suffix: str) -> Path | None:
    """Where a component's own page goes: beside its node's page, ``<node>.<suffix>.html``.

    Args:
        context: the executor's ``BaseExecutor.Context`` (None when an executor is called directly, e.g. in tests).
        suffix: what the page is (``model``, ``infra``, ``drift``).

    Returns:
        The path, or None without a pipeline run to file it under.
    """
    if context is None or context.pipeline_info is None or not context.pipeline_run_id:
        return None
    node_id = context.pipeline_node.node_info.id if context.pipeline_node else "node"
    return report_path(Settings.from_env(), context.pipeline_info.id, context.pipeline_run_id, f"{node_id}.{suffix}")


def publish_page(context: Any, page: str, suffix: str) -> Path | None:
    """Write a component's own page beside its node's page (see ``page_path``), so that the task's link reaches it.

    Returns:
        The path written, or None without a pipeline run to file it under.
    """
    path = page_path(context, suffix)
    return write_page(path, page) if path is not None else None
