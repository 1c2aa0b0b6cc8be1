"""The console's routes in the plugin's FastAPI app (``orchestration/plugin.py`` includes them under ``/console``).

- ``GET /console/``: the pipelines the user may read;
- ``GET /console/<pipeline>``: the console (``page.py``), to users who may read the pipeline's DAG; buttons only
  for those who may also trigger ``<pipeline>_serving``;
- ``GET /console/dag/<dag id>``: where Airflow's DAG and run pages link (``external_views``): the DAG's console;
- ``POST /console/<pipeline>/actions``: promote or roll back (``actions.py``): 403 unless the user may trigger
  ``<pipeline>_serving`` and the request comes from the console's own script;
- ``GET /console/static/console.js|console.css``.

The page is the project's own escaped HTML: it is sent with a strict Content-Security-Policy (scripts and styles
only from this origin, no inline script, framed only by Airflow's UI), not the report pages' sandbox, because its
script must send same-origin requests with the user's login.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from pipeline_components.config import PipelineConfig, find_pipeline_configs, load_pipeline_config
from pipeline_components.console.actions import ActionRefused, check_same_origin, grid_url, parse_action, trigger
from pipeline_components.console.page import CONSOLE_PREFIX, build_console, render_index
from pipeline_components.console.runs import RunRecord, read_runs
from pipeline_components.console.traffic import read_windows
from pipeline_components.fleet import read_fleet_state
from pipeline_components.fleet.store import ModelStore
from pipeline_components.orchestration import dag_id_for, serving_dag_id_for
from pipeline_components.reports.render import STYLESHEET
from pipeline_components.settings import Settings

STATIC = Path(__file__).parent / "static"
RUNS_SHOWN = 50
CONSOLE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
SUFFIXES = ("_pipeline", "_serving", "_data")  # the DAGs of a pipeline (orchestration/__init__.py)

Permission = Callable[[BaseUser, str], bool]


def _config(pipeline: str) -> PipelineConfig:
    path = find_pipeline_configs(Settings.from_env().config_dir).get(pipeline)
    if path is None:
        raise HTTPException(status_code=404, detail=f"no pipeline {pipeline} (no configs/{pipeline}.yaml)")
    return load_pipeline_config(path, require_schema=False)


def pipeline_runs(pipeline: str) -> list[RunRecord]:
    """The pipeline's newest runs, from the API server's own database session."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return read_runs(session, dag_id_for(pipeline), limit=RUNS_SHOWN)


def console_router(*, may_read: Permission, may_trigger: Permission) -> APIRouter:
    """The console's routes; the plugin's app authenticates every request before they run.

    Args:
        may_read: whether a user may read a pipeline's DAG (the plugin's check, shared with the report pages).
        may_trigger: whether a user may create runs of a pipeline's ``_serving`` DAG.
    """
    router = APIRouter()

    def readable(user: BaseUser, pipeline: str) -> PipelineConfig:
        if not may_read(user, pipeline):  # before looking: a refusal says nothing of what exists
            raise HTTPException(status_code=403, detail=f"you may not read the DAG {dag_id_for(pipeline)}")
        return _config(pipeline)

    @router.get("/", response_class=HTMLResponse)
    def index(user: GetUserDep) -> HTMLResponse:
        names = [n for n in find_pipeline_configs(Settings.from_env().config_dir) if may_read(user, n)]
        return HTMLResponse(render_index(names), headers=CONSOLE_HEADERS)

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        if name == "console.js":
            return Response((STATIC / name).read_text(), media_type="text/javascript", headers=CONSOLE_HEADERS)
        if name == "console.css":
            css = STYLESHEET.read_text() + "\n" + (STATIC / name).read_text()
            return Response(css, media_type="text/css", headers=CONSOLE_HEADERS)
        raise HTTPException(status_code=404, detail=f"no static file {name}")

    @router.get("/dag/{dag_id}")
    def from_dag(dag_id: str, run: str = "") -> RedirectResponse:
        pipeline = next((dag_id.removesuffix(s) for s in SUFFIXES if dag_id.endswith(s)), None)
        if not pipeline:
            raise HTTPException(status_code=404, detail=f"the DAG {dag_id} has no model console")
        query = f"?{urlencode({'run': run})}" if run else ""
        return RedirectResponse(f"{CONSOLE_PREFIX}/{pipeline}{query}", status_code=303)

    @router.get("/{pipeline}", response_class=HTMLResponse)
    def console(pipeline: str, user: GetUserDep, run: str = "") -> HTMLResponse:
        config = readable(user, pipeline)
        settings = Settings.from_env()
        page = build_console(
            config=config,
            store=ModelStore(settings.model_store),
            fleet=read_fleet_state(settings.home),
            runs=pipeline_runs(pipeline),
            can_act=may_trigger(user, pipeline),
            selected_run=run,
            windows=read_windows(settings.home, pipeline),
        )
        return HTMLResponse(page, headers=CONSOLE_HEADERS)

    @router.post("/{pipeline}/actions")
    async def act(pipeline: str, user: GetUserDep, request: Request) -> JSONResponse:
        try:
            check_same_origin(request.headers)
            config = readable(user, pipeline)
            if not may_trigger(user, pipeline):
                raise ActionRefused(f"you may not trigger {serving_dag_id_for(pipeline)}", status=403)
            try:
                body: Any = await request.json()
            except ValueError:
                raise ActionRefused("the body must be JSON", status=400) from None
            store = ModelStore(Settings.from_env().model_store)
            action = parse_action(body, versions=store.versions_on_disk(config.serving.model_name))
            run_id = trigger(pipeline, action, user_name=user.get_name())
        except ActionRefused as refused:
            return JSONResponse({"detail": str(refused)}, status_code=refused.status)
        dag_id = serving_dag_id_for(pipeline)
        return JSONResponse(
            {
                "dag_id": dag_id,
                "dag_run_id": run_id,
                "conf": action.conf,
                "action": action.action,
                "user": user.get_name(),
                "url": grid_url(dag_id, run_id),
            }
        )

    return router
