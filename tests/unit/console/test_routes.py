"""The console's routes in the plugin's app: who sees what, who may act, and what a foreign page cannot make it do.

Airflow's auth manager is its SimpleAuthManager (viewer: read only; admin: may trigger); the caller is given as the
user Airflow's ``get_user`` would resolve (the login itself: tests/e2e/test_scheduler_rest.py). The runs come from
Airflow's tables in an in-memory database (this process has no Airflow database of its own), and the trigger is
recorded here instead of creating a run: tests/e2e/test_console_and_approval.py triggers for real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.api_fastapi.core_api.security import get_user
from fastapi.testclient import TestClient

from pipeline_components.console import routes
from pipeline_components.console.actions import ActionRequest
from pipeline_components.orchestration import plugin
from pipeline_components.orchestration.plugin import RunwayPlugin, create_app
from pipeline_components.settings import Settings
from tests.unit.console.model_store import model_store
from tests.unit.console.page_html import parse
from tests.unit.orchestration.test_plugin import PenguinsOnly

ADMIN = SimpleAuthManagerUser(username="admin", role="admin")
VIEWER = SimpleAuthManagerUser(username="watcher", role="viewer")
HEADERS = {"X-Runway-Console": "1", "Content-Type": "application/json"}


@pytest.fixture
def triggered(isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ActionRequest, str]]:
    monkeypatch.setattr(plugin, "get_auth_manager", SimpleAuthManager)
    monkeypatch.setattr(routes, "pipeline_runs", lambda pipeline: [])
    model_store(isolated_settings.model_store, "penguins_species", (1, 2), {"stable": 2})
    calls: list[tuple[str, ActionRequest, str]] = []

    def trigger(pipeline: str, request: ActionRequest, *, user_name: str) -> str:
        calls.append((pipeline, request, user_name))
        return "manual__2026-12-07T00:00:00+00:00"

    monkeypatch.setattr(routes, "trigger", trigger)
    return calls


def _as(user: SimpleAuthManagerUser | None) -> TestClient:
    app = create_app()
    if user is not None:
        app.dependency_overrides[get_user] = lambda: user
    return TestClient(app, base_url="http://localhost:8080")


def _post(client: TestClient, body: Any, **headers: str) -> Any:
    return client.post("/console/penguins/actions", json=body, headers={**HEADERS, **headers})


def test_nothing_without_a_login(triggered: list[Any]) -> None:
    anonymous = _as(None)
    for path in ("/console/", "/console/penguins", "/console/static/console.js", "/console/dag/penguins_pipeline"):
        assert anonymous.get(path).status_code == 401, path
    assert _post(anonymous, {"action": "rollback", "version": None}).status_code == 401
    assert triggered == []


def test_a_viewer_sees_the_console_without_buttons_and_cannot_act(triggered: list[Any]) -> None:
    viewer = _as(VIEWER)
    page = viewer.get("/console/penguins")
    assert page.status_code == 200
    assert not [e for e in parse(page.text).walk() if e.tag == "button" or "data-action" in e.attrs]
    assert [
        row.attrs["data-version"]
        for row in parse(page.text).by_id("versions").find("tr")
        if "data-version" in row.attrs
    ] == ["2", "1"]
    for body in ({"action": "promote", "version": 1}, {"action": "rollback", "version": None}):
        refused = _post(viewer, body)
        assert refused.status_code == 403 and "penguins_serving" in refused.json()["detail"]
    assert triggered == []


def test_an_operator_promotes_and_rolls_back_as_themselves(triggered: list[Any]) -> None:
    admin = _as(ADMIN)
    page = parse(admin.get("/console/penguins").text)
    assert [b.attrs["data-version"] for b in page.find("button", data_action="promote")] == ["1"]
    answer = _post(admin, {"action": "promote", "version": 1}, Origin="http://localhost:8080")
    assert answer.status_code == 200, answer.text
    assert answer.json()["dag_run_id"] == "manual__2026-12-07T00:00:00+00:00"
    assert answer.json()["url"] == "/dags/penguins_serving/runs/manual__2026-12-07T00%3A00%3A00%2B00%3A00"
    assert _post(admin, {"action": "rollback", "version": None}).status_code == 200
    assert [(p, r.conf, u) for p, r, u in triggered] == [
        ("penguins", {"action": "promote", "version": 1}, "admin"),
        ("penguins", {"action": "rollback", "version": None}, "admin"),
    ]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        pytest.param({"action": "promote", "version": 7}, "version 7 is not in the model store", id="unknown-version"),
        pytest.param({"action": "promote"}, "promote needs a version number", id="no-version"),
        pytest.param({"action": "delete", "version": 1}, '"action": "promote" | "rollback"', id="unknown-action"),
    ],
)
def test_a_wrong_action_is_refused_with_what_is_wrong(triggered: list[Any], body: Any, says: str) -> None:
    answer = _post(_as(ADMIN), body)
    assert answer.status_code == 400 and says in answer.json()["detail"]
    assert triggered == []


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Runway-Console": ""}, id="a-form-without-the-console-header"),
        pytest.param({"Origin": "https://evil.example"}, id="a-foreign-origin"),
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="a-cross-site-fetch"),
    ],
)
def test_a_request_from_another_site_cannot_act(triggered: list[Any], headers: dict[str, str]) -> None:
    answer = _post(_as(ADMIN), {"action": "rollback", "version": None}, **headers)
    assert answer.status_code == 403
    assert triggered == []


def test_a_form_post_cannot_act(triggered: list[Any]) -> None:
    """What a foreign page's form can send: no custom header, a form body."""
    answer = _as(ADMIN).post("/console/penguins/actions", data={"action": "rollback"})
    assert answer.status_code == 403 and triggered == []


def test_the_console_runs_only_its_own_script_and_styles(triggered: list[Any]) -> None:
    admin = _as(ADMIN)
    answer = admin.get("/console/penguins")
    policy = dict(part.strip().split(" ", 1) for part in answer.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'self'" and "unsafe" not in answer.headers["content-security-policy"]
    page = parse(answer.text)
    scripts = [e for e in page.walk() if e.tag == "script"]
    assert [s.attrs["src"] for s in scripts] == ["/runway/console/static/console.js"] and not scripts[0].text.strip()
    assert not [
        e for e in page.walk() if e.tag == "style" or "style" in e.attrs or any(a.startswith("on") for a in e.attrs)
    ]
    script = admin.get("/console/static/console.js")
    assert script.status_code == 200 and "X-Runway-Console" not in script.text  # the header's name comes from the page
    assert "fetch(" in script.text and script.headers["content-type"].startswith("text/javascript")
    css = admin.get("/console/static/console.css").text
    assert ".verdict" in css and "span.label" in css
    assert admin.get("/console/static/..%2Fpage.py").status_code == 404


def test_a_user_reads_only_the_pipelines_airflow_lets_them_read(
    triggered: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugin, "get_auth_manager", PenguinsOnly)
    viewer = _as(VIEWER)
    assert viewer.get("/console/flights").status_code == 403
    assert viewer.get("/console/penguins").status_code == 200
    listed = parse(viewer.get("/console/").text).find("a")
    assert [a.attrs["data-pipeline"] for a in listed] == ["penguins"]
    assert viewer.get("/console/no-such-pipeline").status_code == 403  # a refusal says nothing of what exists


def test_airflow_links_the_console_from_its_navigation_and_a_pipelines_pages(triggered: list[Any]) -> None:
    views = {view["destination"]: view for view in RunwayPlugin.external_views}
    assert views["nav"]["href"] == "/runway/console/"
    assert views["dag"]["href"] == "/runway/console/dag/{DAG_ID}"
    assert views["dag_run"]["href"] == "/runway/console/dag/{DAG_ID}?run={RUN_ID}"
    admin = _as(ADMIN)
    for dag_id in ("penguins_pipeline", "penguins_serving"):
        moved = admin.get(f"/console/dag/{dag_id}", params={"run": "manual__1"}, follow_redirects=False)
        assert moved.status_code == 303 and moved.headers["location"] == "/runway/console/penguins?run=manual__1"
    assert admin.get("/console/dag/unrelated", follow_redirects=False).status_code == 404


def test_console_index_and_static_files_ship_with_the_package() -> None:
    assert (Path(routes.__file__).parent / "static" / "console.js").is_file()


def test_a_trigger_that_meets_sqlites_write_lock_is_retried_and_then_refused_with_nothing_created(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The embedded database's lock (the scheduler writing): a stand-in for trigger_dag raises what SQLAlchemy
    raises then; the console retries, and answers 503 once the lock outlasts every retry."""
    from types import SimpleNamespace

    from airflow.api.common import trigger_dag as airflow_trigger
    from sqlalchemy.exc import OperationalError

    from pipeline_components.console import actions

    calls: list[str] = []
    outcomes: list[Any] = [OperationalError("INSERT", {}, Exception("database is locked"))] * 2
    outcomes.append(SimpleNamespace(run_id="manual__1"))

    def locked_then_free(dag_id: str, **kwargs: Any) -> Any:
        calls.append(dag_id)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(airflow_trigger, "trigger_dag", locked_then_free)
    monkeypatch.setattr(actions, "LOCK_RETRIES_S", (0.0, 0.0, 0.0))
    request = actions.parse_action({"action": "rollback"}, versions=[1, 2])
    assert actions.trigger("penguins", request, user_name="operator") == "manual__1"
    assert calls == ["penguins_serving"] * 3

    outcomes[:] = [OperationalError("INSERT", {}, Exception("database is locked"))] * 4
    with pytest.raises(actions.ActionRefused, match="stayed locked through 4 tries; nothing was triggered") as refused:
        actions.trigger("penguins", request, user_name="operator")
    assert refused.value.status == 503
