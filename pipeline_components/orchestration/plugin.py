"""Airflow plugin: the pages runway writes for operators, served inside Airflow, and a "Report" link on tasks.

Registered through the ``airflow.plugins`` entry point (pyproject.toml), so every Airflow that has the project
installed loads it: the API server serves ``/runway/reports/<pipeline>/<run id>/<node>.html`` (written by the
runtime, see ``runtime/reports.py``) and ``/runway/`` lists them; each TFX node task gets a "Report" extra link
to its page. Pages are read-only files under ``$RUNWAY_HOME/reports``; nothing outside that folder is served.
"""

from __future__ import annotations

import html
from pathlib import Path

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from pipeline_components.orchestration.links import URL_PREFIX, NodeReportLink
from pipeline_components.settings import Settings


def _reports_root() -> Path:
    return (Settings.from_env().home / "reports").resolve()


def create_app() -> FastAPI:
    app = FastAPI(title="runway reports", docs_url=None, redoc_url=None)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        root = _reports_root()
        pages = sorted(root.glob("*/*/*.html"), reverse=True) if root.is_dir() else []
        items = "".join(
            f"<li><a href='{URL_PREFIX}/reports/{html.escape(str(p.relative_to(root)))}'>"
            f"{html.escape(str(p.relative_to(root)))}</a></li>"
            for p in pages[:500]
        )
        return (
            f"<!doctype html><html><body><h1>runway reports</h1><ul>{items or '<li>none yet</li>'}</ul></body></html>"
        )

    @app.get("/reports/{path:path}")
    def report(path: str) -> FileResponse:
        root = _reports_root()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.is_file() or target.suffix != ".html":
            raise HTTPException(status_code=404, detail=f"no report {path}")
        return FileResponse(target, media_type="text/html")

    return app


class RunwayPlugin(AirflowPlugin):
    name = "runway"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "runway reports"}]
    operator_extra_links = [NodeReportLink()]
