"""Run in Airflow's environment by tests/e2e/test_console_actions.py: the plugin's app in this process, on the real
Airflow database of ``AIRFLOW_HOME`` and Airflow's configured auth manager; the caller is the user named on the
command line (``name:role``), as Airflow's ``get_user`` would resolve a login. Prints one JSON line per request."""

from __future__ import annotations

import json
import sys

from airflow.api_fastapi.app import init_auth_manager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.api_fastapi.core_api.security import get_user
from fastapi.testclient import TestClient

from pipeline_components.orchestration.plugin import create_app


def main(user: str, body: str) -> None:
    init_auth_manager()
    name, role = user.split(":")
    app = create_app()
    app.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(username=name, role=role)
    client = TestClient(app)
    page = client.get("/console/penguins")
    print(json.dumps({"page": page.status_code, "buttons": page.text.count("data-action=")}))
    answer = client.post(
        "/console/penguins/actions", content=body, headers={"X-Runway-Console": "1", "Content-Type": "application/json"}
    )
    print(json.dumps({"status": answer.status_code, "body": answer.json()}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
