"""``runway deploy``: the production topology brought up for real on network namespaces, once for the module, and a
pipeline run across its hosts with faults injected (docs/deployment.md, issue 18).

What runs: PostgreSQL and Redis on the control host with Airflow's four components (CeleryExecutor), a Celery worker
on each of two worker hosts running TFX nodes in its own warm runtime, three model servers on serving hosts behind
nginx on the lb host, the UI and the load balancer published on 127.0.0.1. Nothing is a double. The penguins
pipeline is the workload (the flights pipeline is the same code path, with 10x the data).

One run is made, as an operator through the REST API, and while it runs one worker host's cable is pulled in the
middle of a node: its task must be retried on the other worker and the run complete with one pushed version. The
later tests look at what that run left (ML Metadata on PostgreSQL, the rollout on the three serving hosts, a client
on yet another host), then restart PostgreSQL, Redis and the scheduler and kill a model server, and check that
the deployment recovers and a second run completes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.cli.commands.pipelines import compile_pipelines
from pipeline_components.deploy.auth import ensure_users
from pipeline_components.deploy.deployment import Deployment
from pipeline_components.deploy.health import deployment_status
from pipeline_components.deploy.smoke import AirflowApi
from pipeline_components.deploy.topology import CLIENT, CONTROL, LB, REST_PORT, SERVING, WORKERS
from pipeline_components.fleet import read_fleet_state
from pipeline_components.ports import free_ports
from pipeline_components.settings import CHECKOUT, Settings
from tests.helpers import missing, require_nginx

pytestmark = pytest.mark.e2e

DAG = "penguins_pipeline"
MODEL = "penguins_species"
RUN_TIMEOUT_S = 1200.0


def _require_machine() -> None:
    if os.geteuid() != 0:
        missing("runway deploy makes network namespaces: it needs root")
    for tool, package in (("ip", "iproute2"), ("redis-server", "redis-server")):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            missing(f"{tool} is not installed (make setup installs it: apt-get install {package})")
    if not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        missing("PostgreSQL is not installed (make setup installs it: apt-get install postgresql)")
    require_nginx()


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    _require_machine()
    home = Path(f"/tmp/runway-e2e-deploy-{os.getpid()}")  # the PostgreSQL account must be able to enter it
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(mode=0o755)
    env = {**os.environ, "RUNWAY_HOME": str(home)}
    subprocess.run(
        [str(CHECKOUT / ".venv" / "bin" / "runway"), "data", "prepare", "penguins"], env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    settings = Settings.from_env({"RUNWAY_HOME": str(home)})
    ui, rest, grpc = free_ports(3)
    lines: list[str] = []
    deployed = Deployment(settings, say=lines.append, ui_port=ui, rest_port=rest, grpc_port=grpc)
    try:
        deployed.up()
        deployed.say = lambda line: lines.append(line)
        yield deployed
    finally:
        stopped = deployed.down()
        print("down stopped:", stopped, file=sys.stderr)
        assert deployed.hosts.leftovers() == [], "down left namespaces or links behind"
        shutil.rmtree(home, ignore_errors=True)


def _api(deployment: Deployment, user: str) -> AirflowApi:
    return AirflowApi(deployment.ui_url, username=user, password=ensure_users(deployment.root)[user])


def _in_host(deployment: Deployment, host: str, code: str) -> Any:
    """Run Python ``code`` (which prints JSON) inside ``host`` and return what it printed."""
    done = deployment.hosts.exec(host, [sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_every_service_is_up_on_its_own_host_and_only_published_ports_are_on_loopback(
    deployment: Deployment,
) -> None:
    report = deployment_status(deployment)
    hosts = {row["host"]: row for row in report["hosts"]}
    assert set(hosts) == {CONTROL, *WORKERS, *SERVING, LB, CLIENT}
    assert all(row["exists"] and row["link"] == "up" for row in hosts.values())
    rows = {row["service"]: row for row in report["services"]}
    for name, row in rows.items():
        assert row["pid"] is not None and row["health"] in ("healthy", "running"), row
        if name != "publish":
            assert row["address"] == hosts[row["host"]]["address"] and not row["address"].startswith("127.")
    # PostgreSQL, Redis and the api-server answer on the control host's address, not on this machine's loopback.
    assert rows["postgres"]["host"] == rows["redis"]["host"] == rows["airflow-apiserver"]["host"] == CONTROL
    for port in (5432, 6379):
        assert subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"], capture_output=True).returncode
    # `up` again keeps every process.
    pids = {name: row["pid"] for name, row in rows.items()}
    deployment.up()
    again = {row["service"]: row["pid"] for row in deployment_status(deployment)["services"]}
    assert again == pids


def test_every_call_needs_a_login_and_a_viewer_cannot_trigger(deployment: Deployment) -> None:
    anonymous = AirflowApi.__new__(AirflowApi)
    anonymous.base, anonymous.token = deployment.ui_url, ""
    assert anonymous.call("GET", "/api/v2/dags")[0] == 401
    assert anonymous.call("POST", f"/api/v2/dags/{DAG}/dagRuns", {"logical_date": None})[0] == 401
    with pytest.raises(Exception, match="refused"):
        AirflowApi(deployment.ui_url, username="admin", password="not-the-password")
    compile_pipelines(deployment.settings, ["penguins"])
    viewer = _api(deployment, "viewer")
    operator = _api(deployment, "operator")
    operator.wait_dag(DAG)
    assert viewer.call("GET", f"/api/v2/dags/{DAG}")[0] == 200
    status, _ = viewer.call("POST", f"/api/v2/dags/{DAG}/dagRuns", {"logical_date": None, "conf": {}})
    assert status == 403
    assert viewer.call("GET", f"/api/v2/dags/{DAG}/dagRuns")[1]["total_entries"] == 0


class RunRecord:
    """What the faulted run left, for the tests after it."""

    run_id: str = ""
    tasks: list[dict[str, Any]] = []
    cut_task: str = ""


def test_a_run_spreads_over_both_workers_and_survives_a_worker_host_cut_off(deployment: Deployment) -> None:
    operator = _api(deployment, "operator")
    operator.wait_dag(DAG)
    run_id = operator.trigger(DAG)
    RunRecord.run_id = run_id
    cut: dict[str, Any] | None = None
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        tasks = {t["task_id"]: t for t in operator.tasks(DAG, run_id)}
        if cut is None:
            running = [
                t for t in tasks.values()
                if t["state"] == "running" and t.get("hostname") == "worker-1"
                and t["task_id"] in ("Transform", "Trainer", "SchemaGen", "StatisticsGen", "Evaluator")
            ]  # fmt: skip
            if running:
                cut = running[0]
                deployment.hosts.cut("worker-1")  # the cable, pulled in the middle of a node
                RunRecord.cut_task = cut["task_id"]
        elif deployment.hosts.status()[1].link == "cut":
            retried = tasks[cut["task_id"]]
            if int(retried["try_number"]) > int(cut["try_number"]) and retried["state"] in ("running", "success"):
                deployment.hosts.restore("worker-1")
        state = operator.run_state(DAG, run_id)
        if state in ("success", "failed"):
            break
        time.sleep(3)
    deployment.hosts.restore("worker-1")
    tasks_now = operator.tasks(DAG, run_id)
    RunRecord.tasks = tasks_now
    summary = {t["task_id"]: (t["state"], t.get("hostname"), t["try_number"]) for t in tasks_now}
    assert operator.run_state(DAG, run_id) == "success", summary
    assert cut is not None, f"no node ran on worker-1 long enough to be cut: {summary}"
    retried = next(t for t in tasks_now if t["task_id"] == cut["task_id"])
    assert int(retried["try_number"]) > int(cut["try_number"]) and retried["hostname"] == "worker-2", summary
    hosts = {t.get("hostname") for t in tasks_now if t["state"] == "success"}
    assert {"worker-1", "worker-2"} <= hosts, summary
    versions = [p.name for p in (deployment.settings.model_store / MODEL).iterdir() if p.name.isdigit()]
    assert len(versions) == 1, f"exactly one version pushed, found {versions}"


def test_the_rollout_reached_every_serving_host_and_a_client_host_gets_it_through_the_load_balancer(
    deployment: Deployment,
) -> None:
    assert RunRecord.run_id, "needs the run of the test before"
    version = int(next(p.name for p in (deployment.settings.model_store / MODEL).iterdir() if p.name.isdigit()))
    state = read_fleet_state(deployment.settings.home)
    assert state is not None
    for instance, host in zip(state.instances, SERVING, strict=True):
        assert instance.rest_url.startswith(f"http://{deployment.address(host)}:")
    lb = deployment.address(LB)
    code = (
        "import json, urllib.request\n"
        f"print(urllib.request.urlopen('http://{lb}:{REST_PORT}/v1/models/{MODEL}/labels/stable', timeout=10)"
        ".read().decode())"
    )
    answer = _in_host(deployment, CLIENT, code)
    assert answer["model_version_status"][0]["version"] == str(version)
    assert answer["model_version_status"][0]["state"] == "AVAILABLE"


def test_ml_metadata_is_on_postgresql_with_every_node_of_the_run(deployment: Deployment) -> None:
    assert RunRecord.run_id
    server = deployment.postgres.server()
    assert server is not None
    complete = deployment.postgres.query('SELECT count(*) FROM "Execution" WHERE last_known_state = 3', "mlmd")
    assert int(complete) >= 10  # every node of the run COMPLETE, in the PostgreSQL database mlmd
    assert not (deployment.settings.metadata_dir / "penguins.sqlite").exists()
