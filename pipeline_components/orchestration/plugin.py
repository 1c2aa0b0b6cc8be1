"""Airflow plugin: the pages runway writes for operators, served inside Airflow, and a "Report" link on tasks.

Registered through the ``airflow.plugins`` entry point (pyproject.toml), so every Airflow that has the project
installed loads it: the API server serves ``/runway/reports/<pipeline>/<run id>/<node>.html`` (written by the
runtime, see ``reports/``) and ``/runway/`` lists them; each TFX node task gets a "Report" extra link
to its page. Pages are read-only files under ``$RUNWAY_HOME/reports``; nothing outside that folder is served.
The model console (``pipeline_components/console``) is served under ``/runway/console/`` and linked from Airflow's
navigation and a pipeline's DAG and run pages (``external_views``); its actions need ``may_trigger``.

Airflow 3 does not authenticate a plugin's FastAPI app: the plugin must. Every route here resolves the caller with
Airflow's own dependency (``get_user``: the ``Authorization: Bearer`` token of the REST API, or the UI's session
cookie), so a request without a valid login gets 401, and a page of a pipeline is sent only to a user whom Airflow's
auth manager allows to read that pipeline's DAG (403 otherwise); the index lists only those pipelines.
"""

from __future__ import annotations

from pathlib import Path

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from pipeline_components.console.page import CONSOLE_PREFIX
from pipeline_components.console.routes import console_router
from pipeline_components.orchestration import dag_id_for, serving_dag_id_for
from pipeline_components.orchestration.links import URL_PREFIX, NodeReportLink
from pipeline_components.reports.render import Verdict, render
from pipeline_components.settings import Settings

_LISTED = 500  # newest pages on the index
# Pages are served from Airflow's own origin, and Great Expectations' Data Docs load scripts from public CDNs: a
# sandboxed page runs in an opaque origin, so no script in it can read Airflow's session or call its API as the
# user. Scripts still run (Data Docs need them) and links still open.
PAGE_HEADERS = {
    "Content-Security-Policy": "sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox",
    "X-Content-Type-Options": "nosniff",
}


def _reports_root() -> Path:
    return (Settings.from_env().home / "reports").resolve()


def _authorized(user: BaseUser, method: ResourceMethod, entity: DagAccessEntity, dag_id: str) -> bool:
    return bool(
        get_auth_manager().is_authorized_dag(
            method=method, access_entity=entity, details=DagDetails(id=dag_id), user=user
        )
    )


def may_read(user: BaseUser, pipeline: str) -> bool:
    """Whether Airflow's auth manager lets ``user`` read the task instances of ``pipeline``'s DAG."""
    return _authorized(user, "GET", DagAccessEntity.TASK_INSTANCE, dag_id_for(pipeline))


def may_trigger(user: BaseUser, pipeline: str) -> bool:
    """Whether Airflow's auth manager lets ``user`` create runs of ``pipeline``'s serving DAG (the console's
    promote and rollback)."""
    return _authorized(user, "POST", DagAccessEntity.RUN, serving_dag_id_for(pipeline))


def create_app() -> FastAPI:
    # Every route: an authenticated Airflow user (401 before anything is read).
    app = FastAPI(title="runway reports", docs_url=None, redoc_url=None, dependencies=[Depends(get_user)])

    @app.get("/", response_class=HTMLResponse)
    def index(user: GetUserDep) -> HTMLResponse:
        root = _reports_root()
        readable: dict[str, bool] = {}
        pages = []
        for path in sorted(root.glob("*/*/*.html"), reverse=True) if root.is_dir() else []:
            pipeline = path.relative_to(root).parts[0]
            if readable.setdefault(pipeline, may_read(user, pipeline)):
                pages.append(path)
        runs: dict[tuple[str, str], list[str]] = {}
        for path in pages[:_LISTED]:
            pipeline, run, name = path.relative_to(root).parts
            runs.setdefault((pipeline, run), []).append(name)
        headline = f"{len(pages)} pages" + (f", the newest {_LISTED} listed" if len(pages) > _LISTED else "")
        listing = render(
            "index.html",
            title="runway reports",
            verdict=Verdict(None, headline if pages else "no report yet: pages appear as runs execute"),
            prefix=f"{URL_PREFIX}/reports",
            runs=[{"pipeline": p, "run": r, "pages": sorted(names)} for (p, r), names in runs.items()],
        )
        return HTMLResponse(listing, headers=PAGE_HEADERS)

    @app.get("/reports/{path:path}")
    def report(path: str, user: GetUserDep) -> FileResponse:
        root = _reports_root()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or target == root:
            raise HTTPException(status_code=404, detail=f"no report {path}")
        pipeline = target.relative_to(root).parts[0]
        if not may_read(user, pipeline):  # before looking for the file: a refusal says nothing of what exists
            raise HTTPException(status_code=403, detail=f"you may not read the DAG {dag_id_for(pipeline)}")
        if not target.is_file() or target.suffix != ".html":
            raise HTTPException(status_code=404, detail=f"no report {path}")
        return FileResponse(target, media_type="text/html", headers=PAGE_HEADERS)

    # The model console (console/routes.py): the same login; reading and acting checked per pipeline.
    app.include_router(console_router(may_read=may_read, may_trigger=may_trigger), prefix="/console")
    return app


class RunwayPlugin(AirflowPlugin):
    name = "runway"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "runway reports"}]
    operator_extra_links = [NodeReportLink()]
    # The model console in Airflow's UI: in the navigation, and on a pipeline's DAG and run pages (Airflow puts
    # the DAG id and run id into the address).
    external_views = [
        {"name": "Model console", "href": f"{CONSOLE_PREFIX}/", "destination": "nav", "url_route": "runway-console"},
        {
            "name": "Model console",
            "href": f"{CONSOLE_PREFIX}/dag/{{DAG_ID}}",
            "destination": "dag",
            "url_route": "runway-console-dag",
        },
        {
            "name": "Model console",
            "href": f"{CONSOLE_PREFIX}/dag/{{DAG_ID}}?run={{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "runway-console-run",
        },
    ]
