"""The report pages served inside Airflow, and nothing else."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pipeline_components.orchestration.links import NodeReportLink, report_url
from pipeline_components.orchestration.operators import TfxNodeOperator
from pipeline_components.orchestration.plugin import RunwayPlugin, create_app
from pipeline_components.settings import Settings


@pytest.fixture
def client(isolated_settings: Settings) -> TestClient:
    run = isolated_settings.home / "reports" / "flights" / "manual__1"
    run.mkdir(parents=True)
    (run / "Evaluator.html").write_text("<html>auc 0.73</html>")
    (isolated_settings.home / "secret.txt").write_text("not for the browser")
    return TestClient(create_app())


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
