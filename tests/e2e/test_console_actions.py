"""The console's actions against Airflow's real database: promote creates a run of ``penguins_serving`` with the
action as its conf and the operator as its triggering user (Airflow's audit); a viewer's request creates nothing.

One ``airflow db migrate`` for the module; the serving DAG is serialized into it by ``airflow dags reserialize``
from a DAG file that builds it as ``dags/tfx_pipelines.py`` does; the plugin's app runs in a process of Airflow's
environment (``console_action.py``) on that database. The browser test opens the console on a running API server.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.orchestration.airflow_local import airflow_bin, airflow_env, database_path, ensure_database
from pipeline_components.settings import CHECKOUT, Settings
from tests.conftest import CONFIGS
from tests.unit.console.model_store import model_store

pytestmark = pytest.mark.e2e

DAG_FILE = f"""# an airflow dag file: penguins_serving, as dags/tfx_pipelines.py builds it
from pipeline_components.config import load_pipeline_config
from pipeline_components.orchestration.dag_factory import build_serving_dag

penguins_serving = build_serving_dag(config=load_pipeline_config({str(CONFIGS / "penguins.yaml")!r}))
"""


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, str]]:
    home = tmp_path_factory.mktemp("console-home")
    settings = Settings.from_env({"RUNWAY_HOME": str(home)})
    ensure_database(settings)
    dags = home / "dags"
    dags.mkdir()
    (dags / "penguins_serving.py").write_text(DAG_FILE)
    env = {**airflow_env(settings), "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "PYTHONPATH": str(CHECKOUT)}
    done = subprocess.run([airflow_bin(), "dags", "reserialize"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    model_store(settings.model_store, "penguins_species", (1, 2), {"stable": 1})
    return settings, env


def _act(env: dict[str, str], user: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    script = Path(__file__).with_name("console_action.py")
    done = subprocess.run(
        [sys.executable, str(script), user, json.dumps(body)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _serving_runs(settings: Settings) -> list[tuple[str, dict[str, Any], str, str]]:
    with sqlite3.connect(f"file:{database_path(settings)}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT run_id, conf, triggering_user_name, run_type FROM dag_run WHERE dag_id = 'penguins_serving'"
        ).fetchall()
    return [(run_id, json.loads(conf), user, run_type) for run_id, conf, user, run_type in rows]


def test_a_viewer_reads_the_console_and_triggers_nothing(airflow: tuple[Settings, dict[str, str]]) -> None:
    settings, env = airflow
    page, answer = _act(env, "watcher:viewer", {"action": "rollback", "version": None})
    assert page == {"page": 200, "buttons": 0}  # the page, with the runs read from this database
    assert answer["status"] == 403
    assert _serving_runs(settings) == []


def test_promote_creates_a_serving_run_as_the_operator(airflow: tuple[Settings, dict[str, str]]) -> None:
    settings, env = airflow
    page, answer = _act(env, "alice:op", {"action": "promote", "version": 2})
    assert page["page"] == 200 and page["buttons"] == 2  # promote version 2 (1 is stable), roll back
    assert answer["status"] == 200, answer
    runs = _serving_runs(settings)
    assert runs == [(answer["body"]["dag_run_id"], {"action": "promote", "version": 2}, "alice", "manual")]
