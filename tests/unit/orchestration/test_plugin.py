"""The report pages served inside Airflow, only to Airflow users allowed to read the pipeline, and nothing else.

Airflow's auth manager here is its SimpleAuthManager (the embedded default); the login itself (a real token checked
against Airflow's database) is exercised against a real API server in tests/e2e/test_scheduler_rest.py. Here the
caller is given as the user Airflow's ``get_user`` would resolve, and the permission check is the real manager's.
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.api_fastapi.core_api.security import get_user
from fastapi.testclient import TestClient

from pipeline_components.orchestration import plugin
from pipeline_components.orchestration.links import NodeReportLink, report_url
from pipeline_components.orchestration.operators import TfxNodeOperator
from pipeline_components.orchestration.plugin import RunwayPlugin, create_app
from pipeline_components.settings import Settings

VIEWER = SimpleAuthManagerUser(username="watcher", role="viewer")


class PenguinsOnly(SimpleAuthManager):
    """An auth manager that lets users read only the penguins DAGs (as FAB or Keycloak can be set up to do;
    SimpleAuthManager's roles cover every DAG)."""

    def is_authorized_dag(self, *, details: Any = None, **kwargs: Any) -> bool:
        return bool(details is not None and details.id.startswith("penguins") and super().is_authorized_dag(
            details=details, **kwargs
        ))  # fmt: skip


def _app_as(user: SimpleAuthManagerUser | None) -> TestClient:
    app = create_app()
    if user is not None:
        app.dependency_overrides[get_user] = lambda: user
    return TestClient(app)


@pytest.fixture
def reports(isolated_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for pipeline, page in (("flights", "<html>auc 0.73</html>"), ("penguins", "<html>accuracy 0.97</html>")):
        run = isolated_settings.home / "reports" / pipeline / "manual__1"
        run.mkdir(parents=True)
        (run / "Evaluator.html").write_text(page)
    (isolated_settings.home / "secret.txt").write_text("not for the browser")
    monkeypatch.setattr(plugin, "get_auth_manager", SimpleAuthManager)
    return isolated_settings


@pytest.fixture
def client(reports: Settings) -> TestClient:
    return _app_as(VIEWER)


def test_no_page_and_no_listing_without_a_login(reports: Settings) -> None:
    anonymous = _app_as(None)
    for path in ("/", "/reports/flights/manual__1/Evaluator.html", "/reports/..%2Fsecret.txt", "/reports/none.html"):
        answer = anonymous.get(path)
        assert answer.status_code == 401, (path, answer.status_code)
        assert "auc" not in answer.text


def test_a_user_sees_only_the_pipelines_airflow_lets_them_read(
    reports: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plugin, "get_auth_manager", PenguinsOnly)
    client = _app_as(VIEWER)
    assert client.get("/reports/penguins/manual__1/Evaluator.html").status_code == 200
    refused = client.get("/reports/flights/manual__1/Evaluator.html")
    assert refused.status_code == 403 and "flights_pipeline" in refused.text and "auc" not in refused.text
    assert client.get("/reports/flights/manual__1/no-such-page.html").status_code == 403  # nothing said of what exists
    index = client.get("/").text
    assert "penguins/manual__1/Evaluator.html" in index and "flights/" not in index


def test_serves_and_lists_reports(client: TestClient) -> None:
    page = client.get("/reports/flights/manual__1/Evaluator.html")
    assert page.status_code == 200 and "auc 0.73" in page.text
    assert "flights/manual__1/Evaluator.html" in client.get("/").text


@pytest.mark.parametrize(
    "path", ["/reports/../secret.txt", "/reports/..%2F..%2Fsecret.txt", "/reports/flights/manual__1/none.html"]
)
def test_nothing_outside_the_reports_folder(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_plugin_registers_the_app_and_the_link() -> None:
    assert RunwayPlugin.fastapi_apps[0]["url_prefix"] == "/runway"
    assert any(isinstance(link, NodeReportLink) for link in RunwayPlugin.operator_extra_links)
    assert any(isinstance(link, NodeReportLink) for link in TfxNodeOperator.operator_extra_links)
    assert report_url("reports/flights/r/Evaluator.html") == "/runway/reports/flights/r/Evaluator.html"


def test_the_index_shows_hostile_names_as_text(client: TestClient, isolated_settings: Settings) -> None:
    run = isolated_settings.home / "reports" / "flights" / "<script>alert(1)<"
    run.mkdir(parents=True)
    (run / "Evaluator.html").write_text("<html>page</html>")
    index = client.get("/").text
    assert "<script>" not in index and "&lt;script&gt;alert(1)&lt;" in index
    assert "/runway/reports/flights/%3Cscript%3Ealert%281%29%3C/Evaluator.html" in index
    assert client.get("/reports/flights/%3Cscript%3Ealert%281%29%3C/Evaluator.html").status_code == 200


def test_pages_are_sandboxed_away_from_airflows_origin(client: TestClient) -> None:
    """A script in a served page (Great Expectations' Data Docs load theirs from CDNs) runs in an opaque origin:
    it cannot read Airflow's session or call its API as the user."""
    for path in ("/reports/flights/manual__1/Evaluator.html", "/"):
        headers = client.get(path).headers
        policy = [part.strip() for part in headers["content-security-policy"].split(";")]
        sandbox = next(part.split() for part in policy if part.startswith("sandbox"))
        assert "allow-same-origin" not in sandbox, path
        assert headers["x-content-type-options"] == "nosniff"
