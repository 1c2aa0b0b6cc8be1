"""``runway deploy``: the production topology brought up for real on network namespaces, once for the module, and a
pipeline run across its hosts with faults injected (docs/deployment.md, issue 18).

What runs: PostgreSQL and Redis on the control host with Airflow's four components (CeleryExecutor), a Celery worker
on each of two worker hosts running TFX nodes in its own warm runtime, three model servers on serving hosts behind
nginx on the lb host, the UI and the load balancer published on 127.0.0.1. Nothing is a double. The penguins
pipeline is the workload (the flights pipeline is the same code path, with 10x the data).

One run is made, as an operator through the REST API, and while it runs Redis and PostgreSQL are restarted, the
scheduler is killed (the deployment's watchdog starts it again) and one worker host's cable is pulled in the middle
of a node: its task must be retried on the other worker and the run complete with one pushed version. The later
tests look at what that run left (every Airflow component running again with nobody running `deploy up`, ML
Metadata on PostgreSQL, the rollout on the three serving hosts, a client on yet another host), kill a model server
(the fleet's watchdog brings it back), then run the second round: penguins and flights at once on the one ML
Metadata database, and a serving host's cable pulled during penguins' rollout under a client's load through the
load balancer (no failed request; the host fenced, and caught up when it answers again).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline_components.cli.commands.pipelines import compile_pipelines
from pipeline_components.deploy.auth import ensure_users
from pipeline_components.deploy.deployment import Deployment
from pipeline_components.deploy.health import deployment_status
from pipeline_components.deploy.smoke import AirflowApi
from pipeline_components.deploy.topology import CLIENT, CONTROL, LB, REST_PORT, SERVING, WORKERS
from pipeline_components.fleet import fleet_dir, read_fleet_state
from pipeline_components.fleet.readiness import fenced
from pipeline_components.fleet.store import ModelStore
from pipeline_components.fleet.verification import load_samples
from pipeline_components.ports import free_ports
from pipeline_components.processes import pid_alive, wait_for
from pipeline_components.settings import CHECKOUT, Settings
from tests.helpers import missing, require_nginx

pytestmark = pytest.mark.e2e

DAG = "penguins_pipeline"
MODEL = "penguins_species"
RUN_TIMEOUT_S = 1200.0
TRAINING = {"training.strategy": "multi_worker_mirrored", "training.workers": 2}
TRAINING_WORKER = "Trainer_workers.worker_1"


def _require_machine() -> None:
    if os.geteuid() != 0:
        missing("runway deploy makes network namespaces: it needs root")
    for tool, package in (("ip", "iproute2"), ("redis-server", "redis-server"), ("nft", "nftables")):
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
    return AirflowApi.as_user(deployment.ui_url, username=user, password=ensure_users(deployment.root)[user])


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
    for row in rows.values():
        assert row["pid"] is not None and row["health"] in ("healthy", "running"), row
        if row["host"] != "(this machine)":  # the publisher and the deployment's watchdog
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
    anonymous = AirflowApi(deployment.ui_url)
    assert anonymous.call("GET", "/api/v2/dags")[0] == 401
    assert anonymous.call("POST", f"/api/v2/dags/{DAG}/dagRuns", {"logical_date": None})[0] == 401
    with pytest.raises(Exception, match="refused"):
        AirflowApi.as_user(deployment.ui_url, username="admin", password="not-the-password")
    # multi_worker_mirrored: the Trainer (chief) on worker-1's queue, its second training worker an Airflow task of
    # its own on worker-2's queue, TF_CONFIG naming the two hosts' addresses.
    compile_pipelines(deployment.settings, ["penguins"], TRAINING)
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
    faults: dict[str, str] = {}  # fault -> the task that was running when it was injected


# The cable is pulled in the middle of an ordinary node; the training cluster's own failure handling (a lost
# member fails both sides, the retry opens a new rendezvous) is tested in tests/unit/training/test_rendezvous.py.
NOT_CUT = ("check_params", "Trainer", TRAINING_WORKER)


def _restart_redis(deployment: Deployment) -> None:
    deployment.redis.stop()
    deployment.redis.start()


def _kill_scheduler(deployment: Deployment) -> None:
    pid = deployment.processes.pid("airflow-scheduler")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    # Nobody runs `deploy up`: the deployment's watchdog starts it again (after its 0.5 s backoff).
    assert wait_for(
        lambda: (
            pid_alive(deployment.processes.pid("airflow-scheduler") or 0)
            and deployment.processes.pid("airflow-scheduler") != pid
        ),
        timeout=30,
    ), "the scheduler stayed down"


def _restart_postgres(deployment: Deployment) -> None:
    deployment.postgres.stop()
    deployment.postgres.start()


def _started(task: dict[str, Any]) -> float:
    return datetime.fromisoformat(task["start_date"]).timestamp() if task.get("start_date") else 0.0


class Chaos:
    """Faults injected one after the other while a run goes on, each when a node task is running."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.pending = [("redis restarted", _restart_redis), ("scheduler killed", _kill_scheduler),
                        ("postgres restarted", _restart_postgres)]  # fmt: skip
        self.cut: dict[str, Any] | None = None
        self.restored = False
        self.last_fault = 0.0

    def step(self, tasks: dict[str, dict[str, Any]]) -> None:
        running = [
            t for t in tasks.values() if t["state"] == "running" and t["task_id"] not in NOT_CUT
            and not t["task_id"].startswith("rollout.")
        ]  # fmt: skip
        if self.pending and running:
            name, fault = self.pending.pop(0)
            fault(self.deployment)
            RunRecord.faults[name] = running[0]["task_id"]
            self.last_fault = time.time()
            return
        if self.pending:
            return
        # A node that started after the restarts: the cut, not PostgreSQL's restart, is what stops it.
        on_worker_1 = [t for t in running if t.get("hostname") == "worker-1" and _started(t) > self.last_fault + 5]
        if self.cut is None and on_worker_1:
            self.cut = on_worker_1[0]
            self.deployment.hosts.cut("worker-1")  # the cable, pulled in the middle of a node
            RunRecord.faults["worker-1 cut off"] = self.cut["task_id"]
        elif self.cut is not None and not self.restored:
            retried = tasks[self.cut["task_id"]]
            if int(retried["try_number"]) > int(self.cut["try_number"]) and retried["state"] in ("running", "success"):
                self.restore()

    def restore(self) -> None:
        if self.cut is not None and not self.restored:
            self.deployment.hosts.restore("worker-1")
            self.restored = True


def test_a_run_spreads_over_both_workers_and_survives_restarts_and_a_worker_host_cut_off(
    deployment: Deployment,
) -> None:
    """Redis restarted, the scheduler killed (and started again by the watchdog), PostgreSQL restarted, then a
    worker host's cable pulled in the middle of a node: the run completes, its tasks ran on both workers, the cut
    node was retried on the other one, and exactly one version was pushed."""
    operator = _api(deployment, "operator")
    operator.wait_dag(DAG)
    # One TFLite variant instead of four: quantization-aware training is the run's longest node, and not this test's
    run_id = operator.trigger(DAG, {"tflite_variants": ["float32"]})
    RunRecord.run_id = run_id
    chaos = Chaos(deployment)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            state = operator.run_state(DAG, run_id)
            if state in ("success", "failed"):
                break
            chaos.step({t["task_id"]: t for t in operator.tasks(DAG, run_id)})
            time.sleep(2)
    finally:
        chaos.restore()
    tasks_now = operator.tasks(DAG, run_id)
    RunRecord.tasks = tasks_now
    summary = {t["task_id"]: (t["state"], t.get("hostname"), t["try_number"]) for t in tasks_now}
    print("faults:", RunRecord.faults, "\ntasks:", summary, file=sys.stderr)
    assert operator.run_state(DAG, run_id) == "success", summary
    assert set(RunRecord.faults) == {"redis restarted", "scheduler killed", "postgres restarted", "worker-1 cut off"}
    assert chaos.cut is not None
    retried = next(t for t in tasks_now if t["task_id"] == chaos.cut["task_id"])
    assert int(retried["try_number"]) > int(chaos.cut["try_number"]) and retried["hostname"] == "worker-2", summary
    hosts = {t.get("hostname") for t in tasks_now if t["state"] == "success"}
    assert {"worker-1", "worker-2"} <= hosts, summary
    # The training cluster: the chief on worker-1, its worker as its own task on worker-2, both at their addresses.
    assert (summary["Trainer"][1], summary[TRAINING_WORKER][1]) == ("worker-1", "worker-2"), summary
    trainer_log = _task_log(deployment, run_id, "Trainer")
    assert f"on host worker-2 at {deployment.address('worker-2')}:" in trainer_log
    versions = [p.name for p in (deployment.settings.model_store / MODEL).iterdir() if p.name.isdigit()]
    assert len(versions) == 1, f"exactly one version pushed, found {versions}"


def test_after_the_faults_every_airflow_component_runs_again_without_anyone_running_deploy_up(
    deployment: Deployment,
) -> None:
    """Whatever exited during the faults (the killed scheduler; a dag-processor or triggerer that exits when
    PostgreSQL goes away under it) was restarted by the deployment's watchdog, and reports healthy."""
    assert RunRecord.run_id, "needs the run of the test before"

    def rows() -> dict[str, dict[str, Any]]:
        return {row["service"]: row for row in deployment_status(deployment)["services"]}

    def all_healthy() -> bool:
        return all(row["health"] in ("healthy", "running") for row in rows().values())

    healthy = wait_for(all_healthy, timeout=120, interval=2.0)
    now = rows()
    assert healthy, {name: (row["health"], row.get("last_exit")) for name, row in now.items()}
    assert now["airflow-scheduler"]["restarts"] >= 1, now
    for name in ("airflow-apiserver", "airflow-dag-processor", "airflow-triggerer", "publish", "airflow-worker-1"):
        assert "restarts" in now[name], f"{name} is not supervised"
    restarts = {name: (row.get("restarts"), row.get("last_exit")) for name, row in now.items()}
    print("restarts:", restarts, file=sys.stderr)


def _task_log(deployment: Deployment, run_id: str, task_id: str, *, dag: str = DAG) -> str:
    folder = deployment.log_folder / f"dag_id={dag}" / f"run_id={run_id}" / f"task_id={task_id}"
    return "\n".join(path.read_text(errors="replace") for path in sorted(folder.glob("attempt=*.log")))


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


# From the client host: TF Serving's admin API through the load balancer, and a model server's ports directly.
ADMIN_PROBE = """
import json, socket, sys
import grpc
from pipeline_components import serving_protos as sp
lb, server = sys.argv[1], sys.argv[2]
request = sp.message("tensorflow.serving.ReloadConfigRequest")()
request.config.model_config_list.SetInParent()  # an empty model list: it would unload every model
with grpc.insecure_channel(f"{lb}:8500") as channel:
    try:
        sp.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=10)
        reload = "OK"
    except grpc.RpcError as refused:
        reload = refused.code().name
direct = {}
for port in (8500, 8501):
    try:
        socket.create_connection((server, port), timeout=2).close()
        direct[port] = "connected"
    except OSError as error:
        direct[port] = type(error).__name__
print(json.dumps({"reload": reload, "direct": direct}))
"""


def test_the_admin_api_is_refused_to_clients_and_model_servers_take_no_connection_from_them(
    deployment: Deployment,
) -> None:
    assert RunRecord.run_id
    probe = deployment.hosts.exec(
        CLIENT,
        [sys.executable, "-c", ADMIN_PROBE, deployment.address(LB), deployment.address(SERVING[0])],
        capture_output=True, text=True, timeout=60, cwd=CHECKOUT,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert found["reload"] == "PERMISSION_DENIED"  # nginx answers it; no model server sees it
    assert found["direct"] == {"8500": "TimeoutError", "8501": "TimeoutError"}  # dropped by the serving host
    # The load balancer still reaches them, and every instance still serves the model (nothing was unloaded).
    version = next(p.name for p in (deployment.settings.model_store / MODEL).iterdir() if p.name.isdigit())
    state = read_fleet_state(deployment.settings.home)
    assert state is not None
    for instance in state.instances:
        with urllib.request.urlopen(f"{instance.rest_url}/v1/models/{MODEL}/versions/{version}", timeout=10) as ok:
            assert json.loads(ok.read())["model_version_status"][0]["state"] == "AVAILABLE"


def test_ml_metadata_on_postgresql_holds_the_run_with_hosts_and_no_orphan(deployment: Deployment) -> None:
    assert RunRecord.run_id

    def query(sql: str) -> list[str]:
        return [line for line in deployment.postgres.query(sql, "mlmd").splitlines() if line]

    complete = int(query("SELECT count(*) FROM Execution WHERE last_known_state = 3")[0])
    assert complete >= 10  # every node of the run COMPLETE, in the PostgreSQL database mlmd
    assert query("SELECT count(*) FROM Execution WHERE last_known_state IN (1, 2)") == ["0"], "an orphaned try"
    # A lost try that registered its execution is closed by its retry (CANCELED, with the reason).
    abandoned = query("SELECT string_value FROM ExecutionProperty WHERE name = 'runway_abandoned'")
    assert all("replaced by a try on worker-2" in reason for reason in abandoned), abandoned
    cut = RunRecord.faults["worker-1 cut off"]
    tries = query(
        "SELECT e.last_known_state FROM Execution e JOIN Association a ON a.execution_id = e.id "
        f"JOIN Context c ON c.id = a.context_id WHERE c.name = 'penguins.{cut}'"
    )
    # One COMPLETE try; the lost one, if it got as far as registering, closed (none left NEW or RUNNING).
    assert tries.count("3") == 1 and not {"1", "2"} & set(tries), f"{cut}: execution states {tries}"
    hosts = set(query("SELECT DISTINCT string_value FROM ExecutionProperty WHERE name = 'runway_host'"))
    assert hosts == {f"{h} ({deployment.address(h)})" for h in WORKERS}
    assert not (deployment.settings.metadata_dir / "penguins.sqlite").exists()


def test_a_killed_model_server_is_restarted_with_the_stable_version(deployment: Deployment) -> None:
    state = read_fleet_state(deployment.settings.home)
    assert state is not None
    victim = state.instances[1]
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    url = f"{victim.rest_url}/v1/models/{MODEL}/labels/stable"

    def back() -> bool:
        current = read_fleet_state(deployment.settings.home)
        pid = current.instances[1].pid if current else None
        if pid == victim.pid or not pid_alive(pid):
            return False
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return json.loads(answer.read())["model_version_status"][0]["state"] == "AVAILABLE"
        except (OSError, ValueError):
            return False

    assert wait_for(back, timeout=180, interval=1.0), f"{victim.name} was not restarted with its model"


# A client on the client host: one REST and one gRPC thread through the load balancer, with runway's client and
# its default policy (5 s per try, retries on UNAVAILABLE/502/503 only), until the stop file appears.
CLIENT_LOAD = """
import json, sys, threading, time
from pathlib import Path
from pipeline_components.client import ServingClient
lb, model, rows_file, stop, out = sys.argv[1:6]
samples = json.loads(Path(rows_file).read_text())
rows, signature = samples["rows"], samples.get("signature_name", "serving_default")
counts = {"rest": 0, "grpc": 0}
failures, versions = [], set()
def run(protocol):
    urls = {"rest_url": f"http://{lb}:8501", "grpc_target": f"{lb}:8500"}
    with ServingClient(**urls, model=model, protocol=protocol) as client:
        while not Path(stop).exists():
            try:
                answer = client.predict(rows[counts[protocol] % len(rows)], signature=signature)
                if answer.version is not None:
                    versions.add(answer.version)
            except Exception as error:
                failures.append(f"{protocol}: {type(error).__name__}: {error}")
            counts[protocol] += 1
            time.sleep(0.05)
threads = [threading.Thread(target=run, args=(p,)) for p in ("rest", "grpc")]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
Path(out).write_text(json.dumps({"requests": counts, "failures": failures, "versions": sorted(versions)}))
"""

# The second pipeline: a fifth of January's flights, trained briefly, gated on reachable values (as in
# tests/e2e/test_pipelines_through_airflow.py), and unscheduled: with its monthly schedule, the DAG would start a
# run of its own for the latest month as soon as it appears (catchup off), a third run beside the two.
FLIGHTS = {
    "model.train_steps": 150, "model.eval_steps": 5, "evaluation.lower_bound": 0.55,
    "evaluation.max_regression": 1.0, "evaluation.trusted_max_regression": 1.0,
    "evaluation.max_baseline_drop": 1.0, "validation.delivery.min_rows": 500,
    "schedule.cron": None, "schedule.on_new_span": False,
}  # fmt: skip
FLIGHTS_DAG = "flights_pipeline"
PENGUINS_AGAIN = {"evaluation.max_regression": 1.0, "evaluation.max_baseline_drop": 1.0}
SERVING_CUT = SERVING[1]
CUT_INSTANCE = f"serving-{SERVING.index(SERVING_CUT)}"  # the model server on that host
ERRORS_OF_CONCURRENCY = ("database is locked", "deadlock detected", "could not serialize", "duplicate key value")


def _wait_single_trainer(api: AirflowApi, dag: str) -> None:
    """Wait until the DAG processor parsed the recompiled penguins DAG (no training worker task any more)."""

    def parsed() -> bool:
        status, body = api.call("GET", f"/api/v2/dags/{dag}/tasks")
        return status == 200 and not any(t["task_id"].startswith("Trainer_workers") for t in body["tasks"])

    assert wait_for(parsed, timeout=600, interval=3), "the recompiled penguins DAG was not parsed"


def test_two_pipelines_at_once_and_a_serving_host_cut_during_a_rollout_under_client_load(
    deployment: Deployment,
) -> None:
    """Penguins and flights run at the same time on the one ML Metadata database (PostgreSQL): both complete with
    no task retried and no lock error. While penguins' rollout runs, serving-2's cable is pulled, with a client
    on the client host predicting through the load balancer all along: no client request fails, the rollout
    completes on the two hosts it reaches, and when the cable is back serving-2 catches up with the new stable
    before it serves again."""
    assert RunRecord.run_id, "needs the run of the first test (penguins' first model is the stable one)"
    home, store = deployment.settings.home, deployment.settings.model_store
    # Nobody ran `deploy up` since the faults: what exited was restarted by the deployment's watchdog.
    down = [row["service"] for row in deployment_status(deployment)["services"] if row["pid"] is None]
    assert down == [], f"down before the second round: {down}"
    # The deployment reads the prepared spans of the home it was brought up from (its own home is <that>/deploy).
    env = {**os.environ, "RUNWAY_HOME": str(deployment.root.parent)}
    runway_bin = str(CHECKOUT / ".venv" / "bin" / "runway")
    prepare = [runway_bin, "data", "prepare", "flights", "--spans", "1", "--sample-fraction", "0.2"]
    subprocess.run(prepare, env=env, check=True, capture_output=True)
    compile_pipelines(deployment.settings, ["flights"], FLIGHTS)
    # One trainer (the concurrency is the point here), and gates that let a second model on the same data through
    # (against the first run's model as baseline, a regression of one penguin in the ~25 eval rows would stop it).
    compile_pipelines(deployment.settings, ["penguins"], PENGUINS_AGAIN)
    operator = _api(deployment, "operator")
    operator.wait_dag(FLIGHTS_DAG, timeout_s=600)  # the dag-processor may just have been started again
    _wait_single_trainer(operator, DAG)
    before = sorted(int(p.name) for p in (store / MODEL).iterdir() if p.name.isdigit())
    samples = load_samples(ModelStore(store), MODEL, before[-1])  # real examples, stored with the push
    assert samples is not None
    rows_file, stop, out = home / "client-rows.json", home / "client-stop", home / "client-load.json"
    rows_file.write_text(json.dumps(samples))
    load = deployment.hosts.popen(
        CLIENT, [sys.executable, "-c", CLIENT_LOAD, deployment.address(LB), MODEL, *map(str, (rows_file, stop, out))],
        cwd=CHECKOUT, env={**os.environ, "PYTHONPATH": str(CHECKOUT)},
    )  # fmt: skip
    # Penguins' span is already served: `repush` is how an operator ships a model retrained on the same span.
    runs = {DAG: operator.trigger(DAG, {"tflite_variants": ["float32"], "repush": True}),
            FLIGHTS_DAG: operator.trigger(FLIGHTS_DAG, {"tflite_variants": ["float32"]})}  # fmt: skip
    cut_at: float | None = None
    restored_at: float | None = None
    states: dict[str, str | None] = {}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            states = {dag: operator.run_state(dag, run) for dag, run in runs.items()}
            if all(state in ("success", "failed") for state in states.values()):
                break
            rollout = [t for t in operator.tasks(DAG, runs[DAG]) if t["task_id"].startswith("rollout.")]
            # Between its first task's start and its last one's end (the next task scheduled or queued counts:
            # polling every second must not miss the window between two short tasks).
            started = any(t["state"] in ("scheduled", "queued", "running", "success") for t in rollout)
            finished = bool(rollout) and all(t["state"] in ("success", "skipped", "failed") for t in rollout)
            if cut_at is None and started and not finished:
                deployment.hosts.cut(SERVING_CUT)  # in the middle of penguins' rollout
                cut_at = time.monotonic()
            elif cut_at is not None and restored_at is None and finished:
                deployment.hosts.restore(SERVING_CUT)
                restored_at = time.monotonic()
            time.sleep(1)
    finally:
        if cut_at is not None and restored_at is None:
            deployment.hosts.restore(SERVING_CUT)
    fleet_folder = fleet_dir(home)
    try:
        assert wait_for(lambda: not fenced(fleet_folder), timeout=180, interval=1), fenced(fleet_folder)
    finally:
        stop.touch()
        load.wait(timeout=60)
    client = json.loads(out.read_text())
    print("runs:", states, "client:", {k: v for k, v in client.items() if k != "failures"}, file=sys.stderr)

    tasks = {dag: operator.tasks(dag, run) for dag, run in runs.items()}
    for dag, run in runs.items():
        summary = {t["task_id"]: (t["state"], t.get("hostname"), t["try_number"]) for t in tasks[dag]}
        print(f"{dag}:", summary, file=sys.stderr)
        for task in tasks[dag]:
            if task["state"] == "skipped" and int(task["try_number"]) >= 1:  # it ran, and skipped itself: why
                log = _task_log(deployment, run, task["task_id"], dag=dag).splitlines()
                print(f"{dag}.{task['task_id']}:", *[line for line in log if "skipped" in line][-3:], file=sys.stderr)
            if task["state"] in ("failed", "upstream_failed"):
                errors = [line for line in _task_log(deployment, run, task["task_id"], dag=dag).splitlines()
                          if "Error" in line or "error" in line]  # fmt: skip
                print(f"{dag}.{task['task_id']} {task['state']}:", *errors[-12:], sep="\n  ", file=sys.stderr)
        assert states[dag] == "success", summary
        assert all(int(t["try_number"]) <= 1 for t in tasks[dag]), f"a task of {dag} was retried: {summary}"
        logs = "\n".join(_task_log(deployment, run, t["task_id"], dag=dag) for t in tasks[dag])
        assert not [e for e in ERRORS_OF_CONCURRENCY if e in logs], f"{dag}: a concurrency error in its task logs"
    assert "deadlock detected" not in deployment.postgres.log_file.read_text()
    # Nothing unfinished in ML Metadata, and every node of both runs has its COMPLETE execution.
    open_tries = deployment.postgres.query("SELECT count(*) FROM Execution WHERE last_known_state IN (1, 2)", "mlmd")
    assert open_tries.split() == ["0"]
    # The rollout under the cut: completed, serving-2 fenced and caught up; the client never saw a failure.
    assert cut_at is not None and restored_at is not None, "penguins' rollout was never seen running"
    assert client["failures"] == [], client["failures"][:5]
    assert min(client["requests"].values()) >= 50, client["requests"]
    after = sorted(int(p.name) for p in (store / MODEL).iterdir() if p.name.isdigit())
    new = after[-1]
    assert new not in before and ModelStore(store).serving(MODEL).stable == new
    assert set(client["versions"]) <= {before[-1], new}, client["versions"]
    watchdog_log = (fleet_folder / "logs" / "watchdog.log").read_text()
    assert f"{CUT_INSTANCE} out of rotation" in watchdog_log, watchdog_log[-3000:]
    assert f"{CUT_INSTANCE} caught up with models.config" in watchdog_log, watchdog_log[-3000:]
    state = read_fleet_state(home)
    assert state is not None
    # Every host serves the new stable, and flights' model if its gates let it through (a short training).
    flights = [p.name for p in (store / "flights_delay").glob("[0-9]*")] if (store / "flights_delay").is_dir() else []
    print("flights versions pushed:", flights, file=sys.stderr)
    for instance in state.instances:
        with urllib.request.urlopen(f"{instance.rest_url}/v1/models/{MODEL}/labels/stable", timeout=10) as ok:
            assert json.loads(ok.read())["model_version_status"][0]["version"] == str(new), instance.name
        for version in flights:
            url = f"{instance.rest_url}/v1/models/flights_delay/versions/{version}"
            with urllib.request.urlopen(url, timeout=10) as ok:
                assert json.loads(ok.read())["model_version_status"][0]["state"] == "AVAILABLE", instance.name
